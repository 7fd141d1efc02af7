"""An on-disk feature cache keyed by model (architecture, weights, preprocessing) and file content."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch

from imagefit.data.atomic import write_with
from imagefit.data.digests import DIGEST_BYTES
from imagefit.errors import WriteError

log = logging.getLogger(__name__)

_STALE_SECONDS = 3600
_unwritable: set[Path] = set()  # cache roots that failed a write in this process


def cache_root() -> Path:
    """$IMAGEFIT_CACHE, else ~/.cache/imagefit."""
    env = os.environ.get("IMAGEFIT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "imagefit"


def cache_writable(root: Path | None = None) -> bool:
    """False once a write under the cache root failed in this process (later writes are skipped)."""
    return (root or cache_root()) not in _unwritable


def cache_write_failed(error: WriteError, root: Path | None = None) -> None:
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
    """Vectors by file digest for one model key, stored as append-only safetensors shards."""

    def __init__(self, key: str, root: Path | None = None):
        self.root = root or cache_root()
        self.dir = self.root / "features" / key
        self._table: dict[str, np.ndarray] | None = None

    def _load(self) -> dict[str, np.ndarray]:
        if self._table is None:
            self._table = {}
            self._remove_stale_temporaries()
            for shard in sorted(self.dir.glob("*.safetensors")):
                self._table.update(self._read_shard(shard))
        return self._table

    @staticmethod
    def _read_shard(shard: Path) -> dict[str, np.ndarray]:
        """The vectors of one shard; a shard that fails to read or to match its checksum is removed."""
        from safetensors import safe_open
        from safetensors.numpy import load_file

        try:
            with safe_open(str(shard), "np") as fh:
                expected = (fh.metadata() or {}).get("checksum")
            arrays = load_file(str(shard))
            digests, vectors = arrays["digests"], arrays["features"]
            if expected is not None and _checksum(digests, vectors) != expected:
                raise ValueError("contents do not match the checksum written with them")
            return {d.tobytes().hex(): v for d, v in zip(digests, vectors, strict=True)}
        except Exception as exc:
            log.warning("feature cache shard %s is unreadable (%s): recomputing", shard, exc)
            shard.unlink(missing_ok=True)
            return {}

    def _remove_stale_temporaries(self) -> None:
        """Temporary files left by a process killed while writing a shard (older than an hour)."""
        for tmp in self.dir.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                if time.time() - tmp.stat().st_mtime > _STALE_SECONDS:
                    tmp.unlink()

    def reload(self) -> None:
        """Forget what was read, so that the next lookup sees shards other processes wrote since."""
        self._table = None

    def get(self, digests: list[str]) -> dict[int, np.ndarray]:
        """Position in `digests` -> cached vector, for those present."""
        table = self._load()
        return {i: table[d] for i, d in enumerate(digests) if d in table}

    def put(self, digests: list[str], vectors: np.ndarray) -> None:
        """Store vectors for digests in a new shard, written atomically; an unwritable cache is skipped."""
        if not digests:
            return
        table = self._load()
        table.update(zip(digests, np.asarray(vectors, np.float32), strict=True))
        if cache_writable(self.root):
            self._write_shard(digests, vectors)

    def _write_shard(self, digests: list[str], vectors: np.ndarray) -> None:
        from safetensors.numpy import save_file

        arrays = {
            "digests": np.frombuffer(b"".join(bytes.fromhex(d) for d in digests), np.uint8).reshape(
                len(digests), DIGEST_BYTES
            ),
            "features": np.ascontiguousarray(vectors, dtype=np.float32),
        }
        name = f"{time.time_ns():x}-{os.getpid()}.safetensors"
        meta = {"checksum": _checksum(arrays["digests"], arrays["features"])}
        try:
            write_with(self.dir / name, lambda p: save_file(arrays, str(p), metadata=meta))
        except WriteError as exc:
            cache_write_failed(exc, self.root)


def _checksum(digests: np.ndarray, vectors: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=DIGEST_BYTES)
    h.update(np.ascontiguousarray(digests).tobytes())
    h.update(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    return h.hexdigest()
