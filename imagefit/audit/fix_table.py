"""imagefit fix on a label table: a corrected copy written beside it; the original is never edited.

Each FIXES row names an image as the table writes it, or by its path under the images folder (as
audit.csv does). `relabel` rewrites the row's label cell (one-hot: its 0/1 columns; a multi-label
table takes several labels separated by spaces, as audit.csv suggests them), `remove` drops the
row, `keep` changes nothing. Rows the fixes do not touch are copied byte for byte.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

from imagefit.audit.fixes import Row, read_fixes
from imagefit.audit.items import table_root
from imagefit.data.atomic import write_with
from imagefit.data.image_names import AmbiguousName, ImageFinder
from imagefit.data.tables import Table, column_delimiter, is_frame, read_table
from imagefit.errors import DataError, OptionError

FIXED = ".fixed"  # labels.csv -> labels.fixed.csv


@dataclass
class TableFix:
    """Where the corrected copy of a table went, and how many rows were relabelled, removed and kept."""

    table: Path
    relabelled: int
    removed: int
    kept: int


def fixed_name(table: Path) -> Path:
    """Where the corrected copy of `table` goes by default: labels.csv -> labels.fixed.csv beside it."""
    return table.with_name(f"{table.stem}{FIXED}{table.suffix}")


def fix_table(
    data: str | os.PathLike,
    fixes: str | os.PathLike,
    out: str | os.PathLike | None = None,
    images: str | os.PathLike | None = None,
    path_col: str | None = None,
    label_col: str | None = None,
    label_delim: str | None = None,
) -> TableFix:
    """Write `data` with FIXES applied to `out` (default: TABLE.fixed.csv); every row checked first."""
    if is_frame(data):
        raise OptionError("imagefit fix needs a table file (CSV/TSV), not a DataFrame: save it first")
    source = Path(data)
    table = read_table(source, path_col, label_col, label_delim)
    rows = read_fixes(fixes)
    decisions = _decisions(table, table_root(source, images), rows, Path(fixes))
    target = Path(out) if out is not None else fixed_name(source)
    if os.path.abspath(target) == os.path.abspath(source):
        raise OptionError(f"{target} is the table itself: the original is never edited; choose another --out")
    raw = source.read_bytes()
    bom = codecs.BOM_UTF8 if raw.startswith(codecs.BOM_UTF8) else b""
    text = _apply(table, raw.decode("utf-8-sig"), decisions)
    write_with(target, lambda p: p.write_bytes(bom + text.encode("utf-8")))
    actions = [a for a, _ in decisions.values()]
    return TableFix(
        target, actions.count("relabel"), actions.count("remove"), sum(r.action == "keep" for r in rows)
    )


def _decisions(
    table: Table, root: Path, rows: list[Row], fixes: Path
) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Table row (its `where`, e.g. "line 7") -> (action, label); DataError naming the first bad FIXES row."""
    by_name, by_file = _row_index(table, root)
    classes = (
        sorted(table.label_cols)
        if table.shape == "one-hot"
        else sorted({x for r in table.rows for x in r.labels})
    )
    multilabel = any(len(r.labels) > 1 for r in table.rows)
    decisions: dict[str, tuple[str, tuple[str, ...]]] = {}
    for row in rows:
        if row.action not in ("relabel", "remove"):
            continue
        where = f"{fixes}: line {row.line} ({row.path or 'no path'})"
        found = by_name.get(row.path) or by_file.get(os.path.abspath(root / row.path) if row.path else "")
        if not found:
            raise DataError(f"{where}: no row of {table.source} names this image: nothing was written")
        labels = _labels_of(row.label, classes, multilabel) if row.action == "relabel" else ()
        unknown = [x for x in labels if x not in classes]
        if unknown:
            known = ", ".join(classes)
            raise DataError(f"{where}: unknown label {unknown[0]!r} (labels: {known}): nothing was written")
        if any(w in decisions for w in found):
            raise DataError(f"{where}: a second row for the same image: keep one; nothing was written")
        decisions.update({w: (row.action, labels) for w in found})
    return decisions


def _labels_of(label: str, classes: list[str], multilabel: bool) -> tuple[str, ...]:
    """A relabel's new labels: one, or in a multi-label table several separated by spaces (as audit.csv)."""
    return (label,) if label in classes or not multilabel else tuple(sorted(set(label.split())))


def _row_index(table: Table, root: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Rows by the image name as written, and by the absolute path of the file it names."""
    finder, by_name, by_file = ImageFinder(root), {}, {}
    for row in table.rows:
        by_name.setdefault(row.name, []).append(row.where)
        try:
            path = finder.find(row.name)
        except AmbiguousName:
            path = None
        if path is not None:
            by_file.setdefault(os.path.abspath(path), []).append(row.where)
    return by_name, by_file


def _apply(table: Table, text: str, decisions: dict[str, tuple[str, tuple[str, ...]]]) -> str:
    """The table's text with relabelled rows rewritten and removed rows left out; the rest as it was."""
    lines = list(io.StringIO(text))
    delim = column_delimiter(Path(table.source), text.splitlines()[0])
    reader = csv.reader(iter(lines), delimiter=delim)
    header = [h.strip() for h in next(reader)]
    out, start = lines[: reader.line_num], reader.line_num
    for cells in reader:
        record, start = lines[start : reader.line_num], reader.line_num
        action, labels = decisions.get(f"line {reader.line_num}", ("", ()))
        if action == "remove":
            continue
        if action == "relabel":
            ending = record[-1][len(record[-1].rstrip("\r\n")) :]
            record = [_relabelled(table, header, cells, labels, delim, ending)]
        out += record
    return "".join(out)


def _relabelled(
    table: Table, header: list[str], cells: list[str], labels: tuple[str, ...], delim: str, ending: str
) -> str:
    """One row written again with `labels` as its labels."""
    if table.shape == "one-hot":
        for column in table.label_cols:
            cells[header.index(column)] = "1" if column in labels else "0"
    else:
        cells[header.index(table.label_cols[0])] = (table.delim or " ").join(labels)
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delim, lineterminator=ending).writerow(cells)
    return buffer.getvalue()
