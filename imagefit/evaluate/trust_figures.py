"""The figures of how far a run can be trusted: reliability diagrams, accuracy against coverage, and
the familiarity of known and unknown images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from imagefit.figures import pyplot, save_figure


def reliability_figure(panels: dict[str, list[dict]], out_png: str | os.PathLike) -> Path:
    """A reliability diagram per named set of bins (`reliability()` rows): accuracy bars against the
    diagonal, the bin's mean confidence marked, and below each the images per bin."""
    plt = pyplot()
    fig, axes = plt.subplots(
        2, len(panels), figsize=(4.6 * len(panels), 5.4), squeeze=False, sharex=True,
        gridspec_kw={"height_ratios": [3, 1]},
    )  # fmt: skip
    for (title, rows), top, bottom in zip(panels.items(), axes[0], axes[1], strict=True):
        _reliability(top, bottom, rows)
        top.set_title(title)
    fig.tight_layout()
    return save_figure(fig, out_png, dpi=90)


def _reliability(top, bottom, rows: list[dict]) -> None:
    """One diagram: bars of accuracy per confidence bin, the diagonal, and the counts below."""
    filled = [r for r in rows if r["n"]]
    lows = [r["low"] for r in filled]
    widths = [r["high"] - r["low"] for r in filled]
    top.bar(lows, [r["accuracy"] for r in filled], widths, align="edge", color="#4c78a8", edgecolor="white")
    top.plot([0, 1], [0, 1], "--", color="0.4", lw=1, label="perfectly calibrated")
    top.plot([r["confidence"] for r in filled], [r["accuracy"] for r in filled], "o", color="#e45756",
             markersize=4, label="accuracy at the mean confidence")  # fmt: skip
    top.set(xlim=(0, 1), ylim=(0, 1.02), ylabel="accuracy")
    top.legend(loc="upper left", fontsize=7)
    bottom.bar(lows, [r["n"] for r in filled], widths, align="edge", color="0.6", edgecolor="white")
    bottom.set(xlim=(0, 1), xlabel="confidence (top probability)", ylabel="images")


def coverage_figure(coverage: np.ndarray, accuracy: np.ndarray, by: str, out_png: str | os.PathLike) -> Path:
    """Accuracy of the images kept against the share kept, the surest (by `by`) kept first."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 4))
    ax.plot(coverage, accuracy, color="#4c78a8", lw=1.6, drawstyle="steps-post")
    if len(accuracy):
        ax.axhline(accuracy[-1], ls="--", color="0.5", lw=1, label=f"all images: {accuracy[-1]:.1%}")
        ax.legend(loc="lower left", fontsize=8)
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel=f"share of images kept (highest {by} first)",
           ylabel="accuracy of the kept images", title="Accuracy against coverage")  # fmt: skip
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, out_png, dpi=90)


def familiarity_figure(
    known: np.ndarray, unknown: np.ndarray, threshold: float, out_png: str | os.PathLike
) -> Path:
    """Histograms of the familiarity of known and unknown images (each as shares), and the threshold."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    bins = np.linspace(0.0, 1.0, 26)
    for values, name, colour in ((known, "known (evaluated)", "#4c78a8"), (unknown, "unknown", "#e45756")):
        weights = np.full(len(values), 1.0 / max(len(values), 1))
        ax.hist(np.clip(values, 0, 1), bins, weights=weights, alpha=0.55, color=colour,
                label=f"{name}, {len(values)} images")  # fmt: skip
    ax.axvline(threshold, color="0.2", ls="--", lw=1.2, label=f"threshold {threshold:.3g}")
    ax.set(
        xlim=(0, 1),
        xlabel="familiarity",
        ylabel="share of images",
        title="Familiarity: known against unknown",
    )
    ax.legend(loc="upper center", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out_png, dpi=90)
