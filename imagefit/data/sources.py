"""A dataset from whatever the user gives: a folder in any layout, a CSV/TSV table, or a DataFrame."""

from __future__ import annotations

from pathlib import Path

from imagefit.data.folders import Dataset, discover_dataset
from imagefit.data.table_dataset import table_dataset
from imagefit.data.tables import is_frame, is_table
from imagefit.errors import OptionError

TABLE_OPTIONS = ("images", "valid", "path_col", "label_col", "label_delim")


def read_dataset(data: object, valid_pct: float = 0.2, seed: int = 0, task: str = "auto", **table) -> Dataset:
    """The dataset of `data`; `table` holds the table options (images, valid, path_col, ...)."""
    if is_table(data):
        return table_dataset(data, valid_pct=valid_pct, seed=seed, task=task, **table)
    given = [name for name in TABLE_OPTIONS if table.get(name) is not None]
    if task == "multilabel":
        given.append("task")
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise OptionError(f"{flags}: option(s) of a label table (CSV/TSV), but {data} is not one")
    return discover_dataset(data, valid_pct, seed)


def data_source(data: object) -> str:
    """What config.json records as the data: the resolved path, or "DataFrame"."""
    return "DataFrame" if is_frame(data) else str(Path(data).resolve())
