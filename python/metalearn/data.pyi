"""Type stubs of metalearn.data: datasets and episodes as numpy arrays."""

import os
from typing import Iterator, List, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

PathLike = Union[str, os.PathLike[str]]

class Episode:
    """One episode; unpacks as `support_x, support_y, query_x, query_y`."""

    support_x: npt.NDArray[np.float32]
    support_y: npt.NDArray[np.int64]
    query_x: npt.NDArray[np.float32]
    query_y: npt.NDArray[np.int64]
    classes: npt.NDArray[np.int64]
    support_index: npt.NDArray[np.int64]
    query_index: npt.NDArray[np.int64]
    index: int
    def __iter__(self) -> Iterator[np.ndarray]: ...
    def __len__(self) -> int: ...
    def __getitem__(self, i: int) -> np.ndarray: ...

class Dataset:
    """A labelled dataset held by the engine."""

    def __len__(self) -> int: ...
    @property
    def num_classes(self) -> int: ...
    @property
    def class_names(self) -> List[str]: ...
    @property
    def example_shape(self) -> Tuple[int, ...]: ...
    def arrays(self) -> Tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """All examples and labels (copies)."""
    def episodes(
        self,
        n_way: int,
        k_shot: int,
        q_query: int,
        seed: int = 0,
        count: Optional[int] = None,
        start: int = 0,
    ) -> Iterator[Episode]:
        """N-way K-shot Q-query episodes drawn by the engine's sampler."""

def default_data_dir() -> str: ...
def omniglot(path: Optional[PathLike] = None, image_size: int = 28, split: str = "all") -> Dataset:
    """Omniglot (`split`: all, background or evaluation)."""
def image_folder(path: PathLike, color: str = "gray", image_size: Optional[int] = None) -> Dataset:
    """A folder with one subfolder of PNG images per class."""
def csv(path: PathLike, label_column: Optional[str] = None) -> Dataset:
    """A CSV of feature vectors with a label column."""
def read_images(path: PathLike, color: str = "gray", image_size: int = 28) -> Tuple[npt.NDArray[np.float32], List[str]]:
    """The PNG images of a folder, recursively, sorted."""
