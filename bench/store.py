"""Feature store against the cache it replaces (commit 039167f), at 100,000 and 1,000,000 vectors.

    python -m bench.store [--sizes 100000 1000000] [--work DIR] [--keep]

Synthetic Lite0 vectors (the Dogs-vs-Cats embeddings plus noise, as bench.similar makes them) are
written, a chunk at a time, both into the store (SQLite) and as the old cache's safetensors shards
(1,024 vectors each, as its extraction wrote them). Then, each in a fresh process, for both: the
time and peak memory (VmHWM: the ru_maxrss of that process alone) to look up 100 vectors, the time
to append 10,000, and the size on disk. The lookups load each implementation's module alone
(NumPy, safetensors, sqlite3), so the peak is the store's, not PyTorch's. With --predict N,
`imagefit predict RUN one.jpg` is timed with N synthetic vectors in the run's feature store.
Large files are deleted unless --keep.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._common import dogs_cats_files, offline_env, peak_mb
from bench._vectors import real_embeddings, synthetic_chunks

ROOT = Path(__file__).resolve().parents[1]
DIGEST_BYTES = 16


# --- the cache as it was at 039167f (imagefit/features/cache.py), reduced to get and put ---------


class OldCache:
    """Vectors by file digest, as append-only safetensors shards read whole on first lookup."""

    def __init__(self, folder: Path):
        self.dir = folder
        self._table: dict[str, np.ndarray] | None = None

    def _load(self) -> dict[str, np.ndarray]:
        from safetensors.numpy import load_file

        if self._table is None:
            self._table = {}
            for shard in sorted(self.dir.glob("*.safetensors")):
                arrays = load_file(str(shard))
                self._table.update(
                    {d.tobytes().hex(): v for d, v in zip(arrays["digests"], arrays["features"], strict=True)}
                )
        return self._table

    def get(self, digests: list[str]) -> dict[int, np.ndarray]:
        table = self._load()
        return {i: table[d] for i, d in enumerate(digests) if d in table}

    def put(self, digests: list[str], vectors: np.ndarray) -> None:
        from safetensors.numpy import save_file

        raw = np.frombuffer(b"".join(bytes.fromhex(d) for d in digests), np.uint8).reshape(-1, DIGEST_BYTES)
        arrays = {"digests": raw, "features": np.ascontiguousarray(vectors, np.float32)}
        self.dir.mkdir(parents=True, exist_ok=True)
        save_file(arrays, str(self.dir / f"{time.time_ns():x}-{os.getpid()}.safetensors"))
        self._load().update(zip(digests, arrays["features"], strict=True))


def digest(row: int) -> str:
    return hashlib.blake2b(str(row).encode(), digest_size=DIGEST_BYTES).hexdigest()


def _vectorstore():
    """imagefit's store module loaded alone (the imagefit package imports PyTorch)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("vectorstore", ROOT / "imagefit/features/vectorstore.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _open(kind: str, folder: Path):
    return OldCache(folder) if kind == "old" else _vectorstore().VectorStore(folder / "vectors.sqlite")


# --- measurements, each run in a fresh process ---------------------------------------------------


def measure(kind: str, what: str, folder: Path, n: int) -> dict:
    store = _open(kind, folder)
    if what == "lookup":
        rows = np.random.default_rng(1).choice(n, 100, replace=False)
        start = time.perf_counter()
        found = store.get([digest(int(r)) for r in rows])
        seconds = time.perf_counter() - start
        assert len(found) == 100, len(found)
    else:
        vectors = np.random.default_rng(2).normal(size=(10_000, 1280)).astype(np.float32)
        digests = [digest(n + 10**9 + i) for i in range(10_000)]
        start = time.perf_counter()
        store.put(digests, vectors)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mb": peak_mb()}


def fresh(kind: str, what: str, folder: Path, n: int, limit_gb: float) -> dict:
    """measure() in a new Python process, its address space capped at limit_gb."""
    code = (
        "import json, resource, sys; from pathlib import Path; "
        f"resource.setrlimit(resource.RLIMIT_AS, ({int(limit_gb * 2**30)}, {int(limit_gb * 2**30)})); "
        "from bench.store import measure; "
        f"print(json.dumps(measure({kind!r}, {what!r}, Path({str(folder)!r}), {n})))"
    )
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1][:120], "process_s": time.perf_counter() - start}
    return {**json.loads(done.stdout), "process_s": time.perf_counter() - start}


# --- data ----------------------------------------------------------------------------------------


def base_vectors(work: Path) -> np.ndarray:
    """The Dogs-vs-Cats Lite0 embeddings, computed once and kept in `work`."""
    saved = work / "base.npy"
    if not saved.is_file():
        np.save(saved, real_embeddings()[0])
    return np.load(saved)


def fill(base: np.ndarray, n: int, new: Path, old: Path) -> tuple[float, float]:
    """Write n synthetic vectors into both stores, 10,240 at a time; seconds spent on each."""
    store, spent_new, spent_old = _open("new", new), 0.0, 0.0
    rng = np.random.default_rng(0)
    old.mkdir(parents=True, exist_ok=True)
    for first, chunk in synthetic_chunks(base, n, rng, 10_240):
        digests = [digest(first + i) for i in range(len(chunk))]
        start = time.perf_counter()
        store.put(digests, chunk)
        spent_new += time.perf_counter() - start
        start = time.perf_counter()
        for s in range(0, len(chunk), 1024):  # as the old extraction wrote them, minus the checksum
            _old_shard(old, first + s, digests[s : s + 1024], chunk[s : s + 1024])
        spent_old += time.perf_counter() - start
    store.close()
    return spent_new, spent_old


def _old_shard(folder: Path, first: int, digests: list[str], vectors: np.ndarray) -> None:
    from safetensors.numpy import save_file

    raw = np.frombuffer(b"".join(bytes.fromhex(d) for d in digests), np.uint8).reshape(-1, DIGEST_BYTES)
    save_file({"digests": raw, "features": vectors}, str(folder / f"{first:012x}-0.safetensors"))


def disk_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


# --- predict beside a large store ----------------------------------------------------------------


def predict_beside(base: np.ndarray, n: int, work: Path) -> None:
    """Train a tiny linear run, put n synthetic vectors in its store, and time `imagefit predict`."""
    env = {**offline_env(), "IMAGEFIT_CACHE": str(work / "cache"), "PYTHONPATH": str(ROOT)}
    data = work / "tiny"
    for path in dogs_cats_files("train")[:8] + dogs_cats_files("train")[-8:]:
        target = data / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    imagefit = [sys.executable, "-m", "imagefit", "-q"]
    subprocess.run([*imagefit, "train", str(data), "-o", str(work / "run")], env=env, check=True)
    [key] = (work / "cache" / "features").iterdir()
    images = dogs_cats_files("valid")
    _time_predict(imagefit, work / "run", images[0], env, f"beside {len(_open('new', key)):,} vectors")
    fill(base, n, key, work / "unused-old")
    shutil.rmtree(work / "unused-old")
    size = len(_open("new", key))
    for label, image in (("new image", images[1]), ("cached image", images[0])):
        _time_predict(imagefit, work / "run", image, env, f"({label}) beside {size:,} vectors")


def _time_predict(imagefit: list[str], run: Path, image: Path, env: dict, label: str) -> None:
    start = time.perf_counter()
    command = [*imagefit, "predict", str(run), str(image)]
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    print(f"  imagefit predict RUN one.jpg {label}: {time.perf_counter() - start:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument(
        "--work", type=Path, default=None, help="Folder for the data (default: a temporary one)."
    )
    parser.add_argument("--predict", type=int, default=0, help="Also time predict beside this many vectors.")
    parser.add_argument("--limit-gb", type=float, default=12.0, help="Address-space cap of each measurement.")
    parser.add_argument("--keep", action="store_true", help="Keep the large files.")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="imagefit-bench-store-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("IMAGEFIT_CACHE", str(work / "base-cache"))
    base = base_vectors(work)
    print(f"loadavg {Path('/proc/loadavg').read_text().split()[:3]}; base: {len(base)} Lite0 vectors")
    for n in args.sizes:
        run_size(base, n, work, args.limit_gb)
    if args.predict:
        predict_beside(base, args.predict, work / f"predict-{args.predict}")
    if not args.keep:
        for folder in work.iterdir():
            if folder.is_dir():
                shutil.rmtree(folder)
    print(f"loadavg {Path('/proc/loadavg').read_text().split()[:3]}")


def run_size(base: np.ndarray, n: int, work: Path, limit_gb: float) -> None:
    new, old = work / f"new-{n}", work / f"old-{n}"
    shutil.rmtree(new, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    spent_new, spent_old = fill(base, n, new, old)
    print(f"{n:,} vectors written: store {spent_new:.1f} s, old shards {spent_old:.1f} s")
    sizes = {"new": disk_mb(new), "old": disk_mb(old)}
    for kind, folder in (("old", old), ("new", new)):
        name = "cache at 039167f" if kind == "old" else "imagefit store "
        look = fresh(kind, "lookup", folder, n, limit_gb)
        add = fresh(kind, "append", folder, n, limit_gb)
        print(
            f"  {name}: lookup 100 {_fmt(look)} | append 10,000 {_fmt(add, memory=False)} | "
            f"on disk {sizes[kind]:,.0f} MB"
        )
    shutil.rmtree(old)
    shutil.rmtree(new)


def _fmt(result: dict, memory: bool = True) -> str:
    if "error" in result:
        return f"failed ({result['error']}) after {result['process_s']:.1f} s"
    text = f"{result['seconds']:.3f} s"
    return text + (f", peak {result['peak_mb']:,.0f} MB" if memory else "")


if __name__ == "__main__":
    main()
