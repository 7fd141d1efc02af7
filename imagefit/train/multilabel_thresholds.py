"""After a multi-label run trained for epochs (finetune, scratch): its per-label thresholds and scores.

Each label's threshold is the probability that gives its best F1 on the validation images, as the
linear strategy chooses them on out-of-fold predictions. The validation scores at those thresholds
are therefore a little optimistic (mAP is not: it does not depend on them).
"""

from __future__ import annotations

import numpy as np

from imagefit.inference.classifier import Classifier
from imagefit.train.extraction import label_matrix, labels_of, split_scores
from imagefit.train.multilabel import best_thresholds

UNTUNED = 0.5  # a label's threshold until one is chosen


def untuned_thresholds(n_labels: int) -> list[float]:
    """The thresholds a multi-label classifier predicts with before they are chosen."""
    return [UNTUNED] * n_labels


def targets_of(classifier: Classifier, samples, features) -> np.ndarray:
    """The labels of the samples whose features were extracted: indices, or 0/1 rows (multi-label)."""
    if classifier.multilabel:
        return label_matrix(samples, features, len(classifier.classes))
    return labels_of(samples, features)


def choose_thresholds(classifier: Classifier, dataset, extract_options: dict) -> dict:
    """Set the classifier's thresholds from the validation images; the scores of train and valid.

    Returns {'train', 'valid', 'skipped'} as `split_scores` gives them, at the chosen thresholds.
    """
    extractor = classifier.extractor(**extract_options)
    features, targets, skipped = {}, {}, []
    for split in ("valid", "train"):
        samples = getattr(dataset, split)
        features[split] = extractor([s.path for s in samples], desc=f"{split} eval")
        targets[split] = targets_of(classifier, samples, features[split])
        skipped += [{"path": str(p), "reason": r} for p, r in features[split].errors]
    if len(targets["valid"]):
        probabilities = classifier.probabilities(features["valid"].vectors)
        classifier.thresholds = best_thresholds(targets["valid"], probabilities).astype(np.float32)
    out = {split: split_scores(classifier, features[split], targets[split]) for split in ("train", "valid")}
    return {**out, "skipped": skipped}
