"""Nearest-neighbour search: exact results equal brute force; the IVF index agrees where it is exact."""

from __future__ import annotations

import numpy as np
import pytest

from imagefit.errors import OptionError
from imagefit.features.neighbours import NeighbourIndex


def brute_force(x: np.ndarray, q: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    if metric == "cosine":
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        qn = q / np.linalg.norm(q, axis=1, keepdims=True)
        d = 1 - qn @ xn.T
    else:
        d = np.linalg.norm(q[:, None, :] - x[None, :, :], axis=2)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, idx, 1), idx


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_exact_search_equals_brute_force(metric: str) -> None:
    rng = np.random.default_rng(0)
    x, q = rng.normal(size=(300, 16)), rng.normal(size=(7, 16))
    dist, idx = NeighbourIndex(x, metric, method="exact").search(q, 5)
    want_d, want_i = brute_force(x, q, 5, metric)
    np.testing.assert_array_equal(idx, want_i)
    np.testing.assert_allclose(dist, want_d, rtol=1e-4, atol=1e-4)


def test_ivf_index_finds_the_same_neighbours_on_clustered_data() -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(50, 32)) * 10
    x = (centres[rng.integers(0, 50, 5000)] + rng.normal(size=(5000, 32))).astype(np.float32)
    q = (centres[rng.integers(0, 50, 40)] + rng.normal(size=(40, 32))).astype(np.float32)
    _, exact = NeighbourIndex(x, method="exact").search(q, 10)
    ivf = NeighbourIndex(x, method="ivf")
    _, approx = ivf.search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, approx, strict=True)])
    assert recall >= 0.95
    ivf._ivf.nprobe = ivf._ivf.nlist  # probing every cell makes the IVF exact
    _, every = ivf.search(q, 10)
    np.testing.assert_array_equal(np.sort(every, 1), np.sort(exact, 1))


def test_k_larger_than_the_index_is_a_clear_error() -> None:
    index = NeighbourIndex(np.eye(4))
    with pytest.raises(OptionError, match="between 1 and the index size"):
        index.search(np.ones((1, 4)), 5)


def test_unknown_metric() -> None:
    with pytest.raises(OptionError, match="unknown metric"):
        NeighbourIndex(np.eye(3), metric="manhattan")
