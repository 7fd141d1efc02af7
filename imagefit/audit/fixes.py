"""A FIXES file: `path,action,label` rows (audit.csv with its action column filled in is one)."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from imagefit.errors import DataError

ACTIONS = ("relabel", "remove", "keep")


@dataclass
class Row:
    """One decision of a FIXES file; `line` is its line number in the file (the header is line 1)."""

    line: int
    path: str
    action: str
    label: str


def read_fixes(fixes: str | os.PathLike) -> list[Row]:
    """The rows of a FIXES file that ask for something (relabel or remove); DataError on a bad row."""
    fixes = Path(fixes)
    with open(fixes, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = set(reader.fieldnames or [])
        if not {"path", "action"} <= columns:
            raise DataError(f"{fixes}: needs the columns path,action[,label] (found {', '.join(columns)})")
        rows = []
        for line, record in enumerate(reader, 2):
            action = (record.get("action") or "").strip().lower()
            label = (record.get("label") or "").strip() or (record.get("suggested") or "").strip()
            if action and action not in ACTIONS:
                raise DataError(
                    f"{fixes}: line {line}: unknown action {action!r}: use relabel, remove or keep"
                )
            if action == "relabel" and not label:
                raise DataError(f"{fixes}: line {line}: relabel needs a label (the label column)")
            rows.append(Row(line, (record.get("path") or "").strip(), action, label))
    return rows
