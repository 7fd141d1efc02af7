"""imagefit.similar: the k nearest images of query images in an index or an embedding file."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from imagefit.data.digests import file_digest
from imagefit.errors import DataError, OptionError
from imagefit.features.index import SimilarityIndex, is_index
from imagefit.features.neighbours import NeighbourIndex
from imagefit.features.store import EmbeddingSet, load_embeddings
from imagefit.search.embed import make_extractor

log = logging.getLogger(__name__)


class _InMemory:
    """An embedding file searched in memory, with the same face as a SimilarityIndex."""

    def __init__(self, data: EmbeddingSet, metric: str):
        self.data, self.metric = data, metric
        self.model = data.model
        self._rows = {d: i for i, d in enumerate(data.digests)}
        self._search = None

    def __len__(self) -> int:
        return len(self.data.paths)

    def row_of(self, digest: str) -> int | None:
        return self._rows.get(digest)

    def vectors(self, rows: list[int]) -> np.ndarray:
        return self.data.vectors[rows]

    def paths(self, rows: list[int]) -> list[str]:
        return [str(self.data.absolute(int(r))) for r in rows]

    def search(self, queries: np.ndarray, k: int):
        if self._search is None:
            self._search = NeighbourIndex(self.data.vectors, self.metric)
        return self._search.search(queries, k)


def open_searchable(index: str | os.PathLike | EmbeddingSet, metric: str | None):
    """A persisted index (folder), or an embedding file (either of its pair) searched in memory."""
    if isinstance(index, EmbeddingSet):
        return _InMemory(index, metric or "euclidean")
    if is_index(index):
        found = SimilarityIndex.open(index)
        if metric and metric != found.meta["metric"]:
            raise OptionError(
                f"{index} was built for {found.meta['metric']} distance: leave out --metric, or build "
                f"another index with --metric {metric}"
            )
        return found
    return _InMemory(load_embeddings(index), metric or "euclidean")


def similar(
    index: str | os.PathLike | EmbeddingSet,
    queries: list[str | os.PathLike],
    k: int = 8,
    metric: str | None = None,
    out: str | os.PathLike | None = None,
    model: str | None = None,
    layer: str | None = None,
    **options,
) -> list[dict]:
    """For each query image: {"query", "neighbours": [{"path", "distance"}]}, itself excluded."""
    source = open_searchable(index, metric)
    if k < 1 or k > len(source):
        raise OptionError(f"k={k} but the index holds {len(source)} images: choose 1 to {len(source)}")
    vectors, own = _query_vectors(source, [Path(q) for q in queries], model, layer, **options)
    distances, indices = source.search(vectors, min(k + 1, len(source)))
    results = []
    for q, row_d, row_i, self_row in zip(queries, distances, indices, own, strict=True):
        pairs = [(int(i), float(d)) for i, d in zip(row_i, row_d, strict=True) if i != self_row and i >= 0][
            :k
        ]
        names = source.paths([i for i, _ in pairs])
        neighbours = [{"path": p, "distance": round(d, 6)} for p, (_, d) in zip(names, pairs, strict=True)]
        results.append({"query": str(q), "neighbours": neighbours})
    if out is not None:
        from imagefit.search.gallery import neighbour_gallery

        neighbour_gallery(results, out)
    return results


def _query_vectors(source, queries: list[Path], model, layer, **options):
    """Vectors of the queries: from the index when a query is in it, else computed by its model."""
    own, vectors, missing = [], [None] * len(queries), []
    for n, query in enumerate(queries):
        if not query.is_file():
            raise DataError(f"query image {query} does not exist")
        row = source.row_of(file_digest(query))
        own.append(row if row is not None else -1)
        if row is not None:
            vectors[n] = source.vectors([row])[0]
        else:
            missing.append(n)
    if missing:
        computed = embed_like(source.model, [queries[n] for n in missing], model, layer, **options)
        for n, vector in zip(missing, computed, strict=True):
            vectors[n] = vector
    return np.stack(vectors), own


def embed_like(record: dict, paths: list[Path], model=None, layer=None, **options) -> np.ndarray:
    """Vectors of `paths` by the model that `record` describes; another model is refused."""
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
