"""imagefit.features: embeddings of every image in a folder, written as an embedding file."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from imagefit.data.images import warn_skipped
from imagefit.errors import OptionError
from imagefit.features.extract import FeatureExtractor
from imagefit.features.layers import PRE_LOGITS
from imagefit.features.store import EmbeddingSet, EmbeddingWriter, mapped_embeddings
from imagefit.runs import open_model

log = logging.getLogger(__name__)

CHUNK = 4096  # images embedded (and appended to the store) before the next ones are read


def make_extractor(
    model_or_run, weights="auto", layer=PRE_LOGITS, pool="avg", flip=False, **options
) -> tuple[FeatureExtractor, dict]:
    """An extractor for a model source, and the record of it that embedding files carry."""
    model, data_config, info = open_model(model_or_run, weights)
    extractor = FeatureExtractor(model, data_config, layer=layer, pool=pool, flip=flip, **options)
    record = {
        **info,
        "layer": layer,
        "pool": pool,
        "flip": flip,
        "key": extractor.key,
        "data_config": {k: list(v) if isinstance(v, tuple) else v for k, v in data_config.items()},
    }
    return extractor, record


def features(
    model_or_run: str | os.PathLike,
    folder: str | os.PathLike,
    out: str | os.PathLike | None = None,
    layer: str = PRE_LOGITS,
    pool: str = "avg",
    flip: bool = False,
    weights: str | Path = "auto",
    **options,
) -> EmbeddingSet | None:
    """Embeddings of every image under `folder` (recursively, sorted); written to `out` if given.

    The images go through in chunks, each one's vectors appended to the feature store before the
    next, so a killed run resumes where it stopped. With `out`, vectors stream to the file and the
    result maps it from disk. Under torchrun each rank embeds its share into the store, then rank 0
    writes `out` from the store (other ranks return None).
    """
    from imagefit.data.paths import collect_inputs

    folder = Path(folder)
    paths = collect_inputs([folder])
    base = folder if folder.is_dir() else folder.parent
    extractor, record = make_extractor(model_or_run, weights, layer, pool, flip, **options)
    if not _embed_shares(extractor, paths):
        return None
    if out is None:
        return _collect(extractor, paths, base, record)
    writer = EmbeddingWriter(out, str(base.resolve()), record, extractor.dim)
    for result in stream(extractor, paths):
        _write(writer, result, base)
    return mapped_embeddings(writer.close())


def stream(extractor: FeatureExtractor, paths: list[Path], chunk: int = CHUNK, desc: str = "features"):
    """Features of `paths`, `chunk` files at a time, under one progress bar with rate and time left."""
    from tqdm.auto import tqdm

    shown, extractor.progress = extractor.progress, False
    bar = tqdm(total=len(paths), desc=desc, unit="img", disable=not shown, smoothing=0.1)
    try:
        for start in range(0, len(paths), chunk):
            result = extractor(paths[start : start + chunk])
            for path, reason in result.errors:
                warn_skipped(path, reason)
            bar.update(len(result.paths))
            yield result
    finally:
        bar.close()
        extractor.progress = shown


def _embed_shares(extractor: FeatureExtractor, paths: list[Path]) -> bool:
    """Under torchrun: each rank embeds its share into the store; True on the rank that goes on."""
    from imagefit.train.engine import distributed

    if not distributed.init():
        return True
    if extractor.cache is None:
        raise OptionError("distributed extraction shares vectors through the feature store: keep the cache")
    distributed.agree(lambda: sum(1 for _ in stream(extractor, distributed.shard(paths))), "features")
    return distributed.is_main()


def _rows(result, base: Path) -> tuple[list[str], list[str], np.ndarray]:
    kept = [p.relative_to(base).as_posix() for p, ok in zip(result.paths, result.ok, strict=True) if ok]
    digests = [d for d, ok in zip(result.digests, result.ok, strict=True) if ok] if result.digests else []
    return kept, digests, result.vectors


def _write(writer: EmbeddingWriter, result, base: Path) -> None:
    writer.add(*_rows(result, base))
    writer.skipped.extend({"path": str(p), "reason": r} for p, r in result.errors)


def _collect(extractor: FeatureExtractor, paths: list[Path], base: Path, record: dict) -> EmbeddingSet:
    parts = [(*_rows(r, base), r.errors) for r in stream(extractor, paths)]
    return EmbeddingSet(
        vectors=np.concatenate([p[2] for p in parts]) if parts else np.zeros((0, extractor.dim), np.float32),
        paths=[q for p in parts for q in p[0]],
        root=str(base.resolve()),
        model=record,
        digests=[d for p in parts for d in p[1]],
        skipped=[{"path": str(q), "reason": r} for p in parts for q, r in p[3]],
    )
