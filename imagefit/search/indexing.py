"""imagefit index: a persisted similarity index of a folder or an embedding file, grown in place."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from imagefit.errors import DataError, OptionError
from imagefit.features.index import SimilarityIndex, is_index
from imagefit.features.layers import PRE_LOGITS
from imagefit.features.store import mapped_embeddings
from imagefit.search.embed import make_extractor, stream

log = logging.getLogger(__name__)

_CHUNK = 10_000  # rows of an embedding file moved into the index at a time


def index(
    source: str | os.PathLike,
    out: str | os.PathLike,
    model: str | None = None,
    metric: str | None = None,
    weights: str | Path = "auto",
    layer: str = PRE_LOGITS,
    **options,
) -> SimilarityIndex:
    """Make the index `out` of `source` (a folder of images or an embedding file), or add to it.

    Images (or rows) already in the index are kept as they are; only new ones are embedded and
    added, without retraining the index. A folder's vectors go through the feature store, so an
    interrupted run starts again where it stopped.
    """
    source = Path(source)
    if source.is_dir():
        return _from_folder(source, Path(out), model, metric, weights, layer, **options)
    if model is not None:
        raise OptionError("--model is for folders: an embedding file already says which model made it")
    return _from_embeddings(source, Path(out), metric)


def _open_or_create(out: Path, record: dict, root: str, metric: str | None) -> SimilarityIndex:
    if not is_index(out):
        return SimilarityIndex.create(out, record, root, metric or "euclidean")
    found = SimilarityIndex.open(out)
    if found.model["key"] != record["key"]:
        raise OptionError(
            f"{out} holds vectors of {found.model['source']} ({found.model['layer']}), not of "
            f"{record['source']} ({record['layer']}): write another index"
        )
    if found.meta["root"] != root:
        raise OptionError(f"{out} indexes {found.meta['root']}, not {root}: write another index")
    if metric and metric != found.meta["metric"]:
        raise OptionError(f"{out} was built for {found.meta['metric']} distance, not {metric}")
    return found


def _from_embeddings(source: Path, out: Path, metric: str | None) -> SimilarityIndex:
    data = mapped_embeddings(source)
    found = _open_or_create(out, data.model, data.root, metric)
    known = found.known()
    new = [i for i, p in enumerate(data.paths) if p not in known]
    for start in range(0, len(new), _CHUNK):
        rows = new[start : start + _CHUNK]
        digests = [data.digests[i] for i in rows] if data.digests else [""] * len(rows)
        found.append([data.paths[i] for i in rows], digests, data.vectors[rows])
    found.sync()
    log.info("%s: %d images, %d new", out, len(found), len(new))
    return found


def _from_folder(folder: Path, out: Path, model, metric, weights, layer, **options) -> SimilarityIndex:
    from imagefit.data.paths import collect_inputs

    existing = SimilarityIndex.open(out).model if is_index(out) and model is None else None
    if existing is not None:  # the index's own model, as it was made
        weights = Path(existing["weights_file"]) if existing.get("weights_file") else weights
        source, layer, pool, flip = existing["source"], existing["layer"], existing["pool"], existing["flip"]
    else:
        source, pool, flip = model or "efficientnet_lite0", "avg", False
    extractor, record = make_extractor(source, weights, layer, pool, flip, **options)
    found = _open_or_create(out, record, str(folder.resolve()), metric)
    known = found.known()
    todo = [p for p in collect_inputs([folder]) if p.relative_to(folder).as_posix() not in known]
    for result in stream(extractor, todo, desc="index"):
        kept = [p.relative_to(folder).as_posix() for p, ok in zip(result.paths, result.ok, strict=True) if ok]
        digests = [d for d, ok in zip(result.digests, result.ok, strict=True) if ok] or [""] * len(kept)
        found.append(kept, digests, result.vectors)
    if not len(found):
        raise DataError(f"no readable images under {folder}")
    found.sync()
    log.info("%s: %d images, %d new", out, len(found), len(todo))
    return found
