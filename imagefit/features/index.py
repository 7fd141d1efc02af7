"""A similarity index kept on disk: loaded in a moment, searched fast, grown without a rebuild.

An index is a folder: `rows.sqlite` holds each image's path, content digest and vector (row i is
the index's i-th vector), `faiss.index` the search structure over them, `meta.json` the model that
made the vectors and the metric. Below `EXACT_BELOW` vectors the structure is exact (a flat faiss
index); from there on it is an inverted file of product-quantised codes (IVF-PQ, 64 bytes a vector)
whose candidates are re-ranked by exact distance on the stored vectors, so a search reads a few
thousand codes and a hundred vectors however large the collection. New images are added to the
structure as it stands (no retraining); a folder whose images change character can be rebuilt.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from imagefit.data.atomic import write_json, write_with
from imagefit.errors import DataError, OptionError

log = logging.getLogger(__name__)

FORMAT = "imagefit-index"
EXACT_BELOW = 50_000  # vectors from which IVF-PQ answers faster than exact search, at recall >= 0.95
_PQ_BYTES = 64  # bytes per vector in the IVF-PQ codes
_RERANK = 10  # exact re-ranking of k * _RERANK candidates, and at least _RERANK_MIN
_RERANK_MIN = 1024  # PQ codes cannot order hundreds of near-copies: re-rank them all on exact vectors
_CHUNK = 10_000  # vectors moved at a time when (re)building
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, path TEXT UNIQUE, digest BLOB, vector BLOB)",
    "CREATE INDEX IF NOT EXISTS rows_digest ON rows (digest)",
)


def is_index(path: str | os.PathLike) -> bool:
    """True for a folder written by SimilarityIndex."""
    return (Path(path) / "meta.json").is_file()


class SimilarityIndex:
    """Nearest images of a folder or an embedding file, persisted in `folder`."""

    def __init__(self, folder: str | os.PathLike, meta: dict):
        self.folder = Path(folder)
        self.meta = meta
        self.db = sqlite3.connect(self.folder / "rows.sqlite", isolation_level=None, timeout=600)
        for statement in _SCHEMA:
            self.db.execute(statement)
        self._count: int | None = None
        self.faiss = (
            _read_faiss(self.folder / "faiss.index") if (self.folder / "faiss.index").is_file() else None
        )
        self._repair()

    @classmethod
    def create(cls, folder: str | os.PathLike, model: dict, root: str, metric: str = "euclidean"):
        """A new empty index (an existing one in `folder` is an error: open it to add to it)."""
        if metric not in ("euclidean", "cosine"):
            raise OptionError(f"unknown metric {metric!r}: choose euclidean or cosine")
        folder = Path(folder)
        if is_index(folder):
            raise OptionError(f"{folder} already holds an index")
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "model": model, "root": root, "metric": metric, "kind": "empty"}
        write_json(folder / "meta.json", meta)
        return cls(folder, meta)

    @classmethod
    def open(cls, folder: str | os.PathLike) -> SimilarityIndex:
        """The index in `folder`."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(
                f"{folder} is not a readable similarity index ({exc}): make it with imagefit index"
            ) from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise DataError(f"{folder / 'meta.json'} is not an imagefit index")
        return cls(folder, meta)

    def __len__(self) -> int:
        if self._count is None:  # counted once: one process writes an index at a time
            self._count = self.db.execute("SELECT COUNT(*) FROM rows").fetchone()[0]
        return self._count

    @property
    def model(self) -> dict:
        return self.meta["model"]

    def known(self) -> dict[str, bytes]:
        """Path -> digest of every row (to tell new and changed images from those already in)."""
        return dict(self.db.execute("SELECT path, digest FROM rows"))

    def row_of(self, digest: str) -> int | None:
        """The row holding an image with this content digest, if any."""
        found = self.db.execute("SELECT id FROM rows WHERE digest = ?", (bytes.fromhex(digest),)).fetchone()
        return None if found is None else found[0]

    def paths(self, rows: list[int]) -> list[str]:
        """The file behind each row (under the index's root)."""
        rows = [int(r) for r in rows]
        sql = f"SELECT id, path FROM rows WHERE id IN ({','.join('?' * len(rows))})"
        names = dict(self.db.execute(sql, rows))
        return [str(Path(self.meta["root"]) / names[r]) for r in rows]

    def vectors(self, rows: list[int]) -> np.ndarray:
        """The stored vectors of `rows`, in that order."""
        found: dict[int, np.ndarray] = {}
        for start in range(0, len(rows), 500):
            chunk = [int(r) for r in rows[start : start + 500]]
            sql = f"SELECT id, vector FROM rows WHERE id IN ({','.join('?' * len(chunk))})"
            found.update((i, np.frombuffer(v, np.float32)) for i, v in self.db.execute(sql, chunk))
        return np.stack([found[int(r)] for r in rows]) if rows else np.zeros((0, self.dim), np.float32)

    @property
    def dim(self) -> int:
        return int(self.meta.get("dim", 0))

    def add(self, paths: list[str], digests: list[str], vectors: np.ndarray) -> None:
        """Append rows, add them to the search structure as it stands (no retraining), and save."""
        self.append(paths, digests, vectors)
        self.sync()

    def append(self, paths: list[str], digests: list[str], vectors: np.ndarray) -> None:
        """Store rows in one transaction; the search structure sees them at the next sync()."""
        if not paths:
            return
        vectors = np.ascontiguousarray(vectors, np.float32)
        self.meta.setdefault("dim", int(vectors.shape[1]))
        if vectors.shape[1] != self.dim:
            raise OptionError(f"{self.folder} holds vectors of size {self.dim}, not {vectors.shape[1]}")
        first = len(self)
        rows = [
            (first + i, p, bytes.fromhex(d) if d else None, v.tobytes())
            for i, (p, d, v) in enumerate(zip(paths, digests, vectors, strict=True))
        ]
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?)", rows)
        self.db.execute("COMMIT")
        self._count = first + len(rows)

    def sync(self) -> None:
        """Bring the search structure up to the rows (building it when there is none or it was
        outgrown, else adding the rows it lacks), then write it and the metadata atomically."""
        import faiss

        if self.faiss is None or (self.meta["kind"] == "exact" and len(self) >= EXACT_BELOW):
            self.faiss = self._build()
        for vectors in self._stored(self.faiss.ntotal):
            self.faiss.add(self._prepare(vectors))
        write_with(self.folder / "faiss.index", lambda p: faiss.write_index(self.faiss, str(p)))
        write_json(self.folder / "meta.json", self.meta)

    def _build(self):
        """An empty structure for the rows there are: exact when few, IVF-PQ trained on a sample when many."""
        import faiss

        n, dim = len(self), self.dim
        if n < EXACT_BELOW:
            self.meta["kind"] = "exact"
            return faiss.IndexFlatL2(dim)
        nlist = max(1, min(16_384, int(math.sqrt(n))))
        m = next(m for m in (_PQ_BYTES, 80, 40, 32, 16, 8, 4, 2, 1) if dim % m == 0)
        index = faiss.IndexIVFPQ(faiss.IndexFlatL2(dim), dim, nlist, m, 8)
        sample = np.sort(np.random.default_rng(0).choice(n, min(n, max(40 * nlist, 256 * 40)), replace=False))
        log.info("training an IVF-PQ index: %d vectors, %d cells, %d bytes a vector", n, nlist, m)
        index.train(self._prepare(self.vectors(sample.tolist())))
        index.nprobe = min(nlist, 32)
        self.meta.update(kind="ivfpq", nlist=nlist, nprobe=index.nprobe)
        return index

    def _stored(self, start: int) -> Iterator[np.ndarray]:
        last = start - 1
        while True:
            rows = self.db.execute(
                "SELECT id, vector FROM rows WHERE id > ? ORDER BY id LIMIT ?", (last, _CHUNK)
            )
            rows = rows.fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield np.stack([np.frombuffer(v, np.float32) for _, v in rows])

    def _repair(self) -> None:
        """Add the rows that a process killed between storing them and saving the structure left out."""
        if self.faiss is not None and self.faiss.ntotal < len(self):
            log.warning(
                "%s: %d rows missing from its search structure", self.folder, len(self) - self.faiss.ntotal
            )
            self.sync()

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(np.atleast_2d(x), np.float32)
        if self.meta["metric"] == "cosine":
            x = np.ascontiguousarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12))
        return x

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(distances, rows), each (n_queries, k), nearest first: Euclidean, or 1 - cosine similarity."""
        if not 1 <= k <= len(self):
            raise OptionError(f"k must be between 1 and the index size ({len(self)}), got {k}")
        q = self._prepare(queries)
        if self.meta["kind"] == "exact":
            sq, rows = self.faiss.search(q, k)
        else:
            sq, rows = self._rerank(q, k)
        sq = np.maximum(sq, 0.0)
        return (sq / 2.0 if self.meta["metric"] == "cosine" else np.sqrt(sq)), rows

    def _rerank(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        wide = min(len(self), max(k * _RERANK, _RERANK_MIN))
        _, candidates = self.faiss.search(q, wide)
        out_d = np.full((len(q), k), np.inf, np.float32)
        out_i = np.full((len(q), k), -1, np.int64)
        for n, row in enumerate(candidates):
            row = row[row >= 0]
            d2 = ((self._prepare(self.vectors(row.tolist())) - q[n]) ** 2).sum(1)
            order = np.argsort(d2, kind="stable")[:k]
            out_d[n, : len(order)], out_i[n, : len(order)] = d2[order], row[order]
        return out_d, out_i


def _read_faiss(path: Path):
    import faiss

    try:
        return faiss.read_index(str(path))
    except RuntimeError as exc:
        raise DataError(f"{path} is damaged ({exc}): make the index again with imagefit index") from exc
