"""Feature extraction over a list of image files: cached vectors reused, the rest computed."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from imagefit.data.digests import file_digest
from imagefit.data.images import os_reason
from imagefit.data.loader import default_workers, iterate_batches
from imagefit.features.autotune import architecture_key, choose_engine, remembered
from imagefit.features.cache import FeatureCache, cache_root, model_key
from imagefit.features.engines import TORCH_ENGINES, make_engine
from imagefit.features.layers import PRE_LOGITS, Embedding, embedding_dim
from imagefit.features.quantize import Calibration, cached_int8
from imagefit.models.defaults import precision_of

log = logging.getLogger(__name__)

_SHARD_EVERY = 1024  # images per cache shard written during a long extraction
_EXPORT_WORTH = 200  # images from which measuring the engines (and exporting to ONNX) pays for itself
_TUNE_SAMPLE = 8  # images of the first batch the engines are timed on (memory grows with it)


@dataclass
class Features:
    """Vectors for the files that decoded, in input order, plus the files that did not."""

    paths: list[Path]
    vectors: np.ndarray  # (n_ok, dim), rows for paths[ok]
    ok: np.ndarray  # (n,) bool
    errors: list[tuple[Path, str]] = field(default_factory=list)
    reused: int = 0
    computed: int = 0
    digests: list[str] = field(default_factory=list)  # content hashes, in input order, when cached


def _extraction_workers() -> int:
    """Decode workers for extraction: none on 2 cores or fewer, where the engine wants both cores.

    On the project's 2-core CPU, decoding between engine calls in one process ran 127 images/s
    end to end against 83 with one decode worker competing with the engine's threads (bench.extract
    --sweep, idle machine).
    """
    cores = os.cpu_count() or 1
    return 0 if cores <= 2 else default_workers()


class FeatureExtractor:
    """Embeddings of a timm model (pre-logits or a named layer), fastest engine, cached by file content."""

    def __init__(
        self,
        model: torch.nn.Module,
        data_config: dict,
        engine: str = "auto",
        batch_size: int = 32,
        workers: int | None = None,
        cache: bool = True,
        progress: bool = True,
        layer: str = PRE_LOGITS,
        pool: str = "avg",
        flip: bool = False,
        view: str = "image",
        calibration: Calibration | None = None,
    ):
        self.model = model.eval()
        self.net = Embedding(self.model, layer, pool, flip, view)
        self.data_config = data_config
        self.batch_size = batch_size
        self.workers = _extraction_workers() if workers is None else workers
        self.progress = progress
        self.key = model_key(model, data_config, self.net.describe())
        self.onnx_path = cache_root() / "onnx" / f"{self.key}.onnx"
        self.calibration = calibration
        self.precision = self._precision(engine)
        tag = "" if self.precision == "fp32" else f"-{self.precision}"
        self.cache = FeatureCache(self.key + tag, precision=self.precision) if cache else None
        self._engine_kind = engine
        self._engine = None
        self.dim = embedding_dim(self.net, tuple(data_config["input_size"]))

    def engine(self, n_images: int, sample: torch.Tensor | None = None):
        """The inference engine, built on first use.

        'auto' on a CPU uses the engine measured earlier for this model on this machine; a job
        large enough to pay for the measurement (and the ONNX export) measures it on `sample`,
        a smaller one runs PyTorch channels_last.
        """
        if self._engine is None:
            self._engine = self._build_engine(n_images, sample)
        return self._engine

    def _precision(self, kind: str) -> str:
        """What the vectors are computed in, known before the engine is built: the cache key's part.

        int8 vectors are named by their calibration set too: two calibrations give two caches."""
        if torch.cuda.is_available() and kind in ("auto", "torch", "bf16"):
            return "bf16"  # PyTorch under bf16 autocast on the GPU
        precision = precision_of(kind)
        if precision != "int8":
            return precision
        digest = self.calibration.digest if self.calibration else None
        graph = cached_int8(self.onnx_path, digest)
        return f"int8-{digest or (graph.stem.rsplit('-', 1)[-1] if graph else 'uncalibrated')}"

    def _build_engine(self, n_images: int, sample: torch.Tensor | None):
        engine = self._new_engine(n_images, sample)
        made = getattr(engine, "precision", "fp32")
        if made != self.precision.split("-")[0]:  # never cache vectors under another precision's key
            raise RuntimeError(f"engine {engine.name} computes in {made}, not {self.precision}")
        return engine

    def _new_engine(self, n_images: int, sample: torch.Tensor | None):
        onnx_path, kind = self.onnx_path, self._engine_kind
        if kind != "auto" or torch.cuda.is_available():
            return make_engine(self.net, self.data_config, kind, onnx_path, self.calibration)
        arch = architecture_key(self.net, self.data_config)
        known = remembered(arch)
        if known is not None:
            return make_engine(self.net, self.data_config, known, onnx_path)
        if n_images >= _EXPORT_WORTH and sample is not None:
            return choose_engine(self.net, self.data_config, sample[:_TUNE_SAMPLE], onnx_path, arch)
        return make_engine(self.net, self.data_config, "channels_last", onnx_path)

    def __call__(self, paths: Sequence[str | Path], desc: str = "features") -> Features:
        paths = [Path(p) for p in paths]
        table = np.zeros((len(paths), self.dim), np.float32)
        ok = np.zeros(len(paths), bool)
        errors: dict[int, str] = {}
        digests = self._digests(paths, errors)
        found = self.cache.get([digests.get(i, "") for i in range(len(paths))]) if self.cache else {}
        for i, vector in found.items():
            table[i], ok[i] = vector, True
        todo = [i for i in range(len(paths)) if i not in found and i not in errors]
        if found:
            log.info("reused %d cached feature vectors, computing %d", len(found), len(todo))
        self._compute(paths, todo, digests, table, ok, errors, desc)
        return Features(
            paths=paths,
            vectors=table[ok],
            ok=ok,
            errors=[(paths[i], errors[i]) for i in sorted(errors)],
            reused=len(found),
            computed=len(todo) - sum(1 for i in todo if i in errors),
            digests=[digests.get(i, "") for i in range(len(paths))] if digests else [],
        )

    def _digests(self, paths: list[Path], errors: dict[int, str]) -> dict[int, str]:
        if self.cache is None:
            return {}
        digests = {}
        for i, path in enumerate(paths):
            try:
                digests[i] = file_digest(path)
            except OSError as exc:
                errors[i] = f"{path}: {os_reason(exc)}"
        return digests

    def _compute(self, paths, todo, digests, table, ok, errors, desc) -> None:
        if not todo:
            return
        pending: list[int] = []
        bar = tqdm(total=len(todo), desc=desc, unit="img", disable=not self.progress, leave=False)
        pin = torch.cuda.is_available() and self._engine_kind in ("auto", "torch", *TORCH_ENGINES)
        for batch in iterate_batches(
            [paths[i] for i in todo], self.data_config, self.batch_size, self.workers, pin_memory=pin
        ):
            for j, message in batch.errors:
                errors[todo[j]] = message
            if batch.images is not None:
                rows = [todo[j] for j in batch.indices.tolist()]
                table[rows] = self.engine(len(todo), batch.images)(batch.images)
                ok[rows] = True
                pending.extend(rows)
            if len(pending) >= _SHARD_EVERY:
                self._store(pending, digests, table)
                pending = []
            bar.update(len(batch.indices) + len(batch.errors))
        bar.close()
        self._store(pending, digests, table)

    def _store(self, rows: list[int], digests: dict[int, str], table: np.ndarray) -> None:
        if self.cache is not None and rows:
            self.cache.put([digests[i] for i in rows], table[rows])
