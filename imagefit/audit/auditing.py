"""imagefit.audit: likely label errors, outliers, near-duplicates, leakage and unusable files, ranked."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imagefit.audit.duplicates import SAME_PICTURE, classify_groups, same_picture, similar_pairs
from imagefit.audit.findings import LABEL_ISSUE, OUTLIER, SCORES, UNUSABLE, Finding, ranked, write_findings
from imagefit.audit.items import TABLE, LabelledImages, labelled_images
from imagefit.audit.labels import LabelIssues, label_issues
from imagefit.audit.multilabel import multilabel_issues
from imagefit.audit.outliers import flag_outliers, outlier_scores
from imagefit.audit.page import write_page
from imagefit.clock import StageClock
from imagefit.data.atomic import write_json
from imagefit.data.sources import data_source
from imagefit.data.tables import is_frame, is_table
from imagefit.errors import OptionError
from imagefit.features.neighbours import connected_groups
from imagefit.models.registry import DEFAULT_BACKBONE

log = logging.getLogger(__name__)

CSV, JSON, HTML = "audit.csv", "audit.json", "audit.html"
DUPLICATE_SEARCHES = ("fast", "thorough", "none")


@dataclass
class AuditResult:
    """Where the audit was written, its findings (ranked) and its counts and settings."""

    out: Path
    findings: list[Finding]
    summary: dict = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[Finding]:
        """The findings of one kind, worst first."""
        return [f for f in self.findings if f.kind == kind]


def audit(
    data: str | os.PathLike,
    out: str | os.PathLike | None = None,
    folds: int = 5,
    seed: int = 0,
    model: str = DEFAULT_BACKBONE,
    weights: str | Path = "auto",
    valid_pct: float = 0.2,
    threshold: float | None = None,
    duplicates: str = "fast",
    page: bool = True,
    images: str | os.PathLike | None = None,
    valid: str | os.PathLike | None = None,
    path_col: str | None = None,
    label_col: str | None = None,
    label_delim: str | None = None,
    **options,
) -> AuditResult:
    """Audit every labelled image of `data`; write audit.csv, audit.json and audit.html into `out`.

    `data` is a dataset folder, a label table (CSV/TSV) or a DataFrame; `images` ... `label_delim`
    are the table options of `imagefit train`. A multi-label table is cross-validated by the
    multi-label head's own folds (3), whatever `folds` says.

    `duplicates`: "fast" (embeddings closer than `threshold`, default 0.95, confirmed pixel by
    pixel), "thorough" (`imagefit dedupe`'s search, default threshold 0.9; slower) or "none".
    `options` go to the feature extractor (batch_size, workers, engine, cache, progress).
    """
    if duplicates not in DUPLICATE_SEARCHES:
        raise OptionError(f"unknown duplicate search {duplicates!r}: choose fast, thorough or none")
    threshold = threshold if threshold is not None else (0.9 if duplicates == "thorough" else 0.95)
    from imagefit.search.embed import make_extractor

    clock = StageClock()
    table = {"images": images, "valid": valid, "path_col": path_col, "label_col": label_col,
             "label_delim": label_delim}  # fmt: skip
    items = labelled_images(data, valid_pct, seed, **table)
    out = Path(out) if out is not None else Path("audits") / _name_of(data)
    problems = _unusable_files(items)
    extractor, record = make_extractor(model, weights, **options)
    found = extractor(items.paths, desc="features")
    kept, vectors = np.flatnonzero(found.ok), found.vectors
    clock.lap("features")
    if items.label_sets is not None:
        issues = multilabel_issues(vectors, [items.label_sets[j] for j in kept], len(items.classes), seed)
    else:
        issues = label_issues(vectors, items.labels[kept], items.classes, folds, seed)
    findings = _label_findings(items, kept, issues)
    findings += _outlier_findings(items, kept, outlier_scores(vectors))
    clock.lap("labels_outliers")
    if duplicates != "none":
        groups = _duplicate_groups(items, kept, vectors, duplicates, threshold, model, weights, options)
        findings += _duplicate_findings(items, kept, vectors, groups)
    clock.lap("duplicates")
    unusable = problems | dict(found.errors)
    findings = ranked(
        findings + [Finding(UNUSABLE, items.relative(p), note=str(r)) for p, r in sorted(unusable.items())]
    )
    settings = {"folds": issues.folds, "C": issues.C, "flagged_by_cleanlab": int(issues.flagged.sum()),
                "seed": seed, "model": record.get("backbone"), "feature_key": record.get("key"),
                "duplicates": duplicates, "duplicate_threshold": threshold, "valid_pct": valid_pct,
                "scores": SCORES}  # fmt: skip
    clock.lap("total", since_start=True)
    summary = _summary(items, len(kept), findings, settings, clock.seconds)
    summary["data"] = data_source(data)
    _write(out, items, findings, summary, page)
    return AuditResult(out, findings, summary)


def _name_of(data: object) -> str:
    """The default audit folder's name: the folder's name, the table's stem, or "DataFrame"."""
    if is_frame(data):
        return "DataFrame"
    return Path(data).resolve().stem if is_table(data) else Path(data).resolve().name


def _unusable_files(items: LabelledImages) -> dict[Path, str]:
    """What `imagefit check` finds: every file under a dataset folder, a table's listed images."""
    if items.source != TABLE:
        from imagefit.data.check import check

        return {c.path: c.problem for c in check(items.root, quick=True).problems}
    from imagefit.data.probe import probe

    checks = [probe(p) for p in items.paths + items.unlabelled]
    return {c.path: c.problem for c in checks if not c.ok}


def _label_findings(items: LabelledImages, kept: np.ndarray, issues: LabelIssues) -> list[Finding]:
    """A label_issue finding per listed image: its given label(s), the label(s) predicted out of fold."""
    out = []
    for i in issues.indices:
        suggested = items.names(issues.suggested[i])
        note = "cleanlab: label issue" if issues.flagged[i] else "out-of-fold prediction disagrees"
        if items.label_sets is None:  # one class per image: how sure the folds are of the suggestion
            note += f"; p({suggested}) = {issues.probabilities[i].max():.3f}"
        j = kept[i]
        out.append(
            Finding(
                LABEL_ISSUE,
                items.relative(items.paths[j]),
                given=items.given(j),
                suggested=suggested,
                score=float(issues.quality[i]),
                note=note,
            )
        )
    return out


def _outlier_findings(items: LabelledImages, kept: np.ndarray, scores: np.ndarray) -> list[Finding]:
    return [
        Finding(
            OUTLIER,
            items.relative(items.paths[kept[i]]),
            given=items.given(kept[i]),
            score=float(scores[i]),
        )
        for i in flag_outliers(scores)
    ]


def _duplicate_groups(items, kept, vectors, search, threshold, model, weights, options) -> list[list[Path]]:
    if search == "thorough":
        from imagefit.search.dedupe import dedupe

        return dedupe(items.root, threshold, model, weights, **options)
    paths = [items.paths[j] for j in kept]
    pairs = [
        (i, j)
        for i, j, _ in similar_pairs(vectors, threshold)
        if same_picture(paths[i], paths[j]) >= SAME_PICTURE
    ]
    return connected_groups(pairs, paths)


def _duplicate_findings(items, kept, vectors, groups) -> list[Finding]:
    by_path = {items.paths[j]: vectors[i] for i, j in enumerate(kept)}
    copies = classify_groups(groups, items, by_path)
    copies.sort(key=lambda c: -np.nan_to_num(c.similarity, nan=1.0))

    def name(label: int) -> str:
        return items.classes[label] if label >= 0 else ""

    return [
        Finding(
            c.kind,
            items.relative(c.path),
            given=name(c.label),
            suggested=name(c.like_label) if c.like_label != c.label else "",
            score=c.similarity,
            note=f"like {items.relative(c.like)}",
        )
        for c in copies
    ]


def _summary(items: LabelledImages, embedded: int, findings: list[Finding], settings, timings) -> dict:
    counts = {}
    for f in findings:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    return {
        "data": str(items.root.resolve()),
        "classes": items.classes,
        "images": len(items.paths),
        "embedded": embedded,
        "unlabelled": len(items.unlabelled),
        "label_source": items.source,
        "task": "single" if items.label_sets is None else "multilabel",
        "counts": counts,
        "settings": settings,
        "seconds": {k: round(v, 3) for k, v in timings.items()},
    }


def _write(out: Path, items: LabelledImages, findings: list[Finding], summary: dict, page: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_findings(out / CSV, findings)
    write_json(out / JSON, summary)
    if page:
        write_page(out / HTML, items.root, findings, summary)
    log.info("audit of %d images written to %s", summary["images"], out)
