"""Label-error detection by `imagefit audit` on UC Merced with planted label noise, beside a plain baseline.

    python -m bench.audit [--rates 0.05 0.10] [--no-cold]

Links the 1,680 training images of the shared UC Merced set into a scratch folder of class
folders, moving a seeded share of them (5 % and 10 %) into a random other class. Runs the real
command line, `imagefit audit`, first with an empty feature cache (cold) and then again (warm),
and scores its ranked label issues: precision@k (k = number planted) and the precision and
recall of the set cleanlab flags. The baseline, in the same run and on the same features:
cleanlab's find_label_issues on 5-fold out-of-fold probabilities of a default scikit-learn
LogisticRegression (max_iter raised to 1000 so that it converges on raw features). Last, the warm
audit of the 2,000 Dogs-vs-Cats photos (in the user's cache). Prints /proc/loadavg beside every time.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._common import DATA, DOGS_CATS, offline_env

UCMERCED = DATA / "ucmerced" / "train"
SEED = 0


def plant(folder: Path, rate: float, seed: int = SEED) -> set[str]:
    """Link every training image into `folder`, a `rate` share of them under a random other class."""
    classes = sorted(p.name for p in UCMERCED.iterdir() if p.is_dir())
    files = sorted(UCMERCED.rglob("*.jpg"))
    rng = np.random.default_rng(seed)
    moved = set(rng.choice(len(files), round(rate * len(files)), replace=False).tolist())
    planted = set()
    for i, f in enumerate(files):
        label = f.parent.name
        if i in moved:
            others = [c for c in classes if c != label]
            label = others[rng.integers(len(others))]
            planted.add(f"{label}/{f.name}")
        (folder / label).mkdir(parents=True, exist_ok=True)
        (folder / label / f.name).symlink_to(f)
    return planted


def run_audit(data: Path, out: Path, cache: Path) -> float:
    """Wall seconds of `imagefit audit DATA --out OUT` with the feature cache in `cache`."""
    env = {**offline_env(), "IMAGEFIT_CACHE": str(cache)}
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "imagefit", "-q", "audit", str(data), "--out", str(out)]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def scores(ranked: list[str], flagged: set[str], planted: set[str]) -> dict[str, float]:
    """precision@k over the ranking, precision and recall of the flagged set."""
    k = len(planted)
    return {
        "p@k": len(set(ranked[:k]) & planted) / k,
        "flagged": len(flagged),
        "precision": len(flagged & planted) / max(len(flagged), 1),
        "recall": len(flagged & planted) / k,
    }


def imagefit_scores(out: Path, planted: set[str]) -> dict[str, float]:
    rows = [r for r in csv.DictReader((out / "audit.csv").open()) if r["kind"] == "label_issue"]
    ranked = [r["path"] for r in sorted(rows, key=lambda r: int(r["rank"]))]
    flagged = {r["path"] for r in rows if r["note"].startswith("cleanlab")}
    return scores(ranked, flagged, planted)


def baseline_scores(data: Path, cache: Path, planted: set[str]) -> tuple[dict[str, float], float]:
    """cleanlab on out-of-fold probabilities of a default LogisticRegression, on the cached features."""
    os.environ["IMAGEFIT_CACHE"] = str(cache)
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from imagefit.data.folders import discover_dataset
    from imagefit.search.embed import make_extractor

    dataset = discover_dataset(data)
    samples = sorted(dataset.train + dataset.valid, key=lambda s: str(s.path))
    extractor, _ = make_extractor("efficientnet_lite0", progress=False)
    x = extractor([s.path for s in samples]).vectors
    y = np.array([s.label for s in samples])
    started = time.perf_counter()
    folds = StratifiedKFold(5, shuffle=True, random_state=SEED)
    probs = cross_val_predict(LogisticRegression(max_iter=1000), x, y, cv=folds, method="predict_proba")
    flagged_idx = find_label_issues(y, probs, return_indices_ranked_by="self_confidence")
    seconds = time.perf_counter() - started
    names = [f"{dataset.classes[s.label]}/{s.path.name}" for s in samples]
    ranked = [names[i] for i in np.argsort(get_label_quality_scores(y, probs), kind="stable")]
    return scores(ranked, {names[i] for i in flagged_idx}, planted), seconds


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[0.05, 0.10])
    parser.add_argument("--no-cold", action="store_true", help="Skip the cold-cache run.")
    args = parser.parse_args()
    if not UCMERCED.is_dir():
        raise SystemExit(f"real data not found at {UCMERCED}")
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        tmp = Path(tmp)
        user_cache = Path(os.environ.get("IMAGEFIT_CACHE") or Path.home() / ".cache" / "imagefit")
        cache = user_cache if args.no_cold else tmp / "cache"
        print(f"{'noise':>6} {'method':<10} {'p@k':>6} {'k':>4} {'flagged':>8} {'precision':>9} "
              f"{'recall':>7}  seconds (load)")  # fmt: skip
        for n, rate in enumerate(args.rates):
            data = tmp / f"ucmerced-{rate:.2f}"
            planted = plant(data, rate)
            times = []
            if n == 0 and not args.no_cold:
                times.append(f"cold {run_audit(data, tmp / 'cold', cache):.1f} ({loadavg()})")
            times.append(f"warm {run_audit(data, tmp / f'out-{n}', cache):.1f} ({loadavg()})")
            ours = imagefit_scores(tmp / f"out-{n}", planted)
            base, base_s = baseline_scores(data, cache, planted)
            for name, s, t in (("imagefit", ours, ", ".join(times)), ("baseline", base, f"fit {base_s:.1f}")):
                print(f"{rate:>6.0%} {name:<10} {s['p@k']:>6.3f} {len(planted):>4} {s['flagged']:>8} "
                      f"{s['precision']:>9.3f} {s['recall']:>7.3f}  {t}", flush=True)  # fmt: skip
        if DOGS_CATS.is_dir():
            run_audit(DOGS_CATS, tmp / "dogs-cats", user_cache)  # fills the user's cache if need be
            seconds = run_audit(DOGS_CATS, tmp / "dogs-cats", user_cache)
            print(f"Dogs-vs-Cats, 2,000 photos: warm audit {seconds:.1f} s (load {loadavg()})")


if __name__ == "__main__":
    main()
