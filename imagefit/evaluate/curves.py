"""Learning curves from a run's history: loss and accuracy per epoch, train against validation, by stage;
and several runs' curves overlaid on shared axes, to compare them.

A multi-label run's accuracy is per label at 0.5; its validation mAP is drawn in the same panel.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from imagefit.figures import pyplot, save_figure

PANELS = (("loss", "val_loss", "loss"), ("acc", "val_acc", "accuracy"))
MULTILABEL_PANELS = (("loss", "val_loss", "loss"), ("acc", "val_acc", "label accuracy, validation mAP"))


def stage_spans(history: Sequence[dict]) -> list[tuple[str, int, int]]:
    """(stage name, first epoch, last epoch) for each run of consecutive epochs of one stage."""
    spans: list[tuple[str, int, int]] = []
    for row in history:
        stage, epoch = str(row.get("stage") or ""), int(row["epoch"])
        if spans and spans[-1][0] == stage:
            spans[-1] = (stage, spans[-1][1], epoch)
        else:
            spans.append((stage, epoch, epoch))
    return spans


def learning_curves(history: Sequence[dict], out_png: str | os.PathLike) -> Path | None:
    """Write loss and accuracy per epoch (train solid, validation dashed, stages shaded); None if no rows."""
    if not history:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    epochs = [int(row["epoch"]) for row in history]
    spans = stage_spans(history)
    multilabel = any(row.get("val_mAP") is not None for row in history)
    panels = MULTILABEL_PANELS if multilabel else PANELS
    for ax, (train_key, valid_key, label) in zip(axes, panels, strict=True):
        _shade_stages(ax, spans)
        series = [(train_key, "train", "-"), (valid_key, "validation", "--")]
        if multilabel and train_key == "acc":
            series.append(("val_mAP", "validation mAP", ":"))
        for key, name, style in series:
            points = [
                (e, row[key]) for e, row in zip(epochs, history, strict=True) if row.get(key) is not None
            ]
            if points:
                ax.plot(*zip(*points, strict=True), style, marker="o", markersize=4, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(label, pad=16 if len(spans) > 1 else 6)
        if len(epochs) <= 20:
            ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out_png, dpi=90)


def _shade_stages(ax, spans: list[tuple[str, int, int]]) -> None:
    """Alternate grey bands behind the epochs of each stage, named at the top, when there are several."""
    if len(spans) < 2:
        return
    for i, (name, first, last) in enumerate(spans):
        if i % 2 == 0:
            ax.axvspan(first - 0.5, last + 0.5, color="0.9", zorder=0)
        ax.text(
            (first + last) / 2,
            1.01,
            name,
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=7,
            color="0.3",
        )


def overlaid_curves(
    histories: dict[str, Sequence[dict]], finals: dict[str, dict], out_png: str | os.PathLike
) -> Path | None:
    """Several runs' loss and accuracy per epoch on shared axes, a colour per run (train solid,
    validation dashed); a run without epochs (`finals`: name -> {val_loss, val_acc}) is a dotted
    line at its final validation value. None when there is nothing to draw."""
    if not any(histories.values()) and not finals:
        return None
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    names = list(dict.fromkeys([*histories, *finals]))
    for ax, (train_key, valid_key, label) in zip(axes, PANELS, strict=True):
        for i, name in enumerate(names):
            colour = colours[i % len(colours)]
            rows = histories.get(name) or []
            for key, part, style in ((train_key, "train", "-"), (valid_key, "validation", "--")):
                points = [(int(r["epoch"]), r[key]) for r in rows if r.get(key) is not None]
                if points:
                    ax.plot(*zip(*points, strict=True), style, color=colour, marker="o", markersize=3,
                            label=f"{name}, {part}")  # fmt: skip
            final = (finals.get(name) or {}).get(valid_key)
            if not rows and final is not None:
                ax.axhline(final, color=colour, linestyle=":", label=f"{name}, validation (no epochs)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(label)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out_png, dpi=90)
