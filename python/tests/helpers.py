"""Writing the files `metalearn adapt` reads (CSV, PNG) from numpy arrays, exactly."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np


def write_csv(path: Path, x: np.ndarray, labels: Sequence | None = None) -> None:
    """One row per example: its values flattened (9 significant digits: float32 round-trips
    exactly), then the label when given."""
    rows = x.reshape(len(x), -1)
    with open(path, "w") as f:
        for i, r in enumerate(rows):
            fields = [f"{v:.9g}" for v in r.tolist()]
            if labels is not None:
                fields.append(str(labels[i]))
            f.write(",".join(fields) + "\n")


def write_png(path: Path, gray: np.ndarray) -> None:
    """An 8-bit grayscale PNG of ``gray`` (2-D uint8)."""
    h, w = gray.shape
    raw = b"".join(b"\x00" + gray[r].astype(np.uint8).tobytes() for r in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)


def ink_to_png(ink: np.ndarray) -> np.ndarray:
    """An ink image in [0, 1] (1 = stroke) as black-on-white 8-bit pixels."""
    return np.round(255.0 * (1.0 - ink)).clip(0, 255).astype(np.uint8)
