"""Helpers shared by the benchmarks: where the real data is, an unreachable network, peak memory."""

from __future__ import annotations

import os
import resource
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DOGS_CATS = DATA / "dogs-vs-cats"
TILES = DATA / "aerial-tiles"


def offline_env() -> dict[str, str]:
    """Environment in which any attempt to reach the network fails at once."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        NO_PROXY="",
    )
    return env


def dogs_cats_files(split: str = "train") -> list[Path]:
    """Sorted JPEG paths of one split of the Dogs-vs-Cats photos."""
    if not DOGS_CATS.is_dir():
        raise SystemExit(f"real data not found at {DOGS_CATS}")
    return sorted((DOGS_CATS / split).rglob("*.jpg"))


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the parent
    that started it, whose memory a vfork'ed child counts until it runs exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def map_workspace(threads: int, prefix: str) -> Path:
    """Offline, `threads` torch threads, the aerial tiles checked: a new work folder for a maps benchmark."""
    import tempfile

    import torch

    os.environ.update(offline_env())
    torch.set_num_threads(threads)
    if not TILES.is_dir():
        raise SystemExit(f"real data not found at {TILES}")
    return Path(tempfile.mkdtemp(prefix=prefix))
