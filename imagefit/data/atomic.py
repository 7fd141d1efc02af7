"""Write files so that a crash leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from imagefit.errors import WriteError

_WHY = {
    errno.ENOSPC: ("the disk is full", "free some space on it or write somewhere else"),
    errno.EDQUOT: ("the disk quota is used up", "free some space or write somewhere else"),
    errno.EACCES: ("permission denied", "choose a folder you may write to"),
    errno.EPERM: ("permission denied", "choose a folder you may write to"),
    errno.EROFS: ("the file system is read-only", "choose a writable folder"),
}


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success rename it over `target`.

    A failure to write (disk full, no permission) raises WriteError naming `target`.
    """
    target = Path(target)
    try:
        with _replacing(target) as tmp:
            yield tmp
    except Exception as exc:
        code = storage_errno(exc)
        if code is None:
            raise
        why, fix = _WHY.get(code, (os.strerror(code).lower(), "check the folder or write somewhere else"))
        raise WriteError(f"could not write {target}: {why}: {fix}") from exc


def storage_errno(exc: BaseException) -> int | None:
    """The OS error number of a failed write, also when a library wraps it in its own exception."""
    if isinstance(exc, OSError):
        return exc.errno
    found = re.search(r"\(os error (\d+)\)", str(exc))  # safetensors' Rust I/O errors
    return int(found.group(1)) if found else None


@contextmanager
def _replacing(target: Path) -> Iterator[Path]:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, _mode_for(target))
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def _mode_for(target: Path) -> int:
    """The file's mode as a plain open() would leave it: the old file's, else 0o666 less the umask
    (mkstemp makes temporary files private, 0o600, which outputs shared with colleagues must not be)."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """This process's umask, read without changing it (Linux); else set and restored at once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_with(target: str | os.PathLike, writer: Callable[[Path], None]) -> None:
    """Call `writer(tmp_path)` and move the result to `target` atomically."""
    with atomic_path(target) as tmp:
        writer(tmp)


def write_text(target: str | os.PathLike, text: str) -> None:
    """Write `text` to `target` atomically, as UTF-8; undecodable file names keep their bytes."""
    write_with(target, lambda p: p.write_text(text, encoding="utf-8", errors="surrogateescape"))


def write_json(target: str | os.PathLike, obj: object) -> None:
    """Write `obj` as indented JSON to `target` atomically.

    A file name that is not valid UTF-8 is written as a \\udcXX escape, which reads back as the same
    name; everything else stays readable as it is.
    """
    text = json.dumps(obj, indent=2, ensure_ascii=False)
    if not _encodable(text):
        text = json.dumps(obj, indent=2, ensure_ascii=True)
    write_text(target, text + "\n")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
