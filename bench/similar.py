"""Similar-image search: neighbour quality on real embeddings, and index speed at 10k and 1M vectors.

    python -m bench.similar [--sizes 10000 1000000] [--queries 100]

1. Embeds the Dogs-vs-Cats photos with the default backbone (cached) and prints, for each metric,
   the mean share of each image's 10 nearest neighbours (itself excluded) that have its class.
2. Builds synthetic sets from those real vectors plus small Gaussian noise (uniform random vectors
   have no neighbours worth finding), and for each size prints exact-search and faiss IVF
   build time, single-query latency, and the IVF's recall@10 against exact search.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from bench._common import DOGS_CATS


def real_embeddings() -> tuple[np.ndarray, np.ndarray]:
    from imagefit.search.embed import features

    data = features("efficientnet_lite0", DOGS_CATS, progress=False)
    labels = np.array([p.split("/")[1] for p in data.paths])  # train|valid/<class>/file
    return data.vectors, labels


def knn_share(vectors: np.ndarray, labels: np.ndarray, metric: str, k: int = 10) -> float:
    from imagefit.features.neighbours import NeighbourIndex

    _, idx = NeighbourIndex(vectors, metric, method="exact").search(vectors, k + 1)
    share = []
    for row, (own, neighbours) in enumerate(zip(labels, idx, strict=True)):
        others = [j for j in neighbours if j != row][:k]
        share.append(np.mean(labels[others] == own))
    return float(np.mean(share))


def synthetic(base: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n vectors: real ones, each with noise a quarter of the real nearest-neighbour distance."""
    from imagefit.features.neighbours import NeighbourIndex

    d, _ = NeighbourIndex(base, method="exact").search(base, 2)
    sigma = 0.25 * float(np.median(d[:, 1])) / np.sqrt(base.shape[1])
    out = np.empty((n, base.shape[1]), np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        out[start:stop] = base[rng.integers(0, len(base), stop - start)]
        out[start:stop] += rng.normal(0, sigma, (stop - start, base.shape[1])).astype(np.float32)
    return out


def latency(index, queries: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    """Median seconds per single query, and the results."""
    times, found = [], []
    for q in queries:
        start = time.perf_counter()
        _, idx = index.search(q[None], k)
        times.append(time.perf_counter() - start)
        found.append(idx[0])
    return float(np.median(times)), np.array(found)


def scale_test(base: np.ndarray, n: int, n_queries: int, rng: np.random.Generator) -> None:
    from imagefit.features.neighbours import NeighbourIndex

    vectors = synthetic(base, n, rng)
    queries = synthetic(base, n_queries, rng)
    start = time.perf_counter()
    exact = NeighbourIndex(vectors, method="exact")
    exact_build = time.perf_counter() - start
    exact_s, truth = latency(exact, queries, 10)
    start = time.perf_counter()
    ivf = NeighbourIndex(vectors, method="ivf")
    ivf_build = time.perf_counter() - start
    ivf_s, got = latency(ivf, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, got, strict=True)])
    print(
        f"{n:>9,} vectors: exact build {exact_build:6.1f} s, query {exact_s * 1e3:7.1f} ms | "
        f"IVF build {ivf_build:6.1f} s, query {ivf_s * 1e3:6.2f} ms, recall@10 {recall:.3f} "
        f"(nprobe {ivf._ivf.nprobe} of {ivf._ivf.nlist})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault("IMAGEFIT_CACHE", tempfile.mkdtemp(prefix="imagefit-bench-"))
    os.environ["HF_HUB_OFFLINE"] = "1"
    vectors, labels = real_embeddings()
    for metric in ("euclidean", "cosine"):
        share = knn_share(vectors, labels, metric)
        print(f"Dogs-vs-Cats, {len(labels)} photos, {metric}: same-class share of 10 nearest = {share:.4f}")
    rng = np.random.default_rng(0)
    for n in args.sizes:
        scale_test(vectors, n, args.queries, rng)


if __name__ == "__main__":
    main()
