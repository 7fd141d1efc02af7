"""Pictures of search results: each query first, then its neighbours titled with their distances."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from imagefit._atomic import write_with
from imagefit.data.images import ImageReadError, open_image


def neighbour_gallery(results: list[dict], out: str | os.PathLike, thumb: float = 1.8) -> Path:
    """Write a PNG grid: one row per query, query then neighbours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 1 + max(len(r["neighbours"]) for r in results)
    fig, axes = plt.subplots(
        len(results), cols, figsize=(cols * thumb, len(results) * thumb * 1.1), squeeze=False
    )
    for row, result in zip(axes, results, strict=True):
        cells = [(result["query"], "query")] + [
            (n["path"], f"{n['distance']:.3f}") for n in result["neighbours"]
        ]
        for ax in row:
            ax.axis("off")
        for ax, (path, title) in zip(row, cells, strict=False):
            with contextlib.suppress(ImageReadError):
                ax.imshow(open_image(path, min_size=128))
            ax.set_title(f"{Path(path).name}\n{title}", fontsize=7)
    fig.tight_layout()
    out = Path(out)
    write_with(out, lambda p: fig.savefig(p, format="png", dpi=80))
    plt.close(fig)
    return out
