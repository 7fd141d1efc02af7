"""Similar-image search: neighbour quality on real embeddings, and index speed at 10k and 1M vectors.

    python -m bench.similar [--sizes 10000 1000000] [--queries 100]
    python -m bench.similar --persisted 1000000 [--baseline]

1. Embeds the Dogs-vs-Cats photos with the default backbone (cached) and prints, for each metric,
   the mean share of each image's 10 nearest neighbours (itself excluded) that have its class.
2. Builds synthetic sets from those real vectors plus small Gaussian noise (uniform random vectors
   have no neighbours worth finding), and for each size prints exact-search and faiss IVF
   build time, single-query latency, and the IVF's recall@10 against exact search.
3. With --persisted: a persisted index (imagefit index) of that many synthetic vectors, written a
   chunk at a time: build time; then in a fresh process load time, median single-query latency,
   recall@10 against exact search, and adding 10,000 vectors without a rebuild. --baseline also
   times today's rebuild of a faiss IVF index per call, from a memory-mapped copy of the vectors.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._common import peak_mb
from bench._vectors import real_embeddings, synthetic, synthetic_chunks


def knn_share(vectors: np.ndarray, labels: np.ndarray, metric: str, k: int = 10) -> float:
    from imagefit.features.neighbours import NeighbourIndex

    _, idx = NeighbourIndex(vectors, metric, method="exact").search(vectors, k + 1)
    share = []
    for row, (own, neighbours) in enumerate(zip(labels, idx, strict=True)):
        others = [j for j in neighbours if j != row][:k]
        share.append(np.mean(labels[others] == own))
    return float(np.mean(share))


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


def persisted_test(base: np.ndarray, n: int, n_queries: int, work: Path, baseline: bool) -> None:
    """A persisted index of n vectors: build, then in a fresh process load, query, and add 10,000."""
    from imagefit.features.index import SimilarityIndex

    rng = np.random.default_rng(0)
    folder = work / f"index-{n}"
    shutil.rmtree(folder, ignore_errors=True)
    record = {"key": "bench", "source": "synthetic", "layer": "pre-logits", "pool": "avg"}
    index = SimilarityIndex.create(folder, record, str(work))
    raw = open(work / "vectors.f32", "wb") if baseline else None  # noqa: SIM115 - closed below
    start = time.perf_counter()
    for first, chunk in synthetic_chunks(base, n, rng, 10_000):
        index.append(
            [f"{first + i}.jpg" for i in range(len(chunk))],
            [f"{first + i:032x}" for i in range(len(chunk))],
            chunk,
        )
        if raw is not None:
            raw.write(chunk.tobytes())
    stored = time.perf_counter() - start
    start = time.perf_counter()
    index.sync()
    build = time.perf_counter() - start
    queries = synthetic(base, n_queries, rng)
    np.save(work / "queries.npy", queries)
    np.save(work / "truth.npy", exact_top(index, queries, 10))
    np.save(work / "more.npy", synthetic(base, 10_000, rng))
    print(
        f"{n:>9,} vectors, persisted {index.meta['kind']} index: rows stored {stored:.1f} s, "
        f"index built {build:.1f} s, on disk {sum(f.stat().st_size for f in folder.iterdir()) / 1e9:.2f} GB"
    )
    index.db.close()
    code = f"from bench.similar import query_persisted; query_persisted({str(folder)!r}, {str(work)!r})"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
    if raw is not None:
        raw.close()
        rebuild_baseline(work / "vectors.f32", n, base.shape[1], queries)
    shutil.rmtree(folder)


def exact_top(index, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact k nearest rows of each query, streaming over the stored vectors (float64)."""
    q = queries.astype(np.float64)
    best_d = np.full((len(q), k), np.inf)
    best_i = np.zeros((len(q), k), np.int64)
    for start in range(0, len(index), 10_000):
        rows = list(range(start, min(len(index), start + 10_000)))
        v = index.vectors(rows).astype(np.float64)
        d2 = (q**2).sum(1)[:, None] + (v**2).sum(1)[None, :] - 2 * q @ v.T
        all_d = np.concatenate([best_d, d2], 1)
        all_i = np.concatenate([best_i, np.broadcast_to(np.array(rows), d2.shape)], 1)
        keep = np.argsort(all_d, 1)[:, :k]
        best_d, best_i = np.take_along_axis(all_d, keep, 1), np.take_along_axis(all_i, keep, 1)
    return best_i


def query_persisted(folder: str, work: str) -> None:
    """In a fresh process: load time, median single-query latency and recall@10, then add 10,000."""
    from imagefit.features.index import SimilarityIndex

    work_path = Path(work)
    queries, truth = np.load(work_path / "queries.npy"), np.load(work_path / "truth.npy")
    start = time.perf_counter()
    index = SimilarityIndex.open(folder)
    load = time.perf_counter() - start
    seconds, got = latency(index, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, got, strict=True)])
    more = np.load(work_path / "more.npy")
    n = len(index)
    start = time.perf_counter()
    index.add([f"more-{i}.jpg" for i in range(len(more))], [f"{n + i:032x}" for i in range(len(more))], more)
    add = time.perf_counter() - start
    rss = peak_mb()
    print(
        f"          load {load:.2f} s, query {seconds * 1e3:.1f} ms (median of {len(queries)}), "
        f"recall@10 {recall:.3f} against exact, add 10,000 without rebuild {add:.1f} s "
        f"(now {len(index):,}), peak {rss:,.0f} MB"
    )


def rebuild_baseline(raw: Path, n: int, dim: int, queries: np.ndarray) -> None:
    """Today's imagefit similar: a faiss IVF index built from all vectors on every call."""
    from imagefit.features.neighbours import NeighbourIndex

    vectors = np.memmap(raw, np.float32, "r", shape=(n, dim))
    start = time.perf_counter()
    index = NeighbourIndex(vectors, method="ivf")
    build = time.perf_counter() - start
    seconds, _ = latency(index, queries, 10)
    print(f"          today (rebuilt per call): IVF build {build:.1f} s, query {seconds * 1e3:.1f} ms")
    del index, vectors
    raw.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--persisted", type=int, nargs="*", default=[], help="Persisted-index sizes instead.")
    parser.add_argument("--baseline", action="store_true", help="With --persisted: also today's rebuild.")
    args = parser.parse_args()
    os.environ.setdefault("IMAGEFIT_CACHE", tempfile.mkdtemp(prefix="imagefit-bench-"))
    os.environ["HF_HUB_OFFLINE"] = "1"
    vectors, labels = real_embeddings()
    for metric in ("euclidean", "cosine"):
        share = knn_share(vectors, labels, metric)
        print(f"Dogs-vs-Cats, {len(labels)} photos, {metric}: same-class share of 10 nearest = {share:.4f}")
    rng = np.random.default_rng(0)
    if args.persisted:
        work = Path(tempfile.mkdtemp(prefix="imagefit-bench-index-"))
        for n in args.persisted:
            persisted_test(vectors, n, args.queries, work, args.baseline)
        shutil.rmtree(work)
        print(f"loadavg {Path('/proc/loadavg').read_text().split()[:3]}")
        return
    for n in args.sizes:
        scale_test(vectors, n, args.queries, rng)


if __name__ == "__main__":
    main()
