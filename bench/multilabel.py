"""Multi-label UC Merced: imagefit's linear and finetune defaults against a plain one-vs-rest baseline.

    python bench/multilabel.py [--folds 5] [--no-finetune]

The 1,680 training scenes of ../shared/data/ucmerced/train with their published multi-labels
(multilabels-train.tsv: 17 labels, one 0/1 column each, names without extension) are split into
5 folds. For each fold, `imagefit.train(table, images=ROOT)` trains the linear strategy with its
defaults on the other four (the table is passed as a DataFrame with an `is_valid` column), and
the baseline, scikit-learn's one-vs-rest logistic regression (standardised features, C=1) at
threshold 0.5, is fitted on the same cached features. Both are scored on the held-out fold:
samples-F1, micro-F1, macro-F1 and mAP, then averaged over the folds.

Finetune is trained once, on fold 1's split: `imagefit.train(..., strategy="finetune")` with its
defaults gets the four training folds only (no `is_valid` column), so it holds out its own 20 %
(seed 0) to pick the best epoch and the per-label thresholds, and is scored on the held-out fold 1
like the others; the table shows linear and the baseline on that fold beside it.
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
    parser.add_argument("--no-finetune", action="store_true", help="Skip the finetune run on fold 1.")
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
    folds = list(KFold(args.folds, shuffle=True, random_state=0).split(table))
    for k, (_, held) in enumerate(folds):
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
    linear_s = time.perf_counter() - started
    tuned = None if args.no_finetune else finetune_fold(table, folds[0][1], labels, tmp)
    print(f"\n{args.folds}-fold cross-validated, mean ± std over folds ({linear_s:.0f} s); fold 1 alone:")
    print(f"{'':28s}" + "".join(f"{m:>18s}" for m in METRICS))
    for name, rows in scores.items():
        cells = "".join(
            f"{np.mean([r[m] for r in rows]):>11.4f} ± {np.std([r[m] for r in rows]):.3f}" for m in METRICS
        )
        label = "imagefit linear" if name == "imagefit" else "baseline"
        print(f"{label + f' ({args.folds}-fold)':28s}{cells}")
    fold1 = {"imagefit linear": scores["imagefit"][0], "baseline": scores["baseline"][0]}
    if tuned is not None:
        fold1["imagefit finetune"] = tuned
    for name, row in fold1.items():
        print(f"{name + ' (fold 1)':28s}" + "".join(f"{row[m]:>11.4f}      " for m in METRICS))
    with open("/proc/loadavg") as fh:
        print(f"loadavg: {fh.read().strip()}")


def finetune_fold(table, held, labels: list[str], tmp: Path) -> dict:
    """Finetune defaults trained on the rows outside `held` (its own valid split), scored on `held`."""
    import imagefit
    from imagefit.evaluate.multilabel_metrics import multilabel_scores

    outside = np.ones(len(table), bool)
    outside[held] = False
    t0 = time.perf_counter()
    rows = table[outside].reset_index(drop=True)
    result = imagefit.train(rows, "finetune", tmp / "finetune", images=UCM / "train", progress=False)
    classifier = result.classifier
    assert classifier.multilabel and classifier.classes == sorted(labels)
    by_name = {p.stem: p for p in (UCM / "train").rglob("*.jpg")}
    features = classifier.extractor(progress=False, cache=False)([by_name[n] for n in table["image"][held]])
    assert features.ok.all()
    y = table.iloc[held][classifier.classes].to_numpy()
    scores = multilabel_scores(y, classifier.probabilities(features.vectors), classifier.thresholds)
    best = result.metrics["best"]
    print(
        f"finetune on fold 1: trained in {time.perf_counter() - t0:.0f} s, best epoch {best['epoch']} "
        f"({best['stage']}, val_mAP {best['value']:.4f}), {result.metrics['epochs']} epochs"
    )
    return scores


if __name__ == "__main__":
    main()
