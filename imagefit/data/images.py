"""Finding image files and opening them as upright RGB pictures, small when JPEG allows it.

This is the one place where files become pixels: every command decodes through `open_image`, so
every pixel format, every damaged file and every oversized image is handled the same way.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from imagefit.data.pixels import TooManyPixels, read_tiff_array, to_rgb
from imagefit.errors import DataError

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own warning threshold, about 9500 x 9500
_TIFF = frozenset({".tif", ".tiff"})

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a cut-off file is an error, never half a picture
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)  # max_pixels() decides

log = logging.getLogger(__name__)


class ImageReadError(DataError):
    """An image file could not be decoded; the message names the file and the reason.

    `kind` sorts the reason: empty, not-image, truncated, too-large, unreadable (missing, no
    permission, a link loop) or damaged (anything else a decoder rejected).
    """

    def __init__(self, message: str, kind: str = "damaged"):
        super().__init__(message)
        self.kind = kind


def max_pixels() -> int:
    """The largest image (width x height) imagefit decodes: $IMAGEFIT_MAX_PIXELS, else ~89.5 million."""
    raw = os.environ.get("IMAGEFIT_MAX_PIXELS", "").strip()
    try:
        return int(raw) if raw else DEFAULT_MAX_PIXELS
    except ValueError:
        return DEFAULT_MAX_PIXELS


def is_image_file(path: Path) -> bool:
    """True when the file name has an image extension (the content is checked at decode time)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def list_images(root: str | os.PathLike) -> list[Path]:
    """All image files under `root` (or `root` itself if it is a file), in sorted order.

    Symbolic links to folders are followed, each real folder once, so a link loop ends.
    """
    root = Path(root)
    if root.is_file():
        return [root]
    found, seen = [], set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError:
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath) / f for f in filenames if is_image_file(Path(f)))
    return sorted(found)


def open_image(
    path: str | os.PathLike, min_size: int | None = None, background: str | None = None
) -> Image.Image:
    """Decode `path` as an upright 8-bit RGB image.

    With `min_size`, a JPEG is decoded at the smallest DCT scale whose shorter side is still
    at least `min_size` (Pillow's draft mode), which is several times faster for large photos.
    Transparent pixels are laid on `background` ('white' or 'black'; default $IMAGEFIT_BACKGROUND
    or white). Any file that cannot give a picture raises ImageReadError naming it and why.
    """
    try:
        return _decode(Path(path), min_size, background)
    except ImageReadError:
        raise
    except UnidentifiedImageError as exc:
        if Path(path).suffix.lower() in _TIFF:
            return _decode_tiff(Path(path), exc)
        raise ImageReadError(f"{path}: {_reason(exc)}", _kind(exc)) from exc
    except Exception as exc:  # a damaged file can raise anything from inside a decoder
        raise ImageReadError(f"{path}: {_reason(exc)}", _kind(exc)) from exc


def open_image_bytes(
    data: bytes, name: str = "image", min_size: int | None = None, limit: int | None = None
) -> Image.Image:
    """Decode encoded image bytes (JPEG, PNG, ...) as `open_image` decodes a file; errors name `name`.

    `limit` is the largest width x height accepted (default `max_pixels()`), checked before decoding.
    """
    if not data:
        raise ImageReadError(f"{name}: empty file (0 bytes)", "empty")
    limit = max_pixels() if limit is None else limit
    try:
        with quiet_bomb_warnings(), Image.open(io.BytesIO(data)) as img:
            if min_size is not None and img.format == "JPEG" and min(img.size) / min_size >= 2:
                scale = min(img.size) / min_size
                img.draft("RGB", (math.ceil(img.size[0] / scale), math.ceil(img.size[1] / scale)))
            _check_pixels(Path(name), img.size, limit)
            return to_rgb(ImageOps.exif_transpose(img))
    except ImageReadError:
        raise
    except Exception as exc:  # a damaged upload can raise anything from inside a decoder
        raise ImageReadError(f"{name}: {_reason(exc)}", _kind(exc)) from exc


def _decode(path: Path, min_size: int | None, background: str | None) -> Image.Image:
    limit = max_pixels()
    if "IMAGEFIT_MAX_PIXELS" in os.environ and Image.MAX_IMAGE_PIXELS and limit > 2 * Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = limit  # raised on purpose by the user: Pillow must not refuse first
    if path.is_file() and path.stat().st_size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes)", "empty")
    with quiet_bomb_warnings(), Image.open(path) as img:
        if min_size is not None and img.format == "JPEG":
            scale = min(img.size) / min_size
            if scale >= 2:
                img.draft("RGB", (math.ceil(img.size[0] / scale), math.ceil(img.size[1] / scale)))
        _check_pixels(path, img.size, limit)
        img = ImageOps.exif_transpose(img)
        return to_rgb(img, background)


def _decode_tiff(path: Path, first: Exception) -> Image.Image:
    limit = max_pixels()
    try:
        img = read_tiff_array(path, limit)
    except TooManyPixels as exc:
        reason = f"{exc}: raise the limit with IMAGEFIT_MAX_PIXELS=N if you trust the file"
        raise ImageReadError(f"{path}: {reason}", "too-large") from exc
    except Exception as exc:
        raise ImageReadError(f"{path}: {_reason(first)}", "not-image") from exc
    _check_pixels(path, img.size, limit)
    return img


@contextlib.contextmanager
def quiet_bomb_warnings() -> Iterator[None]:
    """Pillow's decompression-bomb warning silenced: max_pixels() decides, with a clear error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def _check_pixels(path: Path, size: tuple[int, int], limit: int) -> None:
    width, height = size
    if width * height > limit:
        raise ImageReadError(
            f"{path}: {width} x {height} = {width * height:,} pixels is more than the limit of "
            f"{limit:,} (a decompression bomb or a very large scan): shrink it, or raise the limit "
            "with IMAGEFIT_MAX_PIXELS=N if you trust the file",
            "too-large",
        )


def os_reason(exc: OSError) -> str:
    """Why a file could not be opened, in words: a broken link, a link loop, missing, no permission."""
    path = Path(exc.filename) if exc.filename else None
    if exc.errno == errno.ELOOP:
        return "a symbolic link loop"
    if exc.errno == errno.ENOENT:
        return "a broken symbolic link" if path is not None and path.is_symlink() else "missing"
    return (exc.strerror or str(exc)).lower()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    if isinstance(exc, Image.DecompressionBombError):
        return f"too many pixels ({text}); raise the limit with IMAGEFIT_MAX_PIXELS=N if you trust the file"
    if "cannot identify image file" in text:
        return "not an image Pillow can read"
    if "truncated" in text.lower() or "broken data stream" in text:
        return f"truncated or damaged image data ({text}): the file was cut short; copy it again"
    if isinstance(exc, OSError) and exc.strerror:
        return os_reason(exc)
    if not isinstance(exc, OSError | ValueError | SyntaxError | EOFError):
        return f"cannot decode ({exc.__class__.__name__}: {text})"
    return text


def _kind(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, Image.DecompressionBombError):
        return "too-large"
    if isinstance(exc, UnidentifiedImageError):
        return "not-image"
    if "truncated" in text.lower() or "broken data stream" in text:
        return "truncated"
    if isinstance(exc, OSError) and exc.strerror:
        return "unreadable"
    return "damaged"


def warn_skipped(path: str | os.PathLike, reason: str) -> None:
    """One warning line for a file that could not be used, naming it once."""
    log.warning("skipped %s", reason if str(path) in reason else f"{path}: {reason}")
