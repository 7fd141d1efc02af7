"""Handing freed memory back to the system, so that a long job's resident memory follows what it holds.

glibc's allocator keeps the pages of freed blocks for reuse; when blocks of many sizes come and go
(the windows and carried rows of a streamed map, the engines an autotune discards), the kept pages
add up to what the job once held, not what it holds. `release_memory` returns them.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc


def release_memory(collect: bool = True) -> None:
    """Give the heap's free pages back to the system (glibc; elsewhere nothing happens), after a
    garbage collection with `collect`."""
    if collect:
        gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        _libc().malloc_trim(0)


@functools.cache
def _libc():
    return ctypes.CDLL("libc.so.6")
