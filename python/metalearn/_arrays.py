"""Argument checks shared by the modules: arrays of the dtypes the engine takes."""

from __future__ import annotations

from typing import Any

import numpy as np


def float32_array(x: Any, name: str) -> np.ndarray:
    """``x`` as a C-contiguous float32 numpy array (no copy when it already is one).

    Raises ``TypeError`` when ``x`` is not numeric or not float32 (the engine computes in
    float32; convert with ``x.astype(np.float32)``)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.dtype != np.float32:
        raise TypeError(
            f"{name} must be a float32 array, got dtype {a.dtype}; "
            f"convert it with {name}.astype(np.float32)"
        )
    return np.ascontiguousarray(a)


def label_array(y: Any, name: str) -> np.ndarray:
    """``y`` as a 1-D int64 array of class labels.

    Raises ``TypeError`` for non-integer labels, ``ValueError`` for another rank."""
    if hasattr(y, "detach") and hasattr(y, "cpu"):
        y = y.detach().cpu().numpy()
    a = np.asarray(y)
    if a.dtype.kind not in "iu":
        raise TypeError(
            f"{name} must hold integer class labels, got dtype {a.dtype} "
            f"(map class names to integers first)"
        )
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per example), got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.int64)
