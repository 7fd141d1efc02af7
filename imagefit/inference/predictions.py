"""Predictions: class probabilities of images, as rows and CSV; no torch needed."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from imagefit.data.atomic import write_with
from imagefit.errors import OptionError

UNKNOWN = "unknown"  # the class written for an image unlike the training images, with reject


@dataclass
class Predictions:
    """Class probabilities for each input file that decoded; the others are listed in `errors`.

    Multi-label predictions carry `thresholds`: the probabilities are independent (sigmoid) and a
    label is predicted when its probability reaches its threshold.
    """

    classes: list[str]
    paths: list[Path]
    probabilities: np.ndarray  # (n, n_classes)
    errors: list[tuple[Path, str]] = field(default_factory=list)
    thresholds: np.ndarray | None = None  # (n_classes,) for multi-label predictions
    familiarity: np.ndarray | None = None  # (n,) higher = more like the training images; None: not judged
    unknown: np.ndarray | None = None  # (n,) booleans: unlike the training images
    reject: bool = False  # the class (labels) of an unknown image is "unknown"

    @property
    def multilabel(self) -> bool:
        return self.thresholds is not None

    @property
    def labels(self) -> list:
        """The class of each image; multi-label: the list of labels of each image."""
        if self.multilabel:
            labels = [[c for c, on in zip(self.classes, row, strict=True) if on] for row in self.decisions]
        else:
            labels = [self.classes[i] for i in self.probabilities.argmax(1)]
        if self.reject and self.unknown is not None:
            labels = [
                ([UNKNOWN] if self.multilabel else UNKNOWN) if u else x
                for x, u in zip(labels, self.unknown, strict=True)
            ]
        return labels

    @property
    def decisions(self) -> np.ndarray:
        """(n, n_classes) booleans: the labels predicted for each image (multi-label)."""
        return self.probabilities >= self.thresholds

    def with_threshold(self, threshold: float) -> Predictions:
        """The same multi-label predictions deciding every label at `threshold`."""
        if not self.multilabel:
            raise OptionError("--threshold applies to multi-label models; this one predicts one class")
        if not 0 < threshold < 1:
            raise OptionError(f"--threshold must be between 0 and 1, got {threshold}")
        return replace(self, thresholds=np.full(len(self.classes), threshold, np.float32))

    def rejecting(self, reject: bool = True) -> Predictions:
        """The same predictions, with the class of each unknown image written as "unknown"."""
        return replace(self, reject=reject)

    def rows(self) -> list[dict]:
        """One dict per image: path, class, probability (multi-label: labels), then familiarity and
        unknown when the run judges them, then p_<class>."""
        out = []
        labels = self.labels
        for i, (path, probs) in enumerate(zip(self.paths, self.probabilities, strict=True)):
            if self.multilabel:
                row = {"path": str(path), "labels": " ".join(labels[i])}
            else:
                row = {"path": str(path), "class": labels[i], "probability": float(probs.max())}
            if self.familiarity is not None:
                row.update(familiarity=float(self.familiarity[i]), unknown=int(self.unknown[i]))
            row.update({f"p_{c}": float(p) for c, p in zip(self.classes, probs, strict=True)})
            out.append(row)
        return out

    def to_csv(self, target: str | os.PathLike) -> None:
        """Write the rows as CSV (atomically)."""
        first = ["path", "labels"] if self.multilabel else ["path", "class", "probability"]
        judged = ["familiarity", "unknown"] if self.familiarity is not None else []
        fields = [*first, *judged, *(f"p_{c}" for c in self.classes)]

        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
                writer = csv.DictWriter(fh, fieldnames=fields)
                writer.writeheader()
                for row in self.rows():
                    writer.writerow({k: f"{v:.6f}" if isinstance(v, float) else v for k, v in row.items()})

        write_with(target, write)
