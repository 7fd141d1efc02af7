"""An on-disk feature cache keyed by model (architecture, weights, preprocessing) and file content."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sqlite3
import time
from pathlib import Path

import numpy as np
import torch

from imagefit.data.digests import DIGEST_BYTES
from imagefit.errors import DataError, WriteError
from imagefit.features.locations import cache_root
from imagefit.features.vectorstore import PrecisionMismatch, VectorStore

log = logging.getLogger(__name__)

_STALE_SECONDS = 3600
STORE_NAME = "vectors.sqlite"
_unwritable: set[Path] = set()  # cache roots that failed a write in this process


def cache_writable(root: Path | None = None) -> bool:
    """False once a write under the cache root failed in this process (later writes are skipped)."""
    return (root or cache_root()) not in _unwritable


def cache_write_failed(error: Exception, root: Path | None = None) -> None:
    """Warn once per process and cache root that the cache is not written, and go on without it."""
    root = root or cache_root()
    if root not in _unwritable:
        _unwritable.add(root)
        log.warning("%s; going on without the feature cache (set IMAGEFIT_CACHE to a writable folder)", error)


def model_key(model: torch.nn.Module, data_config: dict, layer: str = "pre-logits") -> str:
    """Hash of everything that decides a feature vector: architecture, weights, preprocessing, layer."""
    h = hashlib.sha256()
    meta = {"class": type(model).__name__, "layer": layer, "data": data_config}
    h.update(json.dumps(meta, sort_keys=True, default=str).encode())
    classifier = model.get_classifier()
    head = {id(p) for p in classifier.parameters()} if isinstance(classifier, torch.nn.Module) else set()
    for name, tensor in model.state_dict(keep_vars=True).items():
        if id(tensor) in head:
            continue
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


class FeatureCache:
    """Vectors by file digest for one model key, in a VectorStore; old safetensors shards moved into it.

    `precision` ('fp32', 'bf16', 'int8-<calibration>') is checked against the store's: the key of a
    reduced-precision engine's cache differs from the fp32 one's, and a store never mixes the two."""

    def __init__(self, key: str, root: Path | None = None, precision: str | None = "fp32"):
        self.root = root or cache_root()
        self.dir = self.root / "features" / key
        self.precision = precision
        self.store = VectorStore(self.dir / STORE_NAME, precision)
        self._migrated = False
        self._memory: dict[str, np.ndarray] = {}  # vectors the store could not take, this process only

    def _ready(self) -> VectorStore:
        if not self._migrated:
            self._migrate()
            self._migrated = True
        return self.store

    def _migrate(self) -> None:
        """Move the shards an older imagefit wrote into the store, one at a time, without recomputing."""
        if not self.dir.is_dir():
            return
        self._remove_stale_temporaries()
        shards = sorted(self.dir.glob("*.safetensors"))
        for shard in shards:
            digests, vectors = self._read_shard(shard)
            if digests:
                self.store.put(digests, vectors)
            shard.unlink(missing_ok=True)
        if shards:
            log.info("moved %d feature cache shard(s) of %s into %s", len(shards), self.dir.name, STORE_NAME)

    @staticmethod
    def _read_shard(shard: Path) -> tuple[list[str], np.ndarray | None]:
        """Digests and vectors of an old shard; none for one unreadable or failing its checksum."""
        from safetensors import safe_open
        from safetensors.numpy import load_file

        try:
            with safe_open(str(shard), "np") as fh:
                expected = (fh.metadata() or {}).get("checksum")
            arrays = load_file(str(shard))
            digests, vectors = arrays["digests"], arrays["features"]
            if expected is not None and _checksum(digests, vectors) != expected:
                raise ValueError("contents do not match the checksum written with them")
            return [d.tobytes().hex() for d in digests], vectors
        except FileNotFoundError:
            return [], None  # another process moved it in meanwhile
        except Exception as exc:
            log.warning("feature cache shard %s is unreadable (%s): recomputing", shard, exc)
            return [], None

    def _remove_stale_temporaries(self) -> None:
        """Temporary files left by a process killed while writing a shard (older than an hour)."""
        for tmp in self.dir.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                if time.time() - tmp.stat().st_mtime > _STALE_SECONDS:
                    tmp.unlink()

    def reload(self) -> None:
        """Look again for old-format shards; vectors other processes appended are seen without it."""
        self._migrated = False

    def get(self, digests: list[str]) -> dict[int, np.ndarray]:
        """Position in `digests` -> cached vector, for those present."""
        found = {i: self._memory[d] for i, d in enumerate(digests) if d in self._memory}
        if cache_writable(self.root):
            try:
                found.update(self._ready().get(digests))
            except PrecisionMismatch as exc:
                raise DataError(str(exc)) from exc
            except (OSError, sqlite3.Error) as exc:
                self._failed(exc)
        return found

    def put(self, digests: list[str], vectors: np.ndarray) -> None:
        """Store vectors for digests in one atomic append; when the store cannot take them (disk full,
        no permission) one warning, and they are kept in this process's memory instead."""
        if not digests:
            return
        if cache_writable(self.root):
            try:
                self._ready().put(digests, vectors)
                return
            except PrecisionMismatch as exc:
                raise DataError(str(exc)) from exc
            except (WriteError, OSError, sqlite3.Error) as exc:
                self._failed(exc)
        self._memory.update(zip(digests, np.asarray(vectors, np.float32), strict=True))

    def _failed(self, exc: Exception) -> None:
        cache_write_failed(WriteError(f"could not write the feature cache {self.dir}: {exc}"), self.root)


def _checksum(digests: np.ndarray, vectors: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=DIGEST_BYTES)
    h.update(np.ascontiguousarray(digests).tobytes())
    h.update(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    return h.hexdigest()
