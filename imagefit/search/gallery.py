"""Pictures of search results: each query first, then its neighbours titled with their distances."""

from __future__ import annotations

import os
from pathlib import Path

from imagefit.figures import image_tile, pyplot, save_figure


def neighbour_gallery(results: list[dict], out: str | os.PathLike, thumb: float = 1.8) -> Path:
    """Write a PNG grid: one row per query, query then neighbours."""
    plt = pyplot()
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
            image_tile(ax, path, title)
    fig.tight_layout()
    return save_figure(fig, out)
