"""Datasets as numpy arrays, and N-way K-shot episodes from the engine's sampler.

    ds = metalearn.data.omniglot("../shared/data/omniglot", split="evaluation")
    for sx, sy, qx, qy in ds.episodes(n_way=5, k_shot=1, q_query=15, seed=0, count=100):
        ...  # sx: (5, 1, 28, 28) float32, sy: (5,) int64 in 0..5, class-major

Episode ``i`` of ``episodes(n_way, k_shot, q_query, seed)`` is drawn with a ChaCha8
generator seeded with ``seed`` on stream ``i``, exactly as the crate's fixed episode sets
(``EpisodeSet``, the test episodes of ``metalearn eval``), so it does not depend on how many
are drawn and is the same on every machine.
"""

from __future__ import annotations

import os
from typing import Iterator, List, Optional, Tuple, Union

import numpy as np

from . import _native

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["Dataset", "Episode", "omniglot", "image_folder", "csv", "read_images", "default_data_dir"]


class Episode:
    """One episode: ``support_x`` ``(N*K, ...)`` float32, ``support_y`` ``(N*K,)`` int64 in
    ``0..N`` (class-major: row ``k*K + s`` is shot ``s`` of class ``k``), ``query_x``
    ``(N*Q, ...)``, ``query_y``; ``classes`` (the dataset class of each episode label),
    ``support_index`` and ``query_index`` (the examples' indices in the dataset) and
    ``index`` (its number). Unpacks as ``support_x, support_y, query_x, query_y``."""

    __slots__ = (
        "support_x",
        "support_y",
        "query_x",
        "query_y",
        "classes",
        "support_index",
        "query_index",
        "index",
    )

    def __init__(self, parts: tuple, index: int) -> None:
        (
            self.support_x,
            self.support_y,
            self.query_x,
            self.query_y,
            self.classes,
            self.support_index,
            self.query_index,
        ) = parts
        self.index = index

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.support_x, self.support_y, self.query_x, self.query_y))

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> np.ndarray:
        return (self.support_x, self.support_y, self.query_x, self.query_y)[i]

    def __repr__(self) -> str:
        return (
            f"Episode({self.index}: support {tuple(self.support_x.shape)}, "
            f"query {tuple(self.query_x.shape)}, classes {self.classes.tolist()})"
        )


class Dataset:
    """A labelled dataset held by the engine: images ``(n, C, H, W)`` or vectors ``(n, D)``."""

    __slots__ = ("_inner",)

    def __init__(self, inner: "_native.Dataset") -> None:
        self._inner = inner

    def __len__(self) -> int:
        return len(self._inner)

    @property
    def num_classes(self) -> int:
        """The number of classes."""
        return self._inner.num_classes

    @property
    def class_names(self) -> List[str]:
        """Class names; label ``k`` is ``class_names[k]``."""
        return self._inner.class_names

    @property
    def example_shape(self) -> Tuple[int, ...]:
        """The shape of one example."""
        return tuple(self._inner.example_shape)

    def arrays(self) -> Tuple[np.ndarray, np.ndarray]:
        """All examples ``(n, ...)`` float32 and labels ``(n,)`` int64 (copies)."""
        return self._inner.arrays()

    def episodes(
        self,
        n_way: int,
        k_shot: int,
        q_query: int,
        seed: int = 0,
        count: Optional[int] = None,
        start: int = 0,
    ) -> Iterator[Episode]:
        """Episodes ``start, start + 1, ...`` (``count`` of them, or without end) of N-way
        K-shot Q-query over every class, drawn by the engine's sampler (see the module
        docstring). Raises ``ValueError`` when N exceeds the classes or a class has fewer
        than K + Q examples."""
        for name, v in (("n_way", n_way), ("k_shot", k_shot), ("q_query", q_query), ("seed", seed), ("start", start)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        if count is not None and (not isinstance(count, (int, np.integer)) or count < 0):
            raise ValueError(f"count must be a non-negative integer or None, got {count!r}")
        # Validate the spec before the first episode is asked for.
        self._inner.episode_batch(n_way, k_shot, q_query, seed, start, 0)
        return self._episodes(n_way, k_shot, q_query, seed, count, start)

    def _episodes(self, n_way, k_shot, q_query, seed, count, start) -> Iterator[Episode]:
        i = start
        end = None if count is None else start + count
        while end is None or i < end:
            chunk = 8 if end is None else min(8, end - i)
            for j, parts in enumerate(self._inner.episode_batch(n_way, k_shot, q_query, seed, i, chunk)):
                yield Episode(parts, i + j)
            i += chunk

    def __repr__(self) -> str:
        return repr(self._inner)


def default_data_dir() -> str:
    """``$METALEARN_DATA``, else ``../shared/data`` relative to the working directory."""
    return os.environ.get("METALEARN_DATA") or os.path.join("..", "shared", "data")


def omniglot(path: Optional[PathLike] = None, image_size: int = 28, split: str = "all") -> Dataset:
    """Omniglot: ``path`` is a folder with ``images_background.npz`` and
    ``images_evaluation.npz`` (default: ``default_data_dir()/omniglot``), one of those files,
    or a folder / zip of Lake's PNGs. ``split``: ``all`` (1623 characters), ``background``
    (964) or ``evaluation`` (659). Images ``(1, image_size, image_size)``, ink = 1."""
    if path is None:
        path = os.path.join(default_data_dir(), "omniglot")
    return Dataset(_native.omniglot(os.fspath(path), image_size, split))


def image_folder(path: PathLike, color: str = "gray", image_size: Optional[int] = None) -> Dataset:
    """A folder with one subfolder of PNG images per class (classes sorted by name).
    ``color``: ``gray``, ``rgb`` or ``ink`` (``1 - luma``, for black-on-white drawings such
    as Omniglot's); ``image_size``: resize to a square side (required when sizes differ)."""
    return Dataset(_native.image_folder(os.fspath(path), color, image_size))


def csv(path: PathLike, label_column: Optional[str] = None) -> Dataset:
    """A CSV of feature vectors with a label column: the last one, or the header's
    ``label_column``. Examples are ``(D,)`` vectors."""
    return Dataset(_native.csv(os.fspath(path), label_column))


def read_images(path: PathLike, color: str = "gray", image_size: int = 28) -> Tuple[np.ndarray, List[str]]:
    """The PNG images of a folder, searched recursively and sorted by path, as
    ``(x (n, C, image_size, image_size) float32, names relative to the folder)``."""
    return _native.read_images(os.fspath(path), color, image_size)
