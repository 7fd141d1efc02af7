"""The theme key: `name<TAB>value` lines naming the classes of a label raster, and value -> class index."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagefit.errors import DataError

KEY_FILE = "key-theme.txt"
IGNORED = -1  # class index of pixels whose value the user said to ignore
_UNKNOWN = -2  # class index of values neither in the key nor ignored
_LINE = re.compile(r"^(.*\S)\s+(\d+)$")


@dataclass(frozen=True)
class ThemeKey:
    """Class names and their label values, in the key file's order; `ignore` marks unlabelled pixels."""

    names: tuple[str, ...]
    values: tuple[int, ...]
    ignore: int | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.ignore is not None and self.ignore in self.values:
            name = self.names[self.values.index(self.ignore)]
            raise DataError(f"--ignore {self.ignore} is the value of class {name!r} in {self.source}")

    def with_ignore(self, ignore: int | None) -> ThemeKey:
        """The same key ignoring label value `ignore` (None: ignore nothing)."""
        return ThemeKey(self.names, self.values, ignore, self.source)

    def lookup(self) -> np.ndarray:
        """A table from every 16-bit label value to its class index (IGNORED, or -2 when unknown)."""
        table = np.full(65536, _UNKNOWN, np.int16)
        table[list(self.values)] = np.arange(len(self.values))
        if self.ignore is not None:
            table[self.ignore] = IGNORED
        return table

    def encode(self, labels: np.ndarray, origin: str | Path) -> np.ndarray:
        """Class indices (int16, IGNORED for ignored pixels) of raw label values; an unknown value raises."""
        if labels.dtype.kind not in "ui" or (labels.size and (labels.min() < 0 or labels.max() > 65535)):
            raise DataError(f"{origin}: label values must be integers from 0 to 65535")
        index = self.lookup()[labels.astype(np.int64, copy=False)]
        unknown = index == _UNKNOWN
        if unknown.any():
            value = int(labels[unknown][0])
            hint = f"add it to {self.source}" if self.source else "add it to the key"
            raise DataError(
                f"{origin}: label value {value} is not in the key ({unknown.sum()} pixels): "
                f"{hint}, or pass --ignore {value} to leave those pixels out"
            )
        return index

    def decode(self, index: np.ndarray, nodata: int) -> np.ndarray:
        """Label values (uint16) of class indices; negative indices become `nodata`."""
        values = np.asarray((*self.values, nodata), np.uint16)
        return values[np.where(index < 0, len(self.values), index)]

    def nodata(self) -> int:
        """A label value for 'no class': 0 unless the key uses it, else 65535."""
        return 0 if 0 not in self.values else 65535

    def to_json(self) -> dict:
        return {"names": list(self.names), "values": list(self.values), "ignore": self.ignore}

    @classmethod
    def from_json(cls, data: dict) -> ThemeKey:
        return cls(tuple(data["names"]), tuple(int(v) for v in data["values"]), data.get("ignore"))


def read_key(path: str | Path, ignore: int | None = None) -> ThemeKey:
    """Read a key file of `name<TAB>value` lines (blank lines and # comments skipped)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing key file {path}: write one `name<TAB>value` line per class")
    names, values = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, value = _split(line, path, number)
        if value in values:
            raise DataError(f"{path} line {number}: value {value} is used twice")
        names.append(name)
        values.append(value)
    if len(names) < 2:
        raise DataError(f"{path} names {len(names)} class(es): a theme map needs at least two")
    return ThemeKey(tuple(names), tuple(values), ignore, str(path))


def _split(line: str, path: Path, number: int) -> tuple[str, int]:
    name, _, value = line.rpartition("\t")
    if not name:
        m = _LINE.match(line)
        name, value = (m[1], m[2]) if m else ("", "")
    if not name.strip() or not value.strip().isdigit() or int(value) > 65535:
        raise DataError(f"{path} line {number}: expected `name<TAB>value` (value 0-65535), got {line!r}")
    return name.strip(), int(value)
