"""Does a run know what it does not know? Unknown-input scores and calibration on the shared photos.

    python -m bench.trust [--near-seeds 0,1,2] [--skip-far] [--skip-near] [--finetune] [--out DIR]

Linear runs (bundled EfficientNet-Lite0, cached features) are trained with `imagefit.train`, then:

- far unknowns: a Dogs-vs-Cats run against the UC Merced images, and a UC Merced run against the
  Dogs-vs-Cats validation photos;
- near unknowns: UC Merced runs trained on 15 of its 21 classes, the images of the other 6 as
  unknowns, one seeded choice of the 6 per seed.

For each, every score beside the baselines: maximum softmax probability (`msp`), energy (log-sum-
exp of the logits), cosine similarity to the nearest (and the 5th nearest) training image (`knn`),
class-conditional Mahalanobis distance with a shared shrunk covariance (`mahalanobis`), and knn and
msp combined as p-values against the validation images, by Fisher's method (imagefit's
familiarity), by their minimum and by their mean. The known images are the run's
validation images; AUROC and FPR at 95 % TPR (unknowns passing the threshold that keeps 95 % of the
known images). Then calibration: ECE (15 bins) and log loss of the validation probabilities before
and after the temperature, fitted on all of them and, honestly, two-fold (fitted on one half,
measured on the other), with the argmax agreement.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

from bench._common import DATA, DOGS_CATS

UCM = DATA / "ucmerced"


def linear_run(data: Path, out: Path, strategy: str = "linear"):
    """A run on `data` (linear: cached features), loaded as a Classifier with its logits uncalibrated:
    the benchmark fits the calibration as training does (`fit_temperature`), to measure before and after."""
    import imagefit

    if not (out / "model.safetensors").is_file():  # calibrated here, not in training
        imagefit.train(str(data), strategy=strategy, out=out, progress=False, calibrate=False)
    return imagefit.load(out)


def features_of(classifier, paths: list[Path]) -> np.ndarray:
    extractor = classifier.extractor(cache=True, progress=False)
    feats = extractor(paths)
    if feats.errors:
        raise SystemExit(f"unreadable images: {feats.errors[:3]}")
    return feats.vectors


def split_paths(root: Path, split: str, classes: list[str] | None = None) -> tuple[list[Path], np.ndarray]:
    """The JPEGs of `root/split/<class>` and their class indices (classes sorted)."""
    classes = classes or sorted(p.name for p in (root / split).iterdir() if p.is_dir())
    paths, labels = [], []
    for i, name in enumerate(classes):
        files = sorted((root / split / name).glob("*.jpg")) + sorted((root / split / name).glob("*.tif"))
        paths += files
        labels += [i] * len(files)
    return paths, np.array(labels)


class Scored:
    """A run's known validation images and some unknown images, scored every way."""

    def __init__(self, classifier, train_paths, valid_paths, valid_y, unknown_paths):
        from imagefit.inference.calibration import fit_temperature
        from imagefit.inference.familiarity import Familiarity

        self.train = features_of(classifier, train_paths)
        self.valid = features_of(classifier, valid_paths)
        self.unknown = features_of(classifier, unknown_paths)
        self.valid_y = valid_y
        self.logits_v, self.logits_u = classifier.logits(self.valid), classifier.logits(self.unknown)
        self.calibration = fit_temperature(self.logits_v, valid_y)
        self.train_y = _train_labels(classifier, train_paths)
        probs_v, probs_u = (
            _softmax(self.calibration.apply(self.logits_v)),
            _softmax(self.calibration.apply(self.logits_u)),
        )
        self.familiarity = Familiarity.fit(self.train, self.valid, probs_v)
        self.probs_v, self.probs_u = probs_v, probs_u

    def scores(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per method: (known scores, unknown scores), higher meaning more familiar."""
        from imagefit.inference.familiarity import (
            COMBINATIONS,
            Familiarity,
            energy,
            knn_similarity,
            max_probability,
        )

        fam = self.familiarity
        maha_v, maha_u = _mahalanobis(self.train, self.train_y, self.valid, self.unknown)
        out = {
            "msp (baseline)": (max_probability(self.probs_v), max_probability(self.probs_u)),
            "energy (baseline)": (energy(self.logits_v), energy(self.logits_u)),
            "knn k=1": (knn_similarity(fam.index, self.valid, 1), knn_similarity(fam.index, self.unknown, 1)),
            "knn k=5": (knn_similarity(fam.index, self.valid, 5), knn_similarity(fam.index, self.unknown, 5)),
            "mahalanobis": (maha_v, maha_u),
        }
        for k, how in [(1, h) for h in COMBINATIONS] + [(5, "fisher")]:
            f = Familiarity.fit(self.train, self.valid, self.probs_v, k=k, how=how)
            name = f"knn k={k} + msp, {how}" + (" (imagefit)" if (k, how) == (fam.k, fam.how) else "")
            out[name] = (f.scores(self.valid, self.probs_v), f.scores(self.unknown, self.probs_u))
        return out


def _train_labels(classifier, train_paths: list[Path]) -> np.ndarray:
    names = [p.parent.name for p in train_paths]
    return np.array([classifier.classes.index(n) for n in names])


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def _mahalanobis(train, train_y, *queries) -> list[np.ndarray]:
    """Minus the smallest class-conditional Mahalanobis distance (shared Ledoit-Wolf covariance)."""
    from sklearn.covariance import LedoitWolf

    means = np.stack([train[train_y == c].mean(0) for c in np.unique(train_y)])
    centred = train - means[train_y]
    precision = LedoitWolf().fit(centred).precision_
    out = []
    for q in queries:
        d = np.stack([np.einsum("ij,jk,ik->i", q - m, precision, q - m) for m in means], 1)
        out.append(-d.min(1))
    return out


def ood_metrics(known: np.ndarray, unknown: np.ndarray) -> tuple[float, float]:
    """AUROC (known as positives) and the unknowns' share above the 5th percentile of the known."""
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.ones(len(known)), np.zeros(len(unknown))]
    auroc = roc_auc_score(y, np.r_[known, unknown])
    threshold = np.quantile(known, 0.05)
    return float(auroc), float((unknown >= threshold).mean())


def calibration_rows(scored: Scored) -> dict:
    """ECE and log loss before and after the temperature; the two-fold (honest) figure; argmax kept."""
    from sklearn.metrics import log_loss

    from imagefit.inference.calibration import expected_calibration_error, fit_temperature

    z, y = scored.logits_v, scored.valid_y
    labels = list(range(z.shape[1]))
    raw, cal = _softmax(z), scored.probs_v
    rng = np.random.default_rng(0)
    half = rng.permutation(len(y)) < len(y) // 2
    folded = np.empty_like(raw)
    for fit_on in (half, ~half):
        t = fit_temperature(z[fit_on], y[fit_on])
        folded[~fit_on] = _softmax(t.apply(z[~fit_on]))
    return {
        "temperature": scored.calibration.temperature,
        "ece_before": expected_calibration_error(raw, y),
        "ece_after": expected_calibration_error(cal, y),
        "ece_two_fold": expected_calibration_error(folded, y),
        "log_loss_before": log_loss(y, raw, labels=labels),
        "log_loss_after": log_loss(y, cal, labels=labels),
        "log_loss_two_fold": log_loss(y, folded, labels=labels),
        "same_argmax": float((raw.argmax(1) == cal.argmax(1)).mean()),
        "accuracy": float((cal.argmax(1) == y).mean()),
        "valid_called_unknown": float(
            scored.familiarity.unknown(scored.familiarity.scores(scored.valid, cal)).mean()
        ),
    }


def print_ood(title: str, table: dict[str, list[tuple[float, float]]]) -> None:
    print(f"\n{title}")
    print(f"  {'method':<34}" + "".join(f"{'AUROC':>9}{'FPR@95':>9}" for _ in next(iter(table.values()))))
    for method, cells in table.items():
        line = "".join(f"{a:9.4f}{f:9.4f}" for a, f in cells)
        if len(cells) > 1:
            line += f"   mean AUROC {np.mean([a for a, _ in cells]):.4f}"
        print(f"  {method:<34}{line}")


def far(tmp: Path) -> None:
    dc_train, _ = split_paths(DOGS_CATS, "train")
    dc_valid, dc_y = split_paths(DOGS_CATS, "valid")
    ucm_train, _ = split_paths(UCM, "train")
    ucm_valid, ucm_y = split_paths(UCM, "valid")
    cases = {
        "Dogs-vs-Cats run, UC Merced images as unknowns": (
            DOGS_CATS,
            dc_train,
            dc_valid,
            dc_y,
            ucm_train + ucm_valid,
        ),
        "UC Merced run, Dogs-vs-Cats photos as unknowns": (UCM, ucm_train, ucm_valid, ucm_y, dc_valid),
    }
    for title, (data, train, valid, y, unknown) in cases.items():
        scored = Scored(linear_run(data, tmp / data.name), train, valid, y, unknown)
        print_ood(
            title + f" ({len(valid)} known, {len(unknown)} unknown)",
            {m: [ood_metrics(*s)] for m, s in scored.scores().items()},
        )
        print("  calibration on the validation images:", _fmt(calibration_rows(scored)))


def near(tmp: Path, seeds: list[int]) -> None:
    classes = sorted(p.name for p in (UCM / "train").iterdir())
    table: dict[str, list[tuple[float, float]]] = {}
    for seed in seeds:
        held = sorted(np.random.default_rng(seed).choice(classes, 6, replace=False).tolist())
        kept = [c for c in classes if c not in held]
        root = tmp / f"ucm15-seed{seed}"
        for split in ("train", "valid"):
            for c in kept:
                (root / split).mkdir(parents=True, exist_ok=True)
                target = root / split / c
                if not target.exists():
                    os.symlink(UCM / split / c, target)
        train, _ = split_paths(root, "train")
        valid, y = split_paths(root, "valid")
        unknown = split_paths(UCM, "train", held)[0] + split_paths(UCM, "valid", held)[0]
        scored = Scored(linear_run(root, tmp / f"run-{seed}"), train, valid, y, unknown)
        print(f"\nseed {seed}: held out {', '.join(held)}")
        print("  calibration:", _fmt(calibration_rows(scored)))
        for method, pair in scored.scores().items():
            table.setdefault(method, []).append(ood_metrics(*pair))
    print_ood(
        "near unknowns: UC Merced, 15 classes known, 6 unknown (600 images), one column per seed", table
    )


def finetune(tmp: Path) -> None:
    """Calibration of a finetune run (the defaults) on the UC Merced validation images."""
    train, _ = split_paths(UCM, "train")
    valid, y = split_paths(UCM, "valid")
    dc_valid, _ = split_paths(DOGS_CATS, "valid")
    scored = Scored(linear_run(UCM, tmp / "ucm-finetune", "finetune"), train, valid, y, dc_valid)
    print("\nUC Merced finetune run, calibration on the validation images:", _fmt(calibration_rows(scored)))
    table = {m: [ood_metrics(*pair)] for m, pair in scored.scores().items()}
    print_ood("UC Merced finetune run, Dogs-vs-Cats photos as unknowns", table)


def _fmt(row: dict) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in row.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--near-seeds", default="0,1,2")
    parser.add_argument("--skip-far", action="store_true")
    parser.add_argument("--skip-near", action="store_true")
    parser.add_argument("--finetune", action="store_true", help="also a finetune run on UC Merced (slow)")
    parser.add_argument("--out", type=Path, help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        if not args.skip_far:
            far(root)
        if not args.skip_near:
            near(root, [int(s) for s in args.near_seeds.split(",")])
        if args.finetune:
            finetune(root)


if __name__ == "__main__":
    main()
