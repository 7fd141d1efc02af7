"""Which images to look at (the galleries of seed 003) and the pictures of them.

The selection functions are pure: they take the true class indices, the (n, n_classes)
probabilities and a seed, and return row indices, best first. "Most confident incorrect" is
grouped by *predicted* class, as in the seed ("the images we were most confident were cats,
but are actually dogs"): for each class, the wrong predictions of that class with the highest
predicted probability. "Most confident correct" groups by true class (the same as predicted).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from imagefit.figures import image_tile, pyplot, save_figure

GALLERIES = (
    "random_correct",
    "random_incorrect",
    "most_confident_correct",
    "most_confident_incorrect",
    "most_uncertain",
)


def _predicted(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs)
    pred = probs.argmax(1)
    return pred, probs[np.arange(len(pred)), pred]


def _random(candidates: np.ndarray, n: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return rng.choice(candidates, size=min(n, len(candidates)), replace=False).tolist()


def random_correct(y_true: Sequence[int], probs: np.ndarray, n: int = 8, seed: int = 0) -> list[int]:
    """Up to `n` correctly classified rows, chosen at random (reproducible with `seed`)."""
    pred, _ = _predicted(probs)
    return _random(np.flatnonzero(pred == np.asarray(y_true)), n, seed)


def random_incorrect(y_true: Sequence[int], probs: np.ndarray, n: int = 8, seed: int = 0) -> list[int]:
    """Up to `n` misclassified rows, chosen at random (reproducible with `seed`)."""
    pred, _ = _predicted(probs)
    return _random(np.flatnonzero(pred != np.asarray(y_true)), n, seed)


def _top_per_predicted_class(mask: np.ndarray, probs: np.ndarray, n: int) -> list[int]:
    """For each predicted class in turn, the `n` rows in `mask` with the highest predicted probability."""
    pred, top = _predicted(probs)
    chosen: list[int] = []
    for c in range(np.asarray(probs).shape[1]):
        rows = np.flatnonzero(mask & (pred == c))
        chosen.extend(rows[np.argsort(-top[rows], kind="stable")][:n].tolist())
    return chosen


def most_confident_correct_per_class(
    y_true: Sequence[int], probs: np.ndarray, n: int = 4, seed: int = 0
) -> list[int]:
    """Per class, the `n` correct rows with the highest probability, class by class."""
    pred, _ = _predicted(probs)
    return _top_per_predicted_class(pred == np.asarray(y_true), probs, n)


def most_confident_incorrect_per_class(
    y_true: Sequence[int], probs: np.ndarray, n: int = 4, seed: int = 0
) -> list[int]:
    """Per predicted class, the `n` wrong predictions of it with the highest probability."""
    pred, _ = _predicted(probs)
    return _top_per_predicted_class(pred != np.asarray(y_true), probs, n)


def most_uncertain(y_true: Sequence[int], probs: np.ndarray, n: int = 8, seed: int = 0) -> list[int]:
    """The `n` rows with the smallest margin between the two highest probabilities (nearest a tie)."""
    probs = np.asarray(probs)
    if probs.shape[1] < 2 or len(probs) == 0:
        return []
    top2 = np.sort(probs, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    return np.argsort(margin, kind="stable")[:n].tolist()


SELECTORS = {
    "random_correct": random_correct,
    "random_incorrect": random_incorrect,
    "most_confident_correct": most_confident_correct_per_class,
    "most_confident_incorrect": most_confident_incorrect_per_class,
    "most_uncertain": most_uncertain,
}


def titles_for(
    rows: Sequence[int], y_true: Sequence[int], probs: np.ndarray, classes: Sequence[str]
) -> list[str]:
    """'<predicted> <probability>' for each row, with the true class when the prediction is wrong."""
    pred, top = _predicted(probs)
    out = []
    for i in rows:
        title = f"{classes[pred[i]]} {top[i]:.3f}"
        if pred[i] != y_true[i]:
            title += f"\n(true {classes[y_true[i]]})"
        out.append(title)
    return out


def save_gallery(
    paths: Sequence[str | os.PathLike],
    titles: Sequence[str],
    out_png: str | os.PathLike,
    cols: int = 4,
    thumb: float = 2.0,
) -> Path:
    """Write a PNG grid of the images, each titled (atomically)."""
    plt = pyplot()
    cols = max(1, min(cols, len(paths)))
    rows = max(1, -(-len(paths) // cols))
    band, foot = 0.45, 0.1  # inches above each image for its three-line title; below the last row
    width, height = cols * thumb, rows * (thumb + band) + foot
    fig = plt.figure(figsize=(width, height))
    side = thumb - 0.1  # each image's box, in inches; placed by hand because tight_layout measured
    for n, (path, title) in enumerate(zip(paths, titles, strict=True)):  # every hidden tick, slowly
        r, c = divmod(n, cols)
        top = r * (thumb + band) + band  # inches from the top of the figure to the top of the box
        box = [(c * thumb + 0.05) / width, 1 - (top + side) / height, side / width, side / height]
        image_tile(fig.add_axes(box), path, title)
    return save_figure(fig, out_png, dpi=110)  # thumbnails are 256 px: 2 inches at 110 dpi keeps them sharp


def confusion_figure(
    cm: np.ndarray, cm_norm: np.ndarray, classes: Sequence[str], out_png: str | os.PathLike
) -> Path:
    """Write a PNG of the confusion matrix: counts on the left, row-normalised on the right."""
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = pyplot()
    side = 2.5 + 0.45 * len(classes)
    fig, (left, right) = plt.subplots(1, 2, figsize=(2 * side + 1, side))
    ConfusionMatrixDisplay(np.asarray(cm), display_labels=list(classes)).plot(
        ax=left, values_format="d", colorbar=False, xticks_rotation="vertical"
    )
    left.set_title("counts")
    ConfusionMatrixDisplay(np.asarray(cm_norm), display_labels=list(classes)).plot(
        ax=right, values_format=".2f", colorbar=False, xticks_rotation="vertical"
    )
    right.set_title("normalised by true class")
    fig.tight_layout()
    return save_figure(fig, out_png)
