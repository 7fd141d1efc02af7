"""imagefit.features: embeddings of every image in a folder, written as an embedding file."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from imagefit.data.images import warn_skipped
from imagefit.features.extract import FeatureExtractor
from imagefit.features.layers import PRE_LOGITS
from imagefit.features.store import EmbeddingSet, save_embeddings
from imagefit.runs import open_model

log = logging.getLogger(__name__)


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
) -> EmbeddingSet:
    """Embeddings of every image under `folder` (recursively, sorted); written to `out` if given."""
    from imagefit.data.paths import collect_inputs

    folder = Path(folder)
    paths = collect_inputs([folder])
    extractor, record = make_extractor(model_or_run, weights, layer, pool, flip, **options)
    result = extractor(paths, desc="features")
    for path, reason in result.errors:
        warn_skipped(path, reason)
    base = folder if folder.is_dir() else folder.parent
    kept = [p for p, ok in zip(result.paths, result.ok, strict=True) if ok]
    data = EmbeddingSet(
        vectors=result.vectors,
        paths=[p.relative_to(base).as_posix() for p in kept],
        root=str(base.resolve()),
        model=record,
        digests=[d for d, ok in zip(result.digests, result.ok, strict=True) if ok] if result.digests else [],
        skipped=[{"path": str(p), "reason": r} for p, r in result.errors],
    )
    if out is not None:
        save_embeddings(out, data)
    return data
