"""k-nearest-neighbour search: exact with NumPy for small sets, a faiss IVF index for large ones."""

from __future__ import annotations

import logging
import math

import numpy as np

from imagefit.errors import OptionError

log = logging.getLogger(__name__)

METRICS = ("euclidean", "cosine")
INDEX_THRESHOLD = 100_000  # from this many vectors, an approximate index answers faster


class NeighbourIndex:
    """Nearest vectors by Euclidean distance or cosine distance (1 - cosine similarity)."""

    def __init__(
        self,
        vectors: np.ndarray,
        metric: str = "euclidean",
        method: str = "auto",
        nprobe: int | None = None,
        seed: int = 0,
    ):
        if metric not in METRICS:
            raise OptionError(f"unknown metric {metric!r}: choose euclidean or cosine")
        if method not in ("auto", "exact", "ivf"):
            raise OptionError(f"unknown search method {method!r}: choose auto, exact or ivf")
        self.metric = metric
        self.vectors = self._prepare(np.asarray(vectors, np.float32))
        self.method = method if method != "auto" else ("ivf" if len(vectors) >= INDEX_THRESHOLD else "exact")
        self._sq_norms = np.einsum("ij,ij->i", self.vectors, self.vectors)
        self._ivf = _build_ivf(self.vectors, nprobe, seed) if self.method == "ivf" else None

    def __len__(self) -> int:
        return len(self.vectors)

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        if self.metric == "cosine":
            norms = np.linalg.norm(x, axis=1, keepdims=True)
            return np.ascontiguousarray(x / np.maximum(norms, 1e-12), np.float32)
        return np.ascontiguousarray(x, np.float32)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(distances, indices), each (n_queries, k), nearest first."""
        if not 1 <= k <= len(self):
            raise OptionError(f"k must be between 1 and the index size ({len(self)}), got {k}")
        q = self._prepare(np.atleast_2d(np.asarray(queries, np.float32)))
        if self._ivf is not None:
            sq, idx = self._ivf.search(q, k)
        else:
            sq, idx = self._exact(q, k)
        return self._distance(np.maximum(sq, 0.0)), idx

    def _exact(self, q: np.ndarray, k: int, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        out_d = np.empty((len(q), k), np.float32)
        out_i = np.empty((len(q), k), np.int64)
        q_norms = np.einsum("ij,ij->i", q, q)
        for start in range(0, len(q), block):
            sl = slice(start, start + block)
            d2 = q_norms[sl, None] + self._sq_norms[None, :] - 2.0 * (q[sl] @ self.vectors.T)
            part = (
                np.argpartition(d2, k - 1, axis=1)[:, :k]
                if k < d2.shape[1]
                else np.tile(np.arange(d2.shape[1]), (d2.shape[0], 1))
            )
            rows = np.arange(len(part))[:, None]
            order = np.argsort(d2[rows, part], axis=1, kind="stable")
            out_i[sl] = part[rows, order]
            out_d[sl] = d2[rows, out_i[sl]]
        return out_d, out_i

    def _distance(self, sq: np.ndarray) -> np.ndarray:
        # Unit vectors: |a - b|^2 = 2 - 2 cos, so cosine distance is half the squared distance.
        return sq / 2.0 if self.metric == "cosine" else np.sqrt(sq)


def _build_ivf(vectors: np.ndarray, nprobe: int | None, seed: int):
    """An inverted-file index (faiss IndexIVFFlat): exact distances within the probed cells."""
    try:
        import faiss
    except ImportError as exc:
        raise OptionError("large indexes need faiss: pip install faiss-cpu") from exc
    n, dim = vectors.shape
    nlist = max(1, min(4096, int(math.sqrt(n))))
    quantiser = faiss.IndexFlatL2(dim)
    index = faiss.IndexIVFFlat(quantiser, dim, nlist, faiss.METRIC_L2)
    rng = np.random.default_rng(seed)
    sample = vectors[rng.choice(n, min(n, 40 * nlist), replace=False)]
    log.info("building a faiss IVF index: %d vectors, %d cells", n, nlist)
    index.train(sample)
    index.add(vectors)
    index.nprobe = min(nlist, nprobe or max(8, nlist // 32))
    return index


def connected_groups(pairs: list[tuple[int, int]], paths: list) -> list[list]:
    """The connected groups (each sorted) of the paths that `pairs` of indices join."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if not pairs:
        return []
    rows, cols = np.array(pairs, dtype=np.int64).T
    graph = coo_matrix((np.ones(len(pairs)), (rows, cols)), shape=(len(paths), len(paths)))
    _, component = connected_components(graph, directed=False)
    groups: dict[int, list] = {}
    for i in sorted({x for pair in pairs for x in pair}):
        groups.setdefault(int(component[i]), []).append(paths[i])
    return sorted(sorted(g) for g in groups.values())
