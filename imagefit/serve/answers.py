"""What POST /predict answers for each picture: the rows of `predict --csv`, multi-label as JSON.

A single-label run answers {path, class, probability, p_<class>...}, unchanged. A multi-label run
answers {path, labels: [the labels predicted], p_<label>..., thresholds: {label: threshold}}: the
labels as a list rather than the CSV's space-joined cell, and the thresholds that decided them.
"""

from __future__ import annotations

from imagefit.inference.predictions import Predictions


def answer_rows(preds: Predictions) -> list[dict]:
    """One answer per picture, in input order."""
    if not preds.multilabel:
        return preds.rows()
    thresholds = {c: round(float(t), 6) for c, t in zip(preds.classes, preds.thresholds, strict=True)}
    out = []
    for row, labels in zip(preds.rows(), preds.labels, strict=True):
        out.append({**row, "labels": labels, "thresholds": thresholds})
    return out
