"""What a job computes with: how many CPU threads (the same count for PyTorch, ONNX Runtime, OpenVINO
and GDAL), and whether an NVIDIA GPU is there, known without loading PyTorch."""

from __future__ import annotations

import os
from pathlib import Path


def default_threads() -> int:
    """The threads PyTorch would compute with: OMP_NUM_THREADS when set, else one per physical core
    this process may run on (so a map runs alike with or without PyTorch loaded)."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        pass
    allowed = os.sched_getaffinity(0)
    try:
        cores, cpu, package = set(), None, "0"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = (part.strip() for part in line.partition(":"))
            if name == "processor":
                cpu = int(value)
            elif name == "physical id":
                package = value
            elif name == "core id" and cpu in allowed:
                cores.add((package, value))
        return len(cores) or len(allowed)
    except (OSError, ValueError):
        return len(allowed)


def nvidia_gpu_present() -> bool:
    """True when the NVIDIA driver lists a GPU this process may use (CUDA_VISIBLE_DEVICES not empty
    or -1): then PyTorch is worth loading to ask CUDA; False says no GPU without loading it."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "x").strip() in ("", "-1"):
        return False
    try:
        return any(Path("/proc/driver/nvidia/gpus").iterdir())
    except OSError:
        return False
