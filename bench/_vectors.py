"""Vectors of the search and store benchmarks: Dogs-vs-Cats embeddings, and synthetic sets made from them."""

from __future__ import annotations

import numpy as np

from bench._common import DOGS_CATS


def real_embeddings() -> tuple[np.ndarray, np.ndarray]:
    """The default backbone's embeddings of the Dogs-vs-Cats photos (cached), and each one's class."""
    from imagefit.search.embed import features

    data = features("efficientnet_lite0", DOGS_CATS, progress=False)
    labels = np.array([p.split("/")[1] for p in data.paths])  # train|valid/<class>/file
    return data.vectors, labels


def synthetic(base: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n vectors: real ones, each with noise a quarter of the real nearest-neighbour distance."""
    return np.concatenate([chunk for _, chunk in synthetic_chunks(base, n, rng, 100_000)])


def synthetic_chunks(base: np.ndarray, n: int, rng: np.random.Generator, chunk: int):
    """(first row, vectors) of synthetic(), `chunk` rows at a time, never all of them in memory."""
    from imagefit.features.neighbours import NeighbourIndex

    d, _ = NeighbourIndex(base, method="exact").search(base, 2)
    sigma = 0.25 * float(np.median(d[:, 1])) / np.sqrt(base.shape[1])
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        out = base[rng.integers(0, len(base), stop - start)]
        out += rng.normal(0, sigma, (stop - start, base.shape[1])).astype(np.float32)
        yield start, out
