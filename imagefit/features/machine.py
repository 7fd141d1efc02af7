"""What this CPU computes natively (from /proc/cpuinfo): which reduced-precision engines to offer."""

from __future__ import annotations

import functools
from pathlib import Path

BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # bf16 arithmetic in hardware; elsewhere bf16 is emulated, slower
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # int8 dot products in one instruction
SHOWN_FLAGS = ("avx2", "avx512f", *BF16_FLAGS, "amx_tile", *INT8_FLAGS)


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The instruction-set flags of the first CPU in /proc/cpuinfo (empty where it cannot be read)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16(flags: frozenset[str] | None = None) -> bool:
    """True when the CPU computes bf16 natively (AVX-512 BF16 or AMX)."""
    return bool(set(BF16_FLAGS) & (cpu_flags() if flags is None else flags))


def shown_flags() -> str:
    """The flags that decide engine speed, as one line for a benchmark's header."""
    have = [f for f in SHOWN_FLAGS if f in cpu_flags()]
    return " ".join(have) or "none of " + " ".join(SHOWN_FLAGS)
