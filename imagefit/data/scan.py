"""A dataset scan before training: images per class, files to skip, conversions, imbalance, leakage."""

from __future__ import annotations

import logging
import os
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from imagefit.data.folders import Dataset
from imagefit.data.label_counts import label_imbalance_warning, label_spread
from imagefit.data.probe import FileCheck, probe

log = logging.getLogger(__name__)

IMBALANCE_RATIO = 3.0  # largest class over smallest from which a warning is given
SPLITS = ("train", "valid", "test")
SHOWN = 20  # lines of each kind logged before training; imagefit check lists them all


@dataclass
class DatasetScan:
    """What a scan of a dataset found; `warnings()` and `summary()` say it in words."""

    dataset: Dataset
    problems: list[FileCheck] = field(default_factory=list)  # files that will be skipped
    converted: Counter = field(default_factory=Counter)  # conversion note -> number of files
    leaks: list[tuple[Path, Path]] = field(default_factory=list)  # (train file, valid or test file)
    conflicts: list[tuple[Path, Path]] = field(default_factory=list)  # same content, two classes
    copies: int = 0  # files whose content is already in the same class of the same split

    def imbalance(self, split: str = "train") -> tuple[str, int, str, int] | None:
        """(largest class, its count, smallest class, its count) when their ratio is worrying."""
        counts = self.dataset.counts(split)
        bad = {p.path for p in self.problems}
        for sample in getattr(self.dataset, split):
            if sample.path in bad:
                for i in sample.label_set:
                    counts[self.dataset.classes[i]] -= 1  # counted as they will be trained on
        if len(counts) < 2 or not any(counts.values()):
            return None
        big, small = max(counts, key=counts.get), min(counts, key=counts.get)
        if counts[big] >= IMBALANCE_RATIO * max(counts[small], 1):
            return big, counts[big], small, counts[small]
        return None

    def warnings(self) -> list[str]:
        """One line per thing the user should know before trusting the run."""
        out = _first([f"will skip {c.problem}" for c in self.problems], "unreadable files")
        lopsided = self.imbalance()
        if lopsided and self.dataset.multilabel:
            out.append(label_imbalance_warning(*lopsided))
        elif lopsided:
            big, n_big, small, n_small = lopsided
            out.append(
                f"class imbalance in train: {big} has {n_big} images, {small} {n_small} "
                f"({n_big / max(n_small, 1):.1f} : 1); accuracy will flatter the model: "
                "add images of the small classes or move some of the large ones out"
            )
        leaks = [
            f"leakage: {b} is the same file as {a} (train): its score will be too good; remove one copy"
            for a, b in self.leaks
        ]
        conflicts = [
            f"same file in two classes: {a} and {b}: keep it in the right one" for a, b in self.conflicts
        ]
        return out + _first(leaks, "duplicates") + _first(conflicts, "files in two classes")

    def summary(self) -> str:
        """The dataset's description plus counts of what was found."""
        lines = [self.dataset.describe()]
        if self.dataset.multilabel:
            lines.append(label_spread(self.dataset, "train", {p.path for p in self.problems}))
        if self.converted:
            lines.append(
                "  converted: " + ", ".join(f"{n} {note}" for note, n in sorted(self.converted.items()))
            )
        found = [
            f"{len(self.problems)} file(s) to skip" if self.problems else "",
            f"{len(self.leaks)} file(s) in valid/test also in train" if self.leaks else "",
            f"{len(self.conflicts)} file(s) in two classes" if self.conflicts else "",
            f"{self.copies} duplicate file(s) within a class" if self.copies else "",
        ]
        found = [f for f in found if f]
        lines.append("  scan: " + ("; ".join(found) if found else "every image readable, no duplicates"))
        return "\n".join(lines)


def scan_dataset(
    dataset: Dataset, workers: int | None = None, checks: dict[Path, FileCheck] | None = None
) -> DatasetScan:
    """Probe every file of `dataset` (headers and end markers) and compare contents across splits.

    `checks` are verdicts already made (by `imagefit check`), used instead of probing again.
    """
    from imagefit.data.digests import file_digest

    files = [(split, s) for split in SPLITS for s in getattr(dataset, split)]
    scan = DatasetScan(dataset)
    known = checks or {}

    def look(item):
        _, sample = item
        check = known.get(sample.path) or probe(sample.path)
        return check, (file_digest(sample.path) if check.ok else None)

    threads = workers or min(8, (os.cpu_count() or 2) + 2)
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(look, files))
    owners: dict[str, list[tuple[str, tuple[int, ...], Path]]] = defaultdict(list)
    for (split, sample), (check, digest) in zip(files, results, strict=True):
        if not check.ok:
            scan.problems.append(check)
            continue
        scan.converted.update(check.notes)
        owners[digest].append((split, sample.label_set, sample.path))
    for group in owners.values():
        _compare(group, scan)
    return scan


def _compare(group: list[tuple[str, tuple[int, ...], Path]], scan: DatasetScan) -> None:
    """Record leaks (train vs valid/test) and label conflicts among files with the same content."""
    train = [g for g in group if g[0] == "train"]
    for split, _, path in group:
        if split != "train" and train:
            scan.leaks.append((train[0][2], path))
    labelled = [g for g in group if g[0] != "test"]
    first = labelled[0] if labelled else None
    for split, label, path in labelled[1:]:
        if split == first[0]:
            if label != first[1]:
                scan.conflicts.append((first[2], path))
            else:
                scan.copies += 1


def report_dataset(dataset: Dataset, workers: int | None = None) -> DatasetScan:
    """Scan `dataset` and log its summary (info) and what needs attention (warnings)."""
    scan = scan_dataset(dataset, workers)
    log.info(scan.summary())
    for line in scan.warnings():
        log.warning(line)
    return scan


def _first(lines: list[str], what: str) -> list[str]:
    if len(lines) <= SHOWN:
        return lines
    return [*lines[:SHOWN], f"... and {len(lines) - SHOWN} more {what} (imagefit check DATA lists them all)"]
