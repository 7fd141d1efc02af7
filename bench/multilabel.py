"""Multi-label UC Merced: imagefit's linear defaults against a plain one-vs-rest baseline.

    python bench/multilabel.py [--folds 5]

The 1,680 training scenes of ../shared/data/ucmerced/train with their published multi-labels
(multilabels-train.tsv: 17 labels, one 0/1 column each, names without extension) are split into
5 folds. For each fold, `imagefit.train(table, images=ROOT)` trains the linear strategy with its
defaults on the other four (the table is passed as a DataFrame with an `is_valid` column), and
the baseline, scikit-learn's one-vs-rest logistic regression (standardised features, C=1) at
threshold 0.5, is fitted on the same cached features. Both are scored on the held-out fold:
samples-F1, micro-F1, macro-F1 and mAP, then averaged over the folds.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._common import DATA, offline_env

UCM = DATA / "ucmerced"
METRICS = ("samples_f1", "micro_f1", "macro_f1", "mAP")


def baseline(x_train, y_train, x_valid) -> np.ndarray:
    """One-vs-rest logistic regression, standardised features, no tuning: label probabilities."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), OneVsRestClassifier(LogisticRegression(max_iter=2000)))
    return model.fit(x_train, y_train).predict_proba(x_valid)


def main() -> None:
    import pandas as pd
    from sklearn.model_selection import KFold

    import imagefit
    from imagefit.evaluate.multilabel_metrics import multilabel_scores

    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="imagefit-bench-multilabel-"))
    os.environ.update(offline_env(), IMAGEFIT_CACHE=os.environ.get("IMAGEFIT_CACHE", str(tmp / "cache")))
    table = pd.read_csv(UCM / "multilabels-train.tsv", sep="\t")
    labels = [c for c in table.columns if c != "image"]
    print(
        f"{len(table)} images, {len(labels)} labels, {table[labels].to_numpy().sum(1).mean():.2f} per image"
    )
    scores: dict[str, list[dict]] = {"imagefit": [], "baseline": []}
    started = time.perf_counter()
    for k, (_, held) in enumerate(KFold(args.folds, shuffle=True, random_state=0).split(table)):
        fold = table.assign(is_valid=np.isin(np.arange(len(table)), held))
        t0 = time.perf_counter()
        result = imagefit.train(fold, images=UCM / "train", out=tmp / f"run{k}", progress=False)
        fit_s = time.perf_counter() - t0
        classifier = result.classifier
        assert classifier.classes == sorted(labels)
        extract = classifier.extractor(progress=False)
        by_name = {p.stem: p for p in (UCM / "train").rglob("*.jpg")}
        paths = [by_name[n] for n in fold["image"]]
        features = extract(paths)  # all from the cache the run filled
        assert features.ok.all()
        y = fold[classifier.classes].to_numpy()
        train, valid = ~fold["is_valid"].to_numpy(), fold["is_valid"].to_numpy()
        ours = classifier.probabilities(features.vectors[valid])
        scores["imagefit"].append(multilabel_scores(y[valid], ours, classifier.thresholds))
        theirs = baseline(features.vectors[train], y[train], features.vectors[valid])
        scores["baseline"].append(multilabel_scores(y[valid], theirs, 0.5))
        line = "  ".join(
            f"{m} {scores['imagefit'][-1][m]:.4f}/{scores['baseline'][-1][m]:.4f}" for m in METRICS
        )
        print(
            f"fold {k + 1}: imagefit/baseline  {line}  (train {fit_s:.0f} s, C={result.metrics['head']['C']})"
        )
    print(
        f"\n{args.folds}-fold cross-validated, mean ± std over folds ({time.perf_counter() - started:.0f} s):"
    )
    print(f"{'':10s}" + "".join(f"{m:>18s}" for m in METRICS))
    for name, rows in scores.items():
        cells = "".join(
            f"{np.mean([r[m] for r in rows]):>11.4f} ± {np.std([r[m] for r in rows]):.3f}" for m in METRICS
        )
        print(f"{name:10s}{cells}")
    with open("/proc/loadavg") as fh:
        print(f"loadavg: {fh.read().strip()}")


if __name__ == "__main__":
    main()
