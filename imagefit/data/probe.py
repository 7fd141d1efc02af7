"""What one file is like before training: usable, converted on the way, or skipped and why."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from imagefit.data.images import ImageReadError, max_pixels, open_image, os_reason, quiet_bomb_warnings

_ORIENTATION = 0x0112
_TAIL = 4096  # bytes read from the end of a JPEG or PNG to find its end marker
_NOTES = {
    "CMYK": "CMYK converted to RGB",
    "P": "palette image converted to RGB",
    "1": "black-and-white image converted to RGB",
    "L": "grayscale converted to RGB",
    "I;16": "16-bit values scaled to 8 bits",
    "I;16B": "16-bit values scaled to 8 bits",
    "I;16L": "16-bit values scaled to 8 bits",
    "I": "32-bit integer values scaled to 8 bits",
    "F": "floating-point values scaled to 8 bits",
    "LA": "transparency laid on the background",
    "RGBA": "transparency laid on the background",
    "PA": "transparency laid on the background",
}


@dataclass(frozen=True)
class FileCheck:
    """One file's verdict: `problem` says why it will be skipped (None: usable); `notes` what is converted."""

    path: Path
    kind: str = "ok"  # ok, or an ImageReadError kind: empty, not-image, truncated, too-large, ...
    problem: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.problem is None


def probe(path: str | os.PathLike, decode: bool = False) -> FileCheck:
    """Check one file from its header (and end marker); `decode` also decodes every pixel.

    Without `decode` the check is cheap; a JPEG or PNG whose end marker is missing is decoded
    anyway, so truncated files are always found.
    """
    path = Path(path)
    try:
        notes = _header(path)
        if decode or not _has_end_marker(path):
            open_image(path, min_size=64)
    except ImageReadError as exc:
        return FileCheck(path, exc.kind, str(exc))
    return FileCheck(path, notes=notes)


def _header(path: Path) -> tuple[str, ...]:
    """Conversion notes from the header; raises ImageReadError for what cannot be opened at all."""
    _stat(path)
    try:
        with quiet_bomb_warnings(), Image.open(path) as img:
            mode, size, info = img.mode, img.size, img.info
            rotated = img.getexif().get(_ORIENTATION, 1) not in (1, None)
    except Exception:
        open_image(path)  # raises the same error, worded for the user (or reads an odd TIFF)
        return ()
    if size[0] * size[1] > max_pixels():
        open_image(path)  # the pixel-limit message
    notes = [_NOTES[mode]] if mode in _NOTES else []
    if mode == "P" and "transparency" in info:
        notes.append(_NOTES["RGBA"])
    if rotated:
        notes.append("turned upright from its EXIF orientation")
    return tuple(notes)


def _stat(path: Path) -> None:
    try:
        st = path.stat()
    except OSError as exc:
        raise ImageReadError(f"{path}: {os_reason(exc)}", "unreadable") from exc
    if st.st_size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes)", "empty")
    if not os.access(path, os.R_OK):
        raise ImageReadError(f"{path}: permission denied", "unreadable")


def _has_end_marker(path: Path) -> bool:
    """False when a JPEG lacks its EOI marker or a PNG its IEND chunk near the end of the file."""
    with open(path, "rb") as fh:
        head = fh.read(8)
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - _TAIL))
        tail = fh.read()
    if head.startswith(b"\xff\xd8"):
        return b"\xff\xd9" in tail
    if head.startswith(b"\x89PNG"):
        return b"IEND" in tail
    return True
