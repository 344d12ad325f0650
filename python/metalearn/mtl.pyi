"""Type stubs of metalearn.mtl: multi-task learning."""

import os
from typing import Any, Dict, Mapping, Optional, Union

PathLike = Union[str, os.PathLike[str]]

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
    """Trains a multi-task config; `report["tasks"]` is a list of records."""
