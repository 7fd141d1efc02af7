"""`imagefit serve` under load on 127.0.0.1: one sequential client against 16 concurrent ones.

    nice -n 5 python -m bench.serve [--seconds 60] [--clients 16] [--per-class 500] [--run RUN]
                                    [--fp32 openvino]

Trains a Dogs-vs-Cats linear run on a subset of the shared photos (or takes --run; with 500 per
class, 500 validation photos, enough for training to judge its engines), measures
bench.extract's end-to-end images/s of the same backbone in this process, then starts the server
in a subprocess and posts real JPEGs from the valid split (one per request, multipart, persistent
connections), first from one client, then from --clients at once, each phase bounded by
--seconds and --max-requests. Prints requests/s, images/s, latency percentiles, errors, the
server's RSS, and the load average beside each figure (the machine is shared). Then the same run
is served again with the fp32 engine `--fp32` and driven by --clients once more, for its images/s
and p95 latency beside the automatic (judged) engine's.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from bench._common import DOGS_CATS, dogs_cats_files, offline_env

ROOT = Path(__file__).resolve().parents[1]
LOCK = threading.Lock()  # guards the request budget the clients share


def subset_run(root: Path, per_class: int) -> Path:
    """A linear run on `per_class` train and per_class/2 valid photos of each class (symlinks)."""
    from imagefit.train import train

    for split, count in (("train", per_class), ("valid", max(2, per_class // 2))):
        for cls in ("cats", "dogs"):
            dest = root / "data" / split / cls
            dest.mkdir(parents=True, exist_ok=True)
            for src in sorted((DOGS_CATS / split / cls).glob("*.jpg"))[:count]:
                (dest / src.name).symlink_to(src)
    train(root / "data", out=root / "run", progress=False)
    return root / "run"


def extract_rate(files: list[Path]) -> tuple[float, str]:
    """bench.extract's end-to-end images/s (auto engine, default workers) on `files`."""
    from bench.extract import end_to_end, extractor
    from imagefit.models import create_backbone

    backbone = create_backbone()
    ex, _ = extractor(backbone.model, backbone.data_config, files, 32, "auto")
    rate, _ = end_to_end(ex, files)
    return rate, ex.engine(len(files)).name


def start_server(run: Path, log_path: Path, engine: str = "auto") -> tuple[subprocess.Popen, int]:
    env = {**offline_env(), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "imagefit", "serve", str(run), "--port", "0", "--engine", engine]
    log = open(log_path, "w")  # noqa: SIM115 (the server writes to it until it ends)
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        found = re.search(r"imagefit serve: http://127\.0\.0\.1:(\d+)/", log_path.read_text())
        if found:
            return proc, int(found.group(1))
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the server did not start; see {log_path}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    )
    return (
        head.encode() + data + f"\r\n--{boundary}--\r\n".encode(),
        f"multipart/form-data; boundary={boundary}",
    )


def client(port: int, bodies: list, stop_at: float, budget: list, out: list, seed: int) -> None:
    """Post the bodies round robin on one persistent connection until time or the shared budget ends."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    i = seed
    while time.monotonic() < stop_at:
        with LOCK:
            if budget[0] <= 0:
                break
            budget[0] -= 1
        body, ctype = bodies[i % len(bodies)]
        i += 1
        start = time.perf_counter()
        try:
            conn.request("POST", "/predict", body, {"Content-Type": ctype})
            response = conn.getresponse()
            response.read()
            out.append((time.perf_counter() - start, response.status))
        except (OSError, http.client.HTTPException) as exc:
            out.append((time.perf_counter() - start, type(exc).__name__))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.close()


def phase(port: int, bodies: list, clients: int, seconds: float, max_requests: int) -> dict:
    """Drive the server with `clients` threads for `seconds` (or `max_requests`); the figures."""
    out: list = []
    budget = [max_requests]
    start = time.monotonic()
    threads = [
        threading.Thread(target=client, args=(port, bodies, start + seconds, budget, out, k * 7919))
        for k in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    ok = np.array([s for s, status in out if status == 200]) * 1000
    errors = [status for _, status in out if status != 200]
    return {
        "clients": clients,
        "requests": len(out),
        "wall": wall,
        "rps": len(ok) / wall,
        "p50": np.percentile(ok, 50) if len(ok) else float("nan"),
        "p95": np.percentile(ok, 95) if len(ok) else float("nan"),
        "p99": np.percentile(ok, 99) if len(ok) else float("nan"),
        "errors": len(errors),
        "5xx": sum(1 for s in errors if isinstance(s, int) and s >= 500),
        "kinds": sorted({str(s) for s in errors}),
        "load": os.getloadavg()[0],
    }


def show(name: str, r: dict) -> None:
    print(
        f"{name:<14}\n  {r['requests']:6d} requests in {r['wall']:5.1f} s: {r['rps']:6.1f} requests/s = "
        f"{r['rps']:6.1f} images/s, latency p50 {r['p50']:6.1f} ms p95 {r['p95']:6.1f} ms "
        f"p99 {r['p99']:6.1f} ms, errors {r['errors']} (5xx {r['5xx']}) {r['kinds'] or ''} "
        f"load {r['load']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per phase")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max-requests", type=int, default=20_000, help="per phase")
    parser.add_argument("--per-class", type=int, default=500, help="training photos per class")
    parser.add_argument("--fp32", default="openvino", help="the fp32 engine served for comparison")
    parser.add_argument("--run", type=Path, default=None, help="serve this run instead of training one")
    parser.add_argument("--extract-images", type=int, default=300)
    args = parser.parse_args()
    os.environ.setdefault("IMAGEFIT_CACHE", tempfile.mkdtemp(prefix="imagefit-bench-"))
    os.environ["HF_HUB_OFFLINE"] = "1"
    work = Path(tempfile.mkdtemp(prefix="imagefit-bench-serve-"))
    print(f"load {os.getloadavg()[0]:.2f} at start, {os.cpu_count()} cores")

    run = args.run or subset_run(work, args.per_class)
    files = dogs_cats_files("valid")
    rate, engine = extract_rate(files[: args.extract_images])
    print(f"bench.extract end to end ({engine} engine): {rate:6.1f} images/s  load {os.getloadavg()[0]:.2f}")

    bodies = [multipart(f.name, f.read_bytes()) for f in files[:500]]
    proc, port = start_server(run, work / "server.log")
    try:
        ready_rss = rss_mb(proc.pid)
        phase(port, bodies, args.clients, min(5.0, args.seconds), args.max_requests)  # warm-up
        start_rss = rss_mb(proc.pid)
        one = phase(port, bodies, 1, args.seconds, args.max_requests)
        many = phase(port, bodies, args.clients, args.seconds, args.max_requests)
        end_rss = rss_mb(proc.pid)
    finally:
        proc.terminate()
        code = proc.wait(120)
    show("1 client", one)
    show(f"{args.clients} clients", many)
    growth = (end_rss - start_rss) / start_rss
    print(f"server RSS: {ready_rss:.0f} MB ready, {start_rss:.0f} MB after a 5 s warm-up, {end_rss:.0f} MB at "  # noqa: E501
          f"the end ({growth:+.1%} over the measured phases); exit code on SIGTERM {code}")  # fmt: skip
    print(f"{args.clients} clients / 1 client: {many['rps'] / one['rps']:.2f}x images/s; "
          f"under load / bench.extract: {many['rps'] / rate:.0%}")  # fmt: skip
    served = re.findall(r"serving with the (\S+) engine", (work / "server.log").read_text())
    chosen = served[0] if served else "?"
    print(f"server engine: {chosen}; load {os.getloadavg()[0]:.2f} at the end")
    proc, port = start_server(run, work / "server-fp32.log", args.fp32)
    try:
        phase(port, bodies, args.clients, min(5.0, args.seconds), args.max_requests)  # warm-up
        fp32 = phase(port, bodies, args.clients, args.seconds, args.max_requests)
    finally:
        proc.terminate()
        proc.wait(120)
    show(f"{args.clients} clients, {args.fp32} (fp32)", fp32)
    ratio, load = many["rps"] / fp32["rps"], os.getloadavg()[0]
    print(f"{args.clients} clients, {chosen} (automatic) / {args.fp32} (fp32): {ratio:.2f}x images/s, "
          f"p95 {many['p95']:.0f} ms vs {fp32['p95']:.0f} ms; load {load:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
