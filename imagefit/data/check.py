"""imagefit check: every problem of a dataset folder, file by file, like a linter; --fix quarantines.

Bad files are moved, never deleted: into a quarantine folder beside the dataset, under the same
relative path, with quarantine.json recording where each came from and why.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from imagefit.data.atomic import write_json
from imagefit.data.folders import discover_dataset
from imagefit.data.images import is_image_file, list_images
from imagefit.data.probe import FileCheck, probe
from imagefit.data.scan import DatasetScan, scan_dataset
from imagefit.data.tables import is_table
from imagefit.errors import DataError

MANIFEST = "quarantine.json"
PROBLEMS_FOUND = 3  # exit code of `imagefit check` when unusable files remain


@dataclass
class CheckReport:
    """The verdict on a folder: files that cannot be used, conversions, dataset-level warnings."""

    root: Path
    checked: int = 0  # image files decoded
    ignored: int = 0  # files without an image extension (never read by imagefit)
    problems: list[FileCheck] = field(default_factory=list)
    converted: Counter = field(default_factory=Counter)
    dataset_error: str | None = None  # why the folder cannot be trained on as it is
    scan: DatasetScan | None = None
    moved: list[tuple[Path, Path]] = field(default_factory=list)  # (from, to) with fix=True

    @property
    def remaining(self) -> list[FileCheck]:
        """Problem files still in the dataset (not moved to quarantine)."""
        gone = {src for src, _ in self.moved}
        return [p for p in self.problems if p.path not in gone]

    @property
    def exit_code(self) -> int:
        """0 when every remaining file can be used and the layout is trainable, else PROBLEMS_FOUND."""
        return PROBLEMS_FOUND if self.remaining or self.dataset_error else 0

    def lines(self) -> list[str]:
        """Linter-style lines: `PATH: error [kind] reason`, `PATH: warning ...`, `moved A -> B`."""
        out = [f"{p.path}: error [{p.kind}] {_reason(p)}" for p in self.remaining]
        out += [f"moved {src} -> {dst}" for src, dst in self.moved]
        if self.dataset_error:
            out.append(f"{self.root}: error [layout] {self.dataset_error}")
        if self.scan is not None:
            out += [
                f"{self.root}: warning {w}" for w in self.scan.warnings() if not w.startswith("will skip")
            ]
        return out

    def summary(self) -> str:
        """One line of totals."""
        notes = ", ".join(f"{n} {note}" for note, n in sorted(self.converted.items()))
        parts = [
            f"{self.checked} image files checked",
            f"{len(self.problems)} unusable"
            + (f" ({len(self.moved)} moved to quarantine)" if self.moved else ""),
            f"{self.ignored} other files ignored",
        ]
        if self.scan is not None and self.scan.copies:
            parts.append(f"{self.scan.copies} duplicate file(s) within a class")
        return "; ".join(parts) + (f"; converted on the fly: {notes}" if notes else "")


def check(
    data: str | os.PathLike,
    fix: bool = False,
    quarantine: str | os.PathLike | None = None,
    quick: bool = False,
    workers: int | None = None,
    images: str | os.PathLike | None = None,
) -> CheckReport:
    """Check every image file under `data`; with `fix`, move unusable ones into `quarantine`.

    `quick` reads headers and end markers only instead of decoding every pixel. `data` may also be a
    label table (CSV/TSV, its image names under `images`): then the images it names are checked.
    """
    root = Path(data)
    if is_table(root):
        return _check_table(root, fix, quarantine, quick, workers, images)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder: give the dataset folder to check")
    jail = Path(quarantine) if quarantine is not None else default_quarantine(root)
    images = [p for p in list_images(root) if not _inside(p, jail)]
    threads = workers or min(8, (os.cpu_count() or 2) + 2)
    with ThreadPoolExecutor(threads) as pool:
        checks = list(pool.map(lambda p: probe(p, decode=not quick), images))
    report = CheckReport(root, len(images), _count_other_files(root, jail))
    report.problems = [c for c in checks if not c.ok]
    for c in checks:
        report.converted.update(c.notes)
    try:
        report.scan = scan_dataset(discover_dataset(root), workers, {c.path: c for c in checks})
    except DataError as exc:
        report.dataset_error = str(exc)
    if fix:
        report.moved = quarantine_files(root, report.problems, jail)
    return report


def _check_table(table: Path, fix: bool, quarantine, quick: bool, workers, images) -> CheckReport:
    """`check` of the images a label table names (each once), with the table's dataset scanned."""
    from imagefit.data.sources import read_dataset

    dataset = read_dataset(table, images=images)
    paths = sorted({s.path for split in ("train", "valid", "test") for s in getattr(dataset, split)})
    threads = workers or min(8, (os.cpu_count() or 2) + 2)
    with ThreadPoolExecutor(threads) as pool:
        checks = list(pool.map(lambda p: probe(p, decode=not quick), paths))
    report = CheckReport(table, len(paths), 0)
    report.problems = [c for c in checks if not c.ok]
    for c in checks:
        report.converted.update(c.notes)
    report.scan = scan_dataset(dataset, workers, {c.path: c for c in checks})
    if fix:
        jail = Path(quarantine) if quarantine is not None else default_quarantine(dataset.root)
        report.moved = quarantine_files(dataset.root, report.problems, jail)
    return report


def default_quarantine(root: Path) -> Path:
    """`<DATA>-quarantine` beside the dataset folder."""
    root = root.resolve()
    return root.parent / f"{root.name}-quarantine"


def quarantine_files(root: Path, problems: list[FileCheck], jail: Path) -> list[tuple[Path, Path]]:
    """Move each problem file to `jail` under its path relative to `root`; record it in quarantine.json."""
    moved, records = [], []
    for item in problems:
        target = _free_name(jail / _relative(item.path, root))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(os.fspath(item.path), os.fspath(target))
        moved.append((item.path, target))
        records.append({"from": str(item.path), "to": str(target), "kind": item.kind, "reason": item.problem})
    if records:
        manifest = jail / MANIFEST
        earlier = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else []
        write_json(manifest, earlier + records)
    return moved


def _reason(item: FileCheck) -> str:
    prefix = f"{item.path}: "
    text = item.problem or ""
    return text[len(prefix) :] if text.startswith(prefix) else text


def _relative(path: Path, root: Path) -> Path:
    try:
        return path.relative_to(root)
    except ValueError:
        return Path(path.name)


def _free_name(target: Path) -> Path:
    """`target`, or `target` with .1, .2, ... before the suffix when a file is already there."""
    n, candidate = 0, target
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = target.with_name(f"{target.stem}.{n}{target.suffix}")
    return candidate


def _inside(path: Path, folder: Path) -> bool:
    return os.path.abspath(path).startswith(os.path.abspath(folder) + os.sep)


def _count_other_files(root: Path, jail: Path) -> int:
    count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and not _inside(Path(dirpath, d), jail)]
        count += sum(1 for f in filenames if not is_image_file(Path(f)) and not f.startswith("."))
    return count
