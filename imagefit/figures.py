"""Shared figure plumbing: a headless pyplot, titled image tiles, and atomic PNG writes."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from imagefit.data.atomic import write_with
from imagefit.data.images import ImageReadError, open_image


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def image_tile(ax, path: str | os.PathLike, title: str) -> None:
    """Draw one image (left blank if unreadable) titled with its file name and `title`."""
    ax.axis("off")
    with contextlib.suppress(ImageReadError):
        img = open_image(path, min_size=128)
        img.thumbnail((256, 256))
        ax.imshow(img)
    ax.set_title(printable(f"{Path(path).name}\n{title}"), fontsize=7)


def printable(text: str) -> str:
    """`text` with the undecodable bytes of odd file names shown as U+FFFD, so fonts can draw it."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def save_figure(fig, out: str | os.PathLike, dpi: int = 80) -> Path:
    """Write `fig` as a PNG atomically and close it."""
    out = Path(out)
    write_with(out, lambda p: fig.savefig(p, format="png", dpi=dpi))
    pyplot().close(fig)
    return out
