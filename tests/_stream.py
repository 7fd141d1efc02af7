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


def old_shard(path, digests: list[str], vectors: np.ndarray) -> None:
    """A feature-cache shard as imagefit wrote them before the store (safetensors with a checksum)."""
    from safetensors.numpy import save_file

    raw = np.frombuffer(b"".join(bytes.fromhex(d) for d in digests), np.uint8).reshape(-1, 16)
    vectors = np.ascontiguousarray(vectors, np.float32)
    checksum = hashlib.blake2b(raw.tobytes() + vectors.tobytes(), digest_size=16).hexdigest()
    save_file({"digests": raw, "features": vectors}, str(path), metadata={"checksum": checksum})
