"""Findings: one row of audit.csv each (kind, path, given, suggested, score, rank), worst first per kind."""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import asdict, dataclass

from imagefit.data.atomic import write_text

LABEL_ISSUE, OUTLIER, UNUSABLE = "label_issue", "outlier", "unusable"
KINDS = (LABEL_ISSUE, "leakage", "cross_class", "near_duplicate", OUTLIER, UNUSABLE)
COLUMNS = ("kind", "path", "given", "suggested", "score", "rank", "action", "label", "note")
SCORES = {
    LABEL_ISSUE: "label quality (cleanlab self-confidence: the out-of-fold probability of the given label)",
    OUTLIER: "cleanlab out-of-distribution score from the mean cosine distance to the nearest images",
    "near_duplicate": "cosine similarity of the embeddings of the copy and the image it repeats",
    "leakage": "cosine similarity of the embeddings of the copy and the image it repeats",
    "cross_class": "cosine similarity of the embeddings of the copy and the image it repeats",
    UNUSABLE: "none: the file cannot be decoded",
}


@dataclass
class Finding:
    """One thing a person should look at; `action` and `label` are theirs to fill in for `imagefit fix`."""

    kind: str
    path: str  # relative to the dataset root, forward slashes
    given: str = ""
    suggested: str = ""
    score: float = math.nan
    rank: int = 0  # 1 = worst of its kind
    action: str = ""  # relabel, remove or keep, decided by a person
    label: str = ""  # the new label of a relabel (default: suggested)
    note: str = ""


def ranked(findings: list[Finding]) -> list[Finding]:
    """Findings grouped by kind in KINDS order, each kind worst first, ranks set 1, 2, ..."""
    out = []
    for kind in KINDS:
        mine = [f for f in findings if f.kind == kind]
        for rank, finding in enumerate(mine, 1):
            finding.rank = rank
        out += mine
    return out


def write_findings(target: str | os.PathLike, findings: list[Finding]) -> None:
    """Write audit.csv atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for finding in findings:
        row = asdict(finding)
        row["score"] = "" if math.isnan(finding.score) else f"{finding.score:.6g}"
        writer.writerow(row)
    write_text(target, buffer.getvalue())
