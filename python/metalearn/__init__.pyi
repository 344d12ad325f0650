"""Type stubs of metalearn: few-shot meta-learning, multi-task and transfer learning on a
Rust engine, with numpy arrays in and out."""

import os
from typing import Any, Dict, Mapping, Optional, Tuple, Union, List

import numpy as np
import numpy.typing as npt

from . import data as data
from . import mtl as mtl
from . import transfer as transfer

PathLike = Union[str, os.PathLike[str]]
ConfigLike = Union["RunConfig", PathLike, Mapping[str, Any]]

__version__: str

class RunConfig:
    """A validated few-shot run config (what `metalearn train --config FILE` reads)."""

    @classmethod
    def from_toml(cls, path: PathLike) -> RunConfig:
        """Reads a TOML run config file."""
    @classmethod
    def from_toml_str(cls, text: str) -> RunConfig:
        """Parses TOML text."""
    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> RunConfig:
        """Builds a config from a dict laid out like the TOML file."""
    def to_dict(self) -> Dict[str, Any]:
        """Every key of the config, defaults filled in."""
    def to_toml(self) -> str:
        """The config as TOML text."""
    def with_values(self, values: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> RunConfig:
        """A copy with dotted keys set (`{"train.iterations": 100}`), validated again."""
    def describe(self) -> str:
        """The run in words."""
    @property
    def out_dir(self) -> str:
        """The run folder (`train.out_dir`)."""

def train(
    config: ConfigLike,
    out_dir: Optional[PathLike] = None,
    threads: Optional[int] = None,
    progress: bool = True,
    *,
    resume: bool = False,
    overwrite: bool = False,
    iterations: Optional[int] = None,
    evaluate: bool = False,
) -> Dict[str, Any]:
    """Meta-trains a few-shot learner; returns the report with `curve` (numpy arrays
    `iteration`, `train_loss`, `train_accuracy`, `val_loss`, `val_metric`). Releases the GIL;
    Ctrl-C keeps `last.safetensors` and raises KeyboardInterrupt."""

def evaluate(
    checkpoint: PathLike,
    config: Optional[ConfigLike] = None,
    episodes: Optional[int] = None,
    *,
    seed: Optional[int] = None,
    threads: Optional[int] = None,
) -> Dict[str, Any]:
    """The test protocol: `mean`, `ci95`, `error`, `per_episode` (numpy), ..."""

class Predictor:
    """A learner adapted to a support set."""

    @property
    def classes(self) -> npt.NDArray[np.int64]:
        """The support labels in probability order."""
    @property
    def support_size(self) -> int:
        """The number of support examples."""
    def predict(self, query_x: npt.ArrayLike) -> np.ndarray:
        """Predicted labels `(Nq,)` int64 (values for regression, float32)."""
    def predict_proba(self, query_x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Class probabilities `(Nq, n_classes)`."""
    def outputs(self, query_x: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Raw outputs `(Nq, n_classes)` or `(Nq, 1)`."""

class Learner:
    """A trained few-shot learner restored from a checkpoint."""

    def adapt(self, support_x: npt.ArrayLike, support_y: npt.ArrayLike) -> Predictor:
        """Adapts to a support set: float32 `(N, C, H, W)` or `(N, D)`, labels `(N,)`."""
    def read_support(self, folder: PathLike) -> Tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], List[str]]:
        """A folder of class subfolders of PNGs, read as the checkpoint's images were."""
    def read_queries(self, folder: PathLike) -> Tuple[npt.NDArray[np.float32], List[str]]:
        """A folder of PNGs (recursive, sorted), read as the checkpoint's images were."""
    @property
    def algorithm(self) -> str:
        """The method."""
    @property
    def head(self) -> Optional[int]:
        """The classifier head's width, if any."""
    @property
    def input_shape(self) -> Tuple[int, ...]:
        """The shape of one example."""
    @property
    def image_input(self) -> Optional[Tuple[str, int]]:
        """`(color, size)` of the training images, if any."""
    @property
    def is_regression(self) -> bool:
        """Whether it is a regression model."""
    @property
    def config(self) -> RunConfig:
        """The run config in effect."""
    @property
    def checkpoint(self) -> str:
        """The checkpoint file."""

def load(checkpoint: PathLike, config: Optional[ConfigLike] = None) -> Learner:
    """Loads a checkpoint of `train` / `metalearn train`."""
