"""The evaluation of a multi-label model: scores, per-label tables, precision-recall curves, galleries."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from imagefit.data.atomic import write_json
from imagefit.evaluate.galleries import save_gallery
from imagefit.evaluate.multilabel_metrics import multilabel_scores, per_label_scores
from imagefit.figures import pyplot, save_figure
from imagefit.inference.predictions import Predictions
from imagefit.runs.folder import EVALUATION

MULTILABEL_GALLERIES = {
    "worst_false_positives": "Worst false positives: labels predicted with the highest probability, wrongly",
    "worst_misses": "Worst misses: true labels given the lowest probability",
}
PR_CURVES = "pr_curves.png"


def write_multilabel_evaluation(
    preds: Predictions, y: np.ndarray, out: str | os.PathLike, n_images: int = 8, **record
) -> dict:
    """Write predictions.csv, pr_curves.png, the two galleries and evaluation.json into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    preds.to_csv(out / "predictions.csv")
    metrics = multilabel_scores(y, preds.probabilities, preds.thresholds)
    metrics.update(
        record,
        task="multilabel",
        classes=list(preds.classes),
        thresholds=[float(t) for t in preds.thresholds],
        per_label=per_label_scores(y, preds.probabilities, preds.thresholds, preds.classes),
        out=str(out),
        skipped=[{"path": str(p), "reason": r} for p, r in preds.errors],
        predictions="predictions.csv",
        pr_curves=pr_curves(y, preds.probabilities, preds.classes, out / PR_CURVES).name,
        galleries=_galleries(preds, y, out, n_images),
    )
    write_json(out / EVALUATION, metrics)
    return metrics


def worst(y: np.ndarray, proba: np.ndarray, kind: str, per_label: int = 2) -> list[tuple[int, int]]:
    """(image row, label) pairs: per label, its most confident false positives or its lowest-scored misses."""
    pairs = []
    for j in range(y.shape[1]):
        if kind == "worst_false_positives":
            rows = np.flatnonzero(y[:, j] == 0)
            rows = rows[np.argsort(-proba[rows, j], kind="stable")]
        else:
            rows = np.flatnonzero(y[:, j] == 1)
            rows = rows[np.argsort(proba[rows, j], kind="stable")]
        pairs += [(int(i), j) for i in rows[:per_label]]
    return pairs


def _galleries(preds: Predictions, y: np.ndarray, out: Path, n_images: int) -> dict:
    result = {}
    decided = preds.decisions
    for name in MULTILABEL_GALLERIES:
        pairs = worst(y, preds.probabilities, name, per_label=max(1, n_images // 4))
        if name == "worst_false_positives":
            pairs = [(i, j) for i, j in pairs if decided[i, j]]
        else:
            pairs = [(i, j) for i, j in pairs if not decided[i, j]]
        paths = [str(preds.paths[i]) for i, _ in pairs]
        entry = {"file": None, "images": paths}
        if pairs:
            titles = [f"{preds.classes[j]} {preds.probabilities[i, j]:.3f}" for i, j in pairs]
            save_gallery(paths, titles, out / f"gallery_{name}.png")
            entry["file"] = f"gallery_{name}.png"
        else:
            entry["note"] = "none: no label was predicted wrongly this way"
        result[name] = entry
    return result


def pr_curves(y: np.ndarray, proba: np.ndarray, classes, out_png: Path) -> Path:
    """One precision-recall curve per label (those with a positive image), in one figure."""
    from sklearn.metrics import precision_recall_curve

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    for j, name in enumerate(classes):
        if y[:, j].sum() == 0:
            continue
        precision, recall, _ = precision_recall_curve(y[:, j], proba[:, j])
        ax.plot(recall, precision, lw=1.2, label=str(name))
    ax.set(
        xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="Precision-recall per label"
    )
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    return save_figure(fig, out_png)
