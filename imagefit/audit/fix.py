"""imagefit fix: a person's decisions on a dataset applied by moving files, never deleting, with an undo.

FIXES is a CSV with `path,action,label` columns (audit.csv with its action column filled in is
one): `relabel` moves the file into the class folder `label` (default: the row's `suggested`), or
renames a Kaggle-style file to the new label; `remove` moves it under DATA-quarantine/; `keep`
and an empty action do nothing. Every row is checked, and the folders' write access, before the
first file moves; the journal is written before the first move too.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from imagefit.audit.fixes import Row, read_fixes
from imagefit.audit.items import FOLDER, LabelledImages, labelled_images
from imagefit.audit.journal import (
    APPLIED,
    UNDONE,
    Journal,
    Move,
    mark,
    move_file,
    read_journal,
    reverse,
    write_plan,
)
from imagefit.data.check import default_quarantine
from imagefit.data.digests import file_digest
from imagefit.data.tables import is_table
from imagefit.errors import DataError, OptionError

if TYPE_CHECKING:
    from imagefit.audit.fix_table import TableFix

PAUSE_ENV = "IMAGEFIT_FIX_PAUSE"  # seconds to wait after each move: lets tests kill a fix mid-way


@dataclass
class FixResult:
    """What a fix moved, and the journal that undoes it."""

    journal: Path
    moves: list[Move]
    kept: int


def fix(
    data: str | os.PathLike,
    fixes: str | os.PathLike,
    journal: str | os.PathLike | None = None,
    quarantine: str | os.PathLike | None = None,
    **table,
) -> FixResult | TableFix:
    """Apply FIXES to the class folders (or Kaggle names) of `data`; the journal undoes it.

    A label table is never edited: `fix_table` writes a corrected copy beside it (`table` holds
    out, images, path_col, label_col, label_delim).
    """
    if is_table(data):
        if journal is not None or quarantine is not None:
            raise OptionError("--journal and --quarantine are for class folders: a table fix moves no file")
        from imagefit.audit.fix_table import fix_table

        return fix_table(data, fixes, **table)
    if any(v is not None for v in table.values()):
        raise OptionError(f"{', '.join(table)}: option(s) of a label table, but {data} is not one")
    items = labelled_images(data)
    rows = read_fixes(fixes)
    journal = Path(journal) if journal is not None else Path(f"{fixes}.journal")
    _check_earlier(journal)
    jail = Path(quarantine) if quarantine is not None else default_quarantine(items.root)
    moves = _plan(items, [r for r in rows if r.action in ("relabel", "remove")], jail, Path(fixes))
    created = _missing_folders([Path(m.target).parent for m in moves])
    _check_writable(moves)
    plan = Journal(journal, str(items.root.resolve()), moves, [str(p) for p in created])
    write_plan(plan)
    _apply(plan)
    mark(plan, APPLIED)
    return FixResult(journal, moves, sum(r.action == "keep" for r in rows))


def undo(journal: str | os.PathLike) -> list[Move]:
    """Put back every file a fix moved (also after a fix killed mid-way); the moves reversed."""
    plan = read_journal(journal)
    if plan.state == UNDONE:
        raise DataError(f"{journal} was already undone: nothing to put back")
    restored = reverse(plan)
    mark(plan, UNDONE)
    return restored


def _check_earlier(journal: Path) -> None:
    if not journal.exists():
        return
    state = read_journal(journal).state
    if state == APPLIED:
        raise DataError(
            f"{journal}: these fixes were already applied: undo them first (imagefit fix --undo {journal})"
        )
    if state is None:
        raise DataError(f"{journal}: an earlier fix was interrupted: imagefit fix --undo {journal} first")


def _plan(items: LabelledImages, rows: list[Row], jail: Path, fixes: Path) -> list[Move]:
    """Every move the rows ask for, each checked; DataError naming the first bad row, before any move."""
    labels = {p.resolve(): items.classes[y] for p, y in zip(items.paths, items.labels, strict=True)}
    root, seen, targets, moves = items.root.resolve(), set(), set(), []
    for row in rows:
        where = f"{fixes}: line {row.line} ({row.path or 'no path'})"
        source = _resolve(root, row.path)
        if source is None or not source.is_file():
            raise DataError(f"{where}: no such file in {items.root}: nothing was moved")
        if source not in labels:
            raise DataError(f"{where}: not a labelled image of {items.root}: nothing was moved")
        if source in seen:
            raise DataError(f"{where}: a second row for the same file: keep one; nothing was moved")
        seen.add(source)
        if row.action == "relabel" and row.label not in items.classes:
            known = ", ".join(items.classes)
            raise DataError(f"{where}: unknown label {row.label!r} (classes: {known}): nothing was moved")
        if row.action == "relabel" and row.label == labels[source]:
            continue  # already so labelled
        target = _target(items, source, labels[source], row, root, jail)
        if target in targets or os.path.lexists(target):
            raise DataError(f"{where}: {target} already exists: rename one of them; nothing was moved")
        targets.add(target)
        moves.append(Move(str(source), str(target), row.line, row.action, source.stat().st_size,
                          file_digest(source)))  # fmt: skip
    return moves


def _resolve(root: Path, path: str) -> Path | None:
    if not path:
        return None
    candidate = Path(path) if os.path.isabs(path) else root / path
    resolved = Path(os.path.abspath(candidate))
    return resolved if str(resolved).startswith(str(root) + os.sep) else None


def _target(items: LabelledImages, source: Path, given: str, row: Row, root: Path, jail: Path) -> Path:
    if row.action == "remove":
        return _free(Path(os.path.abspath(jail)) / source.relative_to(root))
    if items.source == FOLDER:
        return source.parent.parent / row.label / source.name
    return source.with_name(row.label + source.name[len(given) :])  # Kaggle style: cat.12.jpg


def _free(target: Path) -> Path:
    """`target`, or with .1, .2, ... before the suffix when the quarantine already holds that name."""
    n, candidate = 0, target
    while os.path.lexists(candidate):
        n += 1
        candidate = target.with_name(f"{target.stem}.{n}{target.suffix}")
    return candidate


def _missing_folders(folders: list[Path]) -> list[Path]:
    """Folders (and their missing parents) that do not exist yet, parents first."""
    missing = set()
    for folder in folders:
        while not folder.exists():
            missing.add(folder)
            folder = folder.parent
    return sorted(missing, key=lambda p: len(p.parts))


def _check_writable(moves: list[Move]) -> None:
    """DataError when any folder a move touches is read-only: checked before the first move."""
    folders = {Path(m.source).parent for m in moves} | {Path(m.target).parent for m in moves}
    folders = {f if f.exists() else next(p for p in f.parents if p.exists()) for f in folders}
    for folder in sorted(folders):
        if not os.access(folder, os.W_OK) or not os.stat(folder).st_mode & 0o222:
            raise DataError(f"{folder} is read-only: make it writable to apply fixes; nothing was moved")


def _apply(plan: Journal) -> None:
    """Make the planned moves; on an error, put back those already made and re-raise."""
    pause = float(os.environ.get(PAUSE_ENV) or 0)
    try:
        for folder in plan.created:
            os.makedirs(folder, exist_ok=True)
        for move in plan.moves:
            move_file(Path(move.source), Path(move.target))
            if pause:
                time.sleep(pause)
    except OSError:
        reverse(plan)
        mark(plan, UNDONE)
        raise
