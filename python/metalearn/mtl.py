"""Multi-task learning (``metalearn mtl``): a shared-trunk model trained on several tasks at
once with a loss-weighting method (equal, uncertainty, DWA, RLW, GradNorm, PCGrad, MGDA,
CAGrad, Nash-MTL), beside single-task baselines."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Mapping, Optional, Union

from . import _native

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["train"]


def train(
    config: Union[PathLike, Mapping[str, Any]],
    *,
    method: Optional[str] = None,
    architecture: Optional[str] = None,
    epochs: Optional[int] = None,
    train_limit: Optional[int] = None,
    baselines: bool = True,
    out_dir: Optional[PathLike] = None,
    progress: bool = False,
    threads: Optional[int] = None,
) -> Dict[str, Any]:
    """Trains a multi-task config (a TOML path such as ``configs/mnist-multitask.toml``, or
    a dict laid out like it); the keyword arguments override the config as the command
    line's flags do. Returns the report as a dict; ``report["tasks"]`` is a list of records
    (``pandas.DataFrame(report["tasks"])``): per task ``name``, ``metric``, ``multi_task``,
    ``single_task``, ... The GIL is released while it runs."""
    from . import _plain  # noqa: PLC0415 (the package's JSON helper)

    path, text = _source(config, _plain)
    report = _native.mtl_train(
        path,
        text,
        method,
        architecture,
        epochs,
        train_limit,
        baselines,
        None if out_dir is None else os.fspath(out_dir),
        progress,
        threads,
    )
    return json.loads(report)


def _source(config: Any, plain: Any) -> "tuple[Optional[str], Optional[str]]":
    if isinstance(config, Mapping):
        return None, json.dumps(plain(config))
    if isinstance(config, (str, os.PathLike)):
        return os.fspath(config), None
    raise TypeError(f"config: expected a path to a TOML file or a dict, got {type(config).__name__}")
