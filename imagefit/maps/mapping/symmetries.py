"""The 8 symmetries of the square on arrays: rotations and mirror images of crops and of windows.

Aerial views have no 'up': training draws crops in any of the 8 views, and test-time augmentation
maps a window in all of them and turns each view's output back before averaging.
"""

from __future__ import annotations

import numpy as np


def dihedral(a: np.ndarray, k: int, axes: tuple[int, int] = (0, 1)) -> np.ndarray:
    """Symmetry k (0-7) of the square on `axes` (rows, cols): k % 4 quarter turns, then a mirror
    image across the columns if k >= 4."""
    a = np.rot90(a, k % 4, axes=axes)
    return np.flip(a, axis=axes[1]) if k >= 4 else a


def undo_dihedral(a: np.ndarray, k: int, axes: tuple[int, int] = (0, 1)) -> np.ndarray:
    """The inverse of `dihedral(a, k, axes)`."""
    if k >= 4:
        a = np.flip(a, axis=axes[1])
    return np.rot90(a, -(k % 4), axes=axes)
