"""Type stubs of metalearn.transfer: transfer learning."""

import os
from typing import Any, Dict, Mapping, Optional, Union

PathLike = Union[str, os.PathLike[str]]

def run(
    config: Union[PathLike, Mapping[str, Any]],
    *,
    progress: bool = False,
    threads: Optional[int] = None,
) -> Dict[str, Any]:
    """Runs a transfer config; `report["table"]` is a list of records."""
