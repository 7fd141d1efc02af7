"""Content digests of files: what the feature cache and the dataset scan key images by."""

from __future__ import annotations

import functools
import hashlib
import os

DIGEST_BYTES = 16


def file_digest(path: str | os.PathLike) -> str:
    """Content hash of a file (BLAKE2b, 128 bits, hex); remembered while the file stays unchanged."""
    st = os.stat(path)
    return _digest(os.fspath(path), st.st_size, st.st_mtime_ns, st.st_ino)


@functools.lru_cache(maxsize=100_000)
def _digest(path: str, size: int, mtime_ns: int, inode: int) -> str:
    h = hashlib.blake2b(digest_size=DIGEST_BYTES)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
