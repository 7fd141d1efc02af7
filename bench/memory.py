"""Peak memory of `imagefit train --strategy linear` on 20,000 images (the real photos, repeated).

    python -m bench.memory [--images 20000] [--keep]

The 2,000 Dogs-vs-Cats photos are linked 10 times into one class-folder dataset under /tmp, and the
command runs with --no-cache so that every image is really decoded and embedded (the feature cache
is keyed by content, so repeated photos would otherwise be computed once). While it runs, the
memory of the whole process tree (the command and its decode workers) is sampled from /proc:
the sum of proportional set sizes (shared library pages counted once) and the sum of resident
sizes (shared pages counted in every process, an upper bound). Target: under 2 GiB.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import DOGS_CATS, offline_env

GIB = 1024**3


def make_dataset(root: Path, n_images: int) -> Path:
    """`n_images` links to the real photos, as root/cats/... and root/dogs/..., distinct names."""
    cats, dogs = (sorted(DOGS_CATS.rglob(f"{label}.*.jpg")) for label in ("cat", "dog"))
    photos = [p for pair in zip(cats, dogs, strict=True) for p in pair]  # both classes in any prefix
    for i in range(n_images):
        src = photos[i % len(photos)]
        label = "cats" if src.name.startswith("cat") else "dogs"
        dst = root / label / f"{i // len(photos):02d}_{src.name}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.symlink_to(src)
    return root


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def memory(pid: int) -> tuple[int, int]:
    """(sum of Pss, sum of Rss) in bytes over the process tree of `pid`."""
    pss = rss = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith(("Pss:", "Rss:")):
                    kib = int(line.split()[1]) * 1024
                    pss, rss = (pss + kib, rss) if line.startswith("Pss:") else (pss, rss + kib)
        except (OSError, ValueError):
            continue
    return pss, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary dataset and run")
    parser.add_argument("--engine", default="auto")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="imagefit-memory-"))
    data = make_dataset(work / "data", args.images)
    env = {**offline_env(), "IMAGEFIT_CACHE": str(work / "cache")}
    cmd = [
        sys.executable,
        "-m",
        "imagefit",
        "-q",
        "train",
        str(data),
        "--out",
        str(work / "run"),
        "--no-cache",
    ]
    load = os.getloadavg()[0]
    print(f"{args.images} images ({len(list(DOGS_CATS.rglob('*.jpg')))} photos repeated), load {load:.2f}")
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak_pss = peak_rss = 0
    while proc.poll() is None:
        pss, rss = memory(proc.pid)
        peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
        time.sleep(0.5)
    output = proc.stdout.read()
    seconds = time.perf_counter() - started
    largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(output.strip())
    print(f"exit code {proc.returncode}, {seconds:.0f} s ({args.images / seconds:.1f} images/s end to end)")
    print(f"peak memory of the process tree: {peak_pss / GIB:.2f} GiB PSS, {peak_rss / GIB:.2f} GiB RSS sum")
    load = os.getloadavg()[0]
    print(f"largest single process: {largest / GIB:.2f} GiB max RSS; target < 2 GiB; load {load:.2f}")
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
