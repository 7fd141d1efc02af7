"""The theme key: `name<TAB>value` (or `name<TAB>#RRGGBB`) lines naming the classes of label rasters."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagefit.errors import DataError
from imagefit.maps.inputs.colours import colour_indices, parse_colour

KEY_FILE = "key-theme.txt"
IGNORED = -1  # class index of pixels whose value the user said to ignore
_UNKNOWN = -2  # class index of values neither in the key nor ignored
_LINE = re.compile(r"^(.*\S)\s+(\d+|#[0-9a-fA-F]{6})$")


@dataclass(frozen=True)
class ThemeKey:
    """Class names and their label values, in the key file's order; `ignore` marks unlabelled pixels.

    A colour key (`colours`, one `#RRGGBB` per class) labels classes by colour; its values are then
    1..n, the values its maps are written with. `ignore` is a value, or a colour for a colour key.
    """

    names: tuple[str, ...]
    values: tuple[int, ...]
    ignore: int | str | None = None
    source: str = ""
    colours: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.ignore is None:
            return
        kind = "colour" if self.colours else "value"
        if isinstance(self.ignore, str) != bool(self.colours):
            example = "'#000000'" if self.colours else "0"
            raise DataError(
                f"--ignore {self.ignore}: the key {self.source} gives each class a {kind}: "
                f"ignore a {kind} such as {example}"
            )
        known = self.colours or self.values
        if self.ignore in known:
            name = self.names[known.index(self.ignore)]
            raise DataError(f"--ignore {self.ignore} is the {kind} of class {name!r} in {self.source}")

    @property
    def is_colour(self) -> bool:
        """Whether classes are labelled by colour (else by value)."""
        return bool(self.colours)

    def with_ignore(self, ignore: int | str | None) -> ThemeKey:
        """The same key ignoring label value (or colour) `ignore` (None: ignore nothing)."""
        return ThemeKey(self.names, self.values, ignore, self.source, self.colours)

    def lookup(self) -> np.ndarray:
        """A table from every 16-bit label value to its class index (IGNORED, or -2 when unknown)."""
        table = np.full(65536, _UNKNOWN, np.int16)
        table[list(self.values)] = np.arange(len(self.values))
        if isinstance(self.ignore, int):
            table[self.ignore] = IGNORED
        return table

    def encode(self, labels: np.ndarray, origin: str | Path) -> np.ndarray:
        """Class indices (int16, IGNORED for ignored pixels) of raw label values; an unknown value raises."""
        if labels.dtype.kind not in "ui" or (labels.size and (labels.min() < 0 or labels.max() > 65535)):
            raise DataError(f"{origin}: label values must be integers from 0 to 65535")
        index = self.lookup()[labels.astype(np.int64, copy=False)]
        unknown = index == _UNKNOWN
        if unknown.any():
            found, counts = np.unique(labels[unknown], return_counts=True)
            top = np.argsort(-counts)[:5]
            listed = ", ".join(f"{int(found[i])} ({int(counts[i])} pixels)" for i in top)
            value = int(found[top[0]])
            hint = f"add it to {self.source}" if self.source else "add it to the key"
            what = (
                f"label value {value} is not in the key ({int(counts[0])} pixels)"
                if len(found) == 1
                else f"label values {listed} are not in the key"
            )
            raise DataError(f"{origin}: {what}: {hint}, or pass --ignore {value} to leave those pixels out")
        return index

    def encode_colours(self, rgb: np.ndarray, origin: str | Path) -> np.ndarray:
        """Class indices (int16, IGNORED for the ignored colour) of RGB pixels (rows, cols, 3)."""
        ignore = self.ignore if isinstance(self.ignore, str) else None
        return colour_indices(rgb, self.colours, ignore, origin, self.source)

    def decode(self, index: np.ndarray, nodata: int) -> np.ndarray:
        """Label values (uint16) of class indices; negative indices become `nodata`."""
        values = np.asarray((*self.values, nodata), np.uint16)
        return values[np.where(index < 0, len(self.values), index)]

    def nodata(self) -> int:
        """A label value for 'no class': 0 unless the key uses it, else 65535."""
        return 0 if 0 not in self.values else 65535

    def to_json(self) -> dict:
        data = {"names": list(self.names), "values": list(self.values), "ignore": self.ignore}
        return {**data, "colours": list(self.colours)} if self.colours else data

    @classmethod
    def from_json(cls, data: dict) -> ThemeKey:
        values = tuple(int(v) for v in data["values"])
        return cls(tuple(data["names"]), values, data.get("ignore"), "", tuple(data.get("colours", ())))


def parse_ignore(text: str | int | None) -> int | str | None:
    """An --ignore value: a label value 0-65535, or a colour `#RRGGBB`."""
    if text is None or isinstance(text, int):
        return text
    colour = parse_colour(text)
    if colour is not None and text.strip().startswith("#"):
        return colour
    if text.strip().isdigit() and int(text) <= 65535:
        return int(text)
    raise DataError(f"--ignore {text!r}: expected a label value (0-65535) or a colour such as '#000000'")


def read_key(path: str | Path, ignore: int | str | None = None) -> ThemeKey:
    """Read a key file of `name<TAB>value` or `name<TAB>#RRGGBB` lines (blank lines and # comments
    skipped); a colour key's classes get the values 1..n."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"missing key file {path}: write one `name<TAB>value` (or `name<TAB>#RRGGBB`) line per class"
        )
    names, labels = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, label = _split(line, path, number)
        if label in labels:
            raise DataError(f"{path} line {number}: {label} is used twice")
        if labels and isinstance(label, str) != isinstance(labels[0], str):
            raise DataError(f"{path} line {number}: a key gives every class a value, or every class a colour")
        names.append(name)
        labels.append(label)
    if len(names) < 2:
        raise DataError(f"{path} names {len(names)} class(es): a theme map needs at least two")
    if isinstance(labels[0], str):
        values = tuple(range(1, len(names) + 1))
        return ThemeKey(tuple(names), values, parse_ignore(ignore), str(path), tuple(labels))
    return ThemeKey(tuple(names), tuple(labels), parse_ignore(ignore), str(path))


def _split(line: str, path: Path, number: int) -> tuple[str, int | str]:
    name, _, value = line.rpartition("\t")
    if not name:
        m = _LINE.match(line)
        name, value = (m[1], m[2]) if m else ("", "")
    colour = parse_colour(value) if value.strip().startswith("#") else None
    if name.strip() and colour is not None:
        return name.strip(), colour
    if not name.strip() or not value.strip().isdigit() or int(value) > 65535:
        raise DataError(
            f"{path} line {number}: expected `name<TAB>value` (value 0-65535) "
            f"or `name<TAB>#RRGGBB`, got {line!r}"
        )
    return name.strip(), int(value)
