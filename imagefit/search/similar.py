"""imagefit.similar: the k nearest images of query images in an embedding file, as data and a picture."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from imagefit.data.digests import file_digest
from imagefit.errors import DataError, OptionError
from imagefit.features.neighbours import NeighbourIndex
from imagefit.features.store import EmbeddingSet, load_embeddings
from imagefit.search.embed import make_extractor

log = logging.getLogger(__name__)


def similar(
    index: str | os.PathLike | EmbeddingSet,
    queries: list[str | os.PathLike],
    k: int = 8,
    metric: str = "euclidean",
    out: str | os.PathLike | None = None,
    model: str | None = None,
    layer: str | None = None,
    **options,
) -> list[dict]:
    """For each query image: {"query", "neighbours": [{"path", "distance"}]}, itself excluded."""
    data = index if isinstance(index, EmbeddingSet) else load_embeddings(index)
    if k < 1 or k > len(data.paths):
        raise OptionError(
            f"k={k} but the index holds {len(data.paths)} images: choose 1 to {len(data.paths)}"
        )
    vectors, own = _query_vectors(data, [Path(q) for q in queries], model, layer, **options)
    search = NeighbourIndex(data.vectors, metric)
    found_k = min(k + 1, len(data.paths))
    distances, indices = search.search(vectors, found_k)
    results = []
    for q, row_d, row_i, self_row in zip(queries, distances, indices, own, strict=True):
        pairs = [(int(i), float(d)) for i, d in zip(row_i, row_d, strict=True) if i != self_row][:k]
        results.append(
            {
                "query": str(q),
                "neighbours": [{"path": str(data.absolute(i)), "distance": round(d, 6)} for i, d in pairs],
            }
        )
    if out is not None:
        from imagefit.search.gallery import neighbour_gallery

        neighbour_gallery(results, out)
    return results


def _query_vectors(data: EmbeddingSet, queries: list[Path], model, layer, **options):
    """Vectors of the queries: from the index when a query is in it, else computed by its model."""
    by_digest = {d: i for i, d in enumerate(data.digests)} if data.digests else {}
    own, vectors, missing = [], [None] * len(queries), []
    for n, query in enumerate(queries):
        if not query.is_file():
            raise DataError(f"query image {query} does not exist")
        row = by_digest.get(file_digest(query))
        own.append(row if row is not None else -1)
        if row is not None:
            vectors[n] = data.vectors[row]
        else:
            missing.append(n)
    if missing:
        computed = _embed(data, [queries[n] for n in missing], model, layer, **options)
        for n, vector in zip(missing, computed, strict=True):
            vectors[n] = vector
    return np.stack(vectors), own


def _embed(data: EmbeddingSet, paths: list[Path], model, layer, **options) -> np.ndarray:
    record = data.model
    source = model or record["source"]
    weights = Path(record["weights_file"]) if record.get("weights_file") and not model else "auto"
    extractor, mine = make_extractor(
        source,
        weights,
        layer or record["layer"],
        record["pool"],
        record.get("flip", False),
        progress=False,
        **options,
    )
    if mine["key"] != record["key"]:
        raise OptionError(
            f"the index was written by {record['source']} ({record['layer']}) but the query model is "
            f"{mine['source']} ({mine['layer']}): embed the queries with the index's model"
        )
    result = extractor(paths)
    if result.errors:
        path, reason = result.errors[0]
        raise DataError(f"cannot read query image {reason if str(path) in reason else path}")
    return result.vectors
