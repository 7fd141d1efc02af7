"""A deterministic stream of (digests, vectors) batches; imports NumPy only, so writers start fast."""

from __future__ import annotations

import hashlib

import numpy as np

DIM = 64


def batch(n: int, size: int = 500) -> tuple[list[str], np.ndarray]:
    """Batch n of the stream: digests and vectors that say which row they are."""
    rows = range(n * size, (n + 1) * size)
    digests = [hashlib.blake2b(str(r).encode(), digest_size=16).hexdigest() for r in rows]
    vectors = np.random.default_rng(n).normal(size=(size, DIM)).astype(np.float32)
    return digests, vectors
