"""Label tables: a CSV/TSV file or a DataFrame of image names and labels, in the shapes people use.

Three shapes are understood: a path column and a label column (`path,label`); a path column and
a tags column holding several labels separated by a space, `;`, `,` or `|` (`image_name,tags`);
a path column and one 0/1 column per label (one-hot). An `is_valid` (true/false) or `split`
(train/valid/test) column says which rows are for validation. Every problem is one DataError
naming the file, the row and the column.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

from imagefit.data.images import is_image_file
from imagefit.errors import DataError

TABLE_SUFFIXES = frozenset({".csv", ".tsv", ".tab"})
PATH_NAMES = ("path", "file", "filename", "file_name", "filepath", "fname", "image", "image_name",
              "image_id", "img", "id", "name")  # fmt: skip
SPLIT_NAMES = ("is_valid", "split")
TAG_DELIMS = ("|", ";", ",", " ")  # guessed in this order from the label cells
DELIM_NAMES = {"space": " ", "tab": "\t", "none": None}
COLUMN_DELIMS = ("\t", ",", ";", "|")
SPLIT_VALUES = {"train": "train", "training": "train", "valid": "valid", "val": "valid",
                "validation": "valid", "test": "test"}  # fmt: skip
TRUE, FALSE = frozenset({"1", "true", "yes", "y", "t"}), frozenset({"0", "false", "no", "n", "f"})


@dataclass(frozen=True)
class Row:
    """One table row: where it is (for messages), the image name, its labels and its split."""

    where: str  # "line 7" of a file, "row <index>" of a DataFrame
    name: str
    labels: tuple[str, ...]
    split: str | None  # train, valid or test; None when the table has no split column


@dataclass
class Table:
    """A table read and understood: which columns hold what, and its rows."""

    source: str  # the file, or "DataFrame"
    folder: Path  # where relative image names start unless --images says otherwise
    path_col: str
    label_cols: list[str]
    split_col: str | None
    shape: str  # "path,label", "path,tags" or "one-hot"
    delim: str | None
    rows: list[Row]

    def at(self, row: Row, column: str) -> str:
        """`FILE line N column 'C'`, the start of a message about one cell."""
        return f"{self.source} {row.where} column {column!r}"

    def describe(self) -> str:
        """What was understood, in one line."""
        if self.shape == "one-hot":
            what = f"one-hot: {len(self.label_cols)} 0/1 label columns"
        elif self.shape == "path,tags":
            what = f"path,tags: labels in column {self.label_cols[0]!r} separated by {self.delim!r}"
        else:
            what = f"path,label: one label per image in column {self.label_cols[0]!r}"
        split = f", split by column {self.split_col!r}" if self.split_col else ""
        return f"{self.source}: {len(self.rows)} rows, images in column {self.path_col!r}, {what}{split}"


def is_frame(data: object) -> bool:
    """True for a pandas DataFrame (recognised without importing pandas)."""
    return type(data).__name__ == "DataFrame" and hasattr(data, "columns") and hasattr(data, "itertuples")


def is_table(data: object) -> bool:
    """True for a DataFrame or the path of a CSV/TSV file."""
    if is_frame(data):
        return True
    if not isinstance(data, str | os.PathLike):
        return False
    path = Path(data)
    return path.suffix.lower() in TABLE_SUFFIXES and not path.is_dir()


def read_table(
    data: object, path_col: str | None = None, label_col: str | None = None, label_delim: str | None = None
) -> Table:
    """Read a table file (delimiter sniffed from the header) or a DataFrame and understand its shape."""
    source, folder, header, rows = _frame_cells(data) if is_frame(data) else _file_cells(Path(data))
    if len(set(header)) < len(header):
        twice = sorted({h for h in header if header.count(h) > 1})
        raise DataError(f"{source}: column {twice[0]!r} appears twice in the header: rename one")
    path = _path_column(source, header, rows, path_col)
    split = next((h for h in header if h.lower() in SPLIT_NAMES and h != path), None)
    labels = _label_columns(source, header, path, split, label_col)
    shape, delim = "one-hot", None
    if len(labels) == 1:
        delim = _delimiter(label_delim, [cells[header.index(labels[0])] for _, cells in rows])
        shape = "path,label" if delim is None else "path,tags"
    table = Table(source, folder, path, labels, split, shape, delim, [])
    table.rows = [_row(table, header, where, cells) for where, cells in rows]
    if not table.rows:
        raise DataError(f"{source} has a header but no rows: list one image per row")
    return table


def column_delimiter(path: Path, header: str) -> str:
    """The delimiter of a table file's columns: a tab in .tsv/.tab, else the commonest in its header line."""
    return "\t" if path.suffix.lower() in (".tsv", ".tab") else max(COLUMN_DELIMS, key=header.count)


def _file_cells(path: Path) -> tuple[str, Path, list[str], list[tuple[str, list[str]]]]:
    if not path.is_file():
        raise DataError(f"{path} does not exist: expected a CSV/TSV table of image paths and labels")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason}): save the table as UTF-8 CSV") from exc
    first = text.splitlines()[0] if text.strip() else ""
    if not first.strip():
        raise DataError(f"{path} is empty: expected a header line, then one row per image")
    delim = column_delimiter(path, first)
    if first.count(delim) == 0:
        raise DataError(
            f"{path} line 1: the header has one column ({first.strip()!r}): expected a path column and "
            "label column(s), separated by tabs, commas, semicolons or |"
        )
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    header = [h.strip() for h in next(reader)]
    rows = []
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise DataError(
                f"{path} line {reader.line_num}: {len(cells)} cells where the header has {len(header)} "
                f"(a {delim!r} inside a cell must be quoted)"
            )
        rows.append((f"line {reader.line_num}", [c.strip() for c in cells]))
    return str(path), path.parent, header, rows


def _frame_cells(frame) -> tuple[str, Path, list[str], list[tuple[str, list[str]]]]:
    header = [str(c).strip() for c in frame.columns]
    rows = [(f"row {index}", [_text(v) for v in values]) for index, *values in frame.itertuples(name=None)]
    return "DataFrame", Path.cwd(), header, rows


def _text(value: object) -> str:
    """A DataFrame cell as the text a CSV would hold: NaN and None empty, True 1, 1.0 1."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _path_column(source: str, header: list[str], rows: list, given: str | None) -> str:
    if given is not None:
        if given not in header:
            raise DataError(f"{source}: no column {given!r} (--path-col); the columns: {', '.join(header)}")
        return given
    named = next((h for h in header if h.lower() in PATH_NAMES), None)
    if named:
        return named
    for i, column in enumerate(header):
        values = [cells[i] for _, cells in rows[:20] if cells[i]]
        if values and all(is_image_file(Path(v)) for v in values):
            return column
    raise DataError(
        f"{source}: no path column: none is named {', '.join(PATH_NAMES[:8])}... and none holds image "
        "file names: name it with --path-col"
    )


def _label_columns(source: str, header: list[str], path: str, split: str | None, given: str | None):
    if given is not None:
        if given not in header:
            raise DataError(f"{source}: no column {given!r} (--label-col); the columns: {', '.join(header)}")
        return [given]
    rest = [h for h in header if h not in (path, split)]
    if not rest:
        raise DataError(f"{source}: no label column besides {path!r}: add the labels of each image")
    return rest


def _delimiter(given: str | None, cells: list[str]) -> str | None:
    """The separator of several labels in a cell: given (`none`: one label per cell), or guessed."""
    if given is not None:
        return DELIM_NAMES.get(given.lower(), given)
    return next((d for d in TAG_DELIMS if any(d in c for c in cells)), None)


def _row(table: Table, header: list[str], where: str, cells: list[str]) -> Row:
    row = Row(where, cells[header.index(table.path_col)], (), None)
    if not row.name:
        raise DataError(f"{table.at(row, table.path_col)}: no image name: fill the cell or drop the row")
    split = _split_of(table, row, cells[header.index(table.split_col)]) if table.split_col else None
    if table.shape == "one-hot":
        bits = [_bit(table, row, c, cells[header.index(c)]) for c in table.label_cols]
        labels = tuple(sorted(c for c, on in zip(table.label_cols, bits, strict=True) if on))
    else:
        cell = cells[header.index(table.label_cols[0])]
        parts = cell.split(table.delim) if table.delim else [cell]
        labels = tuple(sorted({p.strip() for p in parts if p.strip()}))
    return Row(where, row.name, labels, split)


def _bit(table: Table, row: Row, column: str, value: str) -> bool:
    low = value.lower()
    if low in ("1", "true"):
        return True
    if low in ("0", "false"):
        return False
    raise DataError(
        f"{table.at(row, column)}: {value!r} is not 0 or 1: a one-hot table holds one 0/1 column per "
        "label (if this column is no label, name the label column with --label-col)"
    )


def _split_of(table: Table, row: Row, value: str) -> str:
    low = value.lower()
    if table.split_col.lower() == "is_valid" and low in TRUE | FALSE:
        return "valid" if low in TRUE else "train"
    if table.split_col.lower() == "split" and low in SPLIT_VALUES:
        return SPLIT_VALUES[low]
    allowed = "true or false" if table.split_col.lower() == "is_valid" else "train, valid or test"
    raise DataError(f"{table.at(row, table.split_col)}: {value!r} is not {allowed}")
