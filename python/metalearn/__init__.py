"""metalearn: learning to learn (few-shot meta-learning, multi-task and transfer learning)
on a Rust engine, from Python.

The Rust crate does the work; this package passes numpy arrays in and out, releases the
GIL while it runs, turns Ctrl-C into a clean stop, and raises Python exceptions with the
command line's messages (``ValueError`` for bad input, ``OSError`` and its subclasses for
files, ``TypeError`` for arrays of the wrong dtype, ``RuntimeError`` for a diverged run).

    import metalearn, numpy as np
    learner = metalearn.load("runs/protonet-omniglot-5w1s/best.safetensors")
    predictor = learner.adapt(support_x, support_y)   # (N, 1, 28, 28) float32, (N,) ints
    labels = predictor.predict(query_x)               # (Nq,) the support_y labels
    probs = predictor.predict_proba(query_x)          # (Nq, n_classes)

Modules: :mod:`metalearn.data` (datasets and episodes), :mod:`metalearn.mtl`
(multi-task learning), :mod:`metalearn.transfer` (transfer learning).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Mapping, Optional, Union

import numpy as np

from . import _native
from . import data, mtl, transfer
from ._arrays import float32_array, label_array

__version__: str = _native.__version__

__all__ = [
    "__version__",
    "RunConfig",
    "Learner",
    "Predictor",
    "train",
    "evaluate",
    "load",
    "data",
    "mtl",
    "transfer",
]

PathLike = Union[str, "os.PathLike[str]"]


class RunConfig:
    """A validated few-shot run config: what ``metalearn train --config FILE`` reads
    (``[algorithm]``, ``[backbone]``, ``[data]``, ``[train]``, ``[eval]``). Unknown keys and
    out-of-range values raise ``ValueError`` naming the key."""

    __slots__ = ("_inner",)

    def __init__(self, inner: "_native.RunConfig") -> None:
        if not isinstance(inner, _native.RunConfig):
            raise TypeError(
                "RunConfig is made by RunConfig.from_toml(path), RunConfig.from_dict(dict) "
                "or RunConfig.from_toml_str(text)"
            )
        self._inner = inner

    @classmethod
    def from_toml(cls, path: PathLike) -> "RunConfig":
        """Reads a TOML run config file (e.g. ``configs/fewshot/protonet-omniglot-5w1s.toml``)."""
        return cls(_native.RunConfig.from_toml(os.fspath(path)))

    @classmethod
    def from_toml_str(cls, text: str) -> "RunConfig":
        """Parses TOML text."""
        return cls(_native.RunConfig.from_toml_str(text))

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> "RunConfig":
        """Builds a config from a dict laid out like the TOML file
        (``{"algorithm": {"name": "protonet"}, "data": {...}, ...}``)."""
        if not isinstance(config, Mapping):
            raise TypeError(f"from_dict: expected a dict, got {type(config).__name__}")
        return cls(_native.RunConfig.from_json(json.dumps(_plain(config))))

    def to_dict(self) -> Dict[str, Any]:
        """Every key of the config, defaults filled in, as a dict."""
        return json.loads(self._inner.to_json())

    def to_toml(self) -> str:
        """The config as TOML text."""
        return self._inner.to_toml()

    def with_values(self, values: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> "RunConfig":
        """A copy with dotted keys set, validated again:
        ``cfg.with_values({"train.iterations": 100, "data.k_shot": 5})``."""
        merged = dict(values or {})
        merged.update(kwargs)
        return RunConfig(self._inner.with_values(json.dumps(_plain(merged))))

    def describe(self) -> str:
        """The run in words (``protonet on omniglot 5-way 1-shot (conv4 ...)``)."""
        return self._inner.describe()

    @property
    def out_dir(self) -> str:
        """The run folder (``train.out_dir``)."""
        return os.fspath(self._inner.out_dir)

    def __repr__(self) -> str:
        return f"RunConfig({self.describe()})"


def _plain(value: Any) -> Any:
    """Dicts, lists and numpy scalars as plain JSON values (paths as strings)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _config(config: Union[RunConfig, PathLike, Mapping[str, Any]]) -> "_native.RunConfig":
    if isinstance(config, RunConfig):
        return config._inner
    if isinstance(config, Mapping):
        return RunConfig.from_dict(config)._inner
    if isinstance(config, (str, os.PathLike)):
        return RunConfig.from_toml(config)._inner
    raise TypeError(
        f"config: expected a RunConfig, a path to a TOML file or a dict, got {type(config).__name__}"
    )


def train(
    config: Union[RunConfig, PathLike, Mapping[str, Any]],
    out_dir: Optional[PathLike] = None,
    threads: Optional[int] = None,
    progress: bool = True,
    *,
    resume: bool = False,
    overwrite: bool = False,
    iterations: Optional[int] = None,
    evaluate: bool = False,
) -> Dict[str, Any]:
    """Meta-trains a few-shot learner (``metalearn train``): periodic validation, best and
    last checkpoints, ``history.json`` and a learning-curve SVG in ``out_dir`` (default: the
    config's ``train.out_dir``).

    Returns the run's report as a dict: ``task``, ``iterations``, ``best`` (iteration and
    validation metric), ``best_checkpoint``, ``last_checkpoint``, ``train_s``, ... and
    ``curve``, the learning curve as numpy arrays (``iteration``, ``train_loss``,
    ``train_accuracy``, ``val_loss``, ``val_metric``). With ``evaluate=True`` it also runs the
    test protocol on the best checkpoint (``report["test"]``, as :func:`evaluate`).

    ``threads``: worker threads (default: all cores). ``progress``: the progress bar on
    stderr. ``resume``: continue the run in ``out_dir``; ``overwrite``: start over.
    The GIL is released while it runs. Ctrl-C stops it after the current iteration, writes
    ``last.safetensors`` and raises ``KeyboardInterrupt``; ``resume=True`` continues it.
    """
    inner = _config(config)
    report_json, curve = _native.train(
        inner,
        out_dir=None if out_dir is None else os.fspath(out_dir),
        threads=threads,
        progress=progress,
        resume=resume,
        overwrite=overwrite,
        iterations=iterations,
    )
    report = json.loads(report_json)
    report["curve"] = curve
    if evaluate:
        report["test"] = globals()["evaluate"](report["best_checkpoint"], threads=threads)
    return report


def evaluate(
    checkpoint: PathLike,
    config: Union[RunConfig, PathLike, Mapping[str, Any], None] = None,
    episodes: Optional[int] = None,
    *,
    seed: Optional[int] = None,
    threads: Optional[int] = None,
) -> Dict[str, Any]:
    """The test protocol of ``metalearn eval``: the checkpoint on ``episodes`` fixed test
    episodes (default: the config's ``eval.episodes``, 600 unless set) drawn from ``seed``
    (default ``eval.seed``), with the stored run config or ``config`` (same architecture).

    Returns a dict: ``mean`` (accuracy as a fraction, or MSE), ``ci95`` (half-width of the
    95% interval, ``1.96 sd / sqrt(n)``), ``error`` (1 - accuracy), ``per_episode`` (numpy
    array of the episodes' accuracies), ``per_episode_loss``, ``episodes``, ``seed``,
    ``task``, ``wall_s``, ...
    """
    inner = None if config is None else _config(config)
    return _native.evaluate(os.fspath(checkpoint), inner, episodes, seed, threads)


class Predictor:
    """A learner adapted to a support set (from :meth:`Learner.adapt`)."""

    __slots__ = ("_inner", "_regression")

    def __init__(self, inner: "_native.Predictor", regression: bool) -> None:
        self._inner = inner
        self._regression = regression

    @property
    def classes(self) -> np.ndarray:
        """The support labels in probability order (sorted), int64."""
        return self._inner.classes

    @property
    def support_size(self) -> int:
        """The number of support examples."""
        return self._inner.support_size

    def predict(self, query_x: Any) -> np.ndarray:
        """Predicted labels ``(Nq,)`` (values of ``support_y``), or values for regression.
        ``query_x``: float32, ``(Nq, C, H, W)`` or ``(Nq, D)`` like the support set."""
        return self._inner.predict(float32_array(query_x, "query_x"))

    def predict_proba(self, query_x: Any) -> np.ndarray:
        """Class probabilities ``(Nq, n_classes)`` float64, columns in :attr:`classes` order
        (the softmax of :meth:`outputs`, as ``metalearn adapt`` writes them)."""
        return self._inner.predict_proba(float32_array(query_x, "query_x"))

    def outputs(self, query_x: Any) -> np.ndarray:
        """Raw outputs ``(Nq, n_classes)`` float32 (logits, or negative distances for
        ProtoNet), or ``(Nq, 1)`` values for regression."""
        return self._inner.outputs(float32_array(query_x, "query_x"))

    def __repr__(self) -> str:
        return f"Predictor({self.support_size} support examples, classes {self.classes.tolist()})"


class Learner:
    """A trained few-shot learner restored from a checkpoint (from :func:`load`)."""

    __slots__ = ("_inner",)

    def __init__(self, inner: "_native.Learner") -> None:
        self._inner = inner

    def adapt(self, support_x: Any, support_y: Any) -> Predictor:
        """Adapts to a labelled support set (easyfsl's shapes): ``support_x`` float32
        ``(N, C, H, W)`` (or ``(N, D)``), ``support_y`` ``(N,)`` integer class labels (any
        values; real targets for a regression checkpoint). The support set is checked and put
        in the engine's layout here; each ``predict`` call then adapts and predicts in one
        pass, as the ``adapt`` command does (gradient-based methods such as MAML run their
        inner loop, metric methods embed support and queries together, so batch norm sees
        the call's queries too). The GIL is released meanwhile.

        Raises ``TypeError`` for a wrong dtype and ``ValueError`` for a wrong shape, NaN
        values, fewer than two classes or more than the checkpoint's head has."""
        x = float32_array(support_x, "support_x")
        if self._inner.is_regression:
            y = float32_array(support_y, "support_y")
            return Predictor(self._inner.adapt_values(x, y), True)
        y = label_array(support_y, "support_y")
        return Predictor(self._inner.adapt_classes(x, y), False)

    def read_support(self, folder: PathLike) -> "tuple[np.ndarray, np.ndarray, list[str]]":
        """A folder with one subfolder of PNG images per class, read as this checkpoint's
        training images were (colour, size): ``(x, y, class_names)``, as ``metalearn adapt
        --support`` reads it."""
        color, size = self._image_input("read_support")
        ds = data.image_folder(folder, color=color, image_size=size)
        x, y = ds.arrays()
        return x, y, ds.class_names

    def read_queries(self, folder: PathLike) -> "tuple[np.ndarray, list[str]]":
        """The PNG images of a folder (recursively, sorted by path) read as this checkpoint's
        training images were: ``(x, names)``, as ``metalearn adapt --query`` reads it."""
        color, size = self._image_input("read_queries")
        return data.read_images(folder, color=color, image_size=size)

    def _image_input(self, what: str) -> "tuple[str, int]":
        info = self._inner.image_input
        if info is None:
            raise ValueError(f"{what}: this checkpoint takes feature vectors, not images")
        return info

    @property
    def algorithm(self) -> str:
        """The method (``protonet``, ``maml``, ...)."""
        return self._inner.algorithm

    @property
    def head(self) -> Optional[int]:
        """The width of the classifier head (methods with one), else None."""
        return self._inner.head

    @property
    def input_shape(self) -> "tuple[int, ...]":
        """The shape of one example: ``(C, H, W)`` for images, ``(D,)`` for vectors."""
        return tuple(self._inner.input_shape)

    @property
    def image_input(self) -> "Optional[tuple[str, int]]":
        """``(color, size)`` of the images the checkpoint was trained on (``color``: ``gray``,
        ``rgb`` or ``ink``), or None for a checkpoint of feature vectors."""
        return self._inner.image_input

    @property
    def is_regression(self) -> bool:
        """Whether the checkpoint is a regression model (sinusoid)."""
        return self._inner.is_regression

    @property
    def config(self) -> RunConfig:
        """The run config in effect."""
        return RunConfig(self._inner.config)

    @property
    def checkpoint(self) -> str:
        """The checkpoint file."""
        return os.fspath(self._inner.checkpoint)

    def __repr__(self) -> str:
        return repr(self._inner)


def load(
    checkpoint: PathLike, config: Union[RunConfig, PathLike, Mapping[str, Any], None] = None
) -> Learner:
    """Loads a checkpoint of :func:`train` / ``metalearn train`` (a ``.safetensors`` file;
    ``safetensors.torch.load_file`` reads the same file in PyTorch). With ``config``, that
    config's algorithm options and N are used (same architecture).
    Raises ``FileNotFoundError`` when the file is missing, ``ValueError`` when it is not a
    checkpoint of this library."""
    inner = None if config is None else _config(config)
    return Learner(_native.load(os.fspath(checkpoint), inner))
