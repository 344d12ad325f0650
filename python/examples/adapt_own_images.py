"""Adapting a trained checkpoint to your own images: a support folder with one subfolder of
PNG images per class, and a folder of query PNGs — the same files `metalearn adapt` takes.

    python python/examples/adapt_own_images.py CHECKPOINT SUPPORT_DIR QUERY_DIR
    python python/examples/adapt_own_images.py CHECKPOINT          # a demo set from Omniglot

Images are read as the checkpoint's training images were (Omniglot models: ink = 1 - luma,
resized to the model's size), so black-on-white drawings work as they are.
"""

import struct
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

import metalearn


def write_png(path: Path, gray: np.ndarray) -> None:
    """An 8-bit grayscale PNG (for the demo set)."""
    h, w = gray.shape
    raw = b"".join(b"\x00" + gray[r].tobytes() for r in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def demo_folders() -> "tuple[Path, Path]":
    """Three Omniglot characters as black-on-white PNGs: 2 drawings each for support, 3 queries."""
    root = Path(tempfile.mkdtemp(prefix="metalearn-own-images-"))
    ep = next(metalearn.data.omniglot(split="evaluation").episodes(3, 2, 1, seed=3))
    to_png = lambda ink: np.round(255 * (1 - ink[0])).astype(np.uint8)  # noqa: E731
    for i, (x, y) in enumerate(zip(ep.support_x, ep.support_y)):
        write_png(root / "support" / f"symbol_{'abc'[y]}" / f"{i}.png", to_png(x))
    for i, (x, y) in enumerate(zip(ep.query_x, ep.query_y)):
        write_png(root / "query" / f"unknown_{i}_(is_{'abc'[y]}).png", to_png(x))
    return root / "support", root / "query"


if len(sys.argv) not in (2, 4):
    sys.exit(__doc__)
learner = metalearn.load(sys.argv[1])
support_dir, query_dir = (Path(sys.argv[2]), Path(sys.argv[3])) if len(sys.argv) == 4 else demo_folders()

support_x, support_y, class_names = learner.read_support(support_dir)
query_x, query_names = learner.read_queries(query_dir)
predictor = learner.adapt(support_x, support_y)
probs = predictor.predict_proba(query_x)
for name, p in zip(query_names, probs):
    best = int(np.argmax(p))
    print(f"{name}: {class_names[best]} ({100 * p[best]:.1f}%)")
