"""Images paired with their label files: by name across two folders, or from a pairs CSV.

Names pair by a stem pattern `IMAGE=LABEL`, `*` standing for the shared part: `*=*-theme` pairs
`X.jpg` with `X-theme.png`, `*_sat=*_mask` pairs `X_sat.jpg` with `X_mask.png`, `*=*` pairs equal
names. Without a pattern the one that pairs the most images is guessed and reported. A ref is an
image's stem. Images without a label file are listed and left out.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from imagefit.errors import DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
SEPARATORS = "_-. "
SEED_PATTERN = "*=*-theme"


@dataclass(frozen=True)
class Pair:
    """One image and its label file (None when labels come from a vector layer)."""

    ref: str
    image: Path
    labels: Path | None


@dataclass
class Pairing:
    """The pairs found, by ref; the images left without labels; how names were paired."""

    pairs: dict[str, Pair]
    missing: dict[str, Path] = field(default_factory=dict)
    pattern: str = ""

    def warn_missing(self, labels: Path | str) -> None:
        """Log the images that have no label file (they are left out)."""
        if not self.missing:
            return
        names = sorted(p.name for p in self.missing.values())
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        log.warning("%d image(s) have no label file in %s and are left out: %s", len(names), labels, shown)


def image_files(folder: str | Path) -> dict[str, Path]:
    """Raster files of a folder by stem (the first by suffix order when a stem has several)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"folder {folder} does not exist")
    found: dict[str, Path] = {}
    rank = {s: i for i, s in enumerate(IMAGE_SUFFIXES)}
    files = [p for p in folder.iterdir() if p.suffix.lower() in rank and p.is_file()]
    for path in sorted(files, key=lambda p: (p.stem, rank[p.suffix.lower()])):
        found.setdefault(path.stem, path)
    return found


def images_only(folder: str | Path) -> Pairing:
    """Every image of a folder, without label files (labels from a vector layer)."""
    images = image_files(folder)
    if not images:
        raise DataError(f"{folder} holds no image ({', '.join(IMAGE_SUFFIXES)})")
    return Pairing({ref: Pair(ref, path, None) for ref, path in images.items()})


def pair_folders(images: str | Path, labels: str | Path, pattern: str | None = None) -> Pairing:
    """Images of one folder paired by name with label files of another (`pattern`, else guessed)."""
    found, label_files = image_files(images), image_files(labels)
    if not found:
        raise DataError(f"{images} holds no image ({', '.join(IMAGE_SUFFIXES)})")
    if not label_files:
        raise DataError(f"{labels} holds no label file ({', '.join(IMAGE_SUFFIXES)})")
    guessed = pattern is None
    image_part, label_part = _parse_pattern(pattern) if pattern else guess_pattern(found, label_files)
    pairs, missing = {}, {}
    for ref, path in sorted(found.items()):
        stem = _label_stem(ref, image_part, label_part)
        if stem is not None and stem in label_files:
            pairs[ref] = Pair(ref, path, label_files[stem])
        else:
            missing[ref] = path
    text = f"{image_part}={label_part}"
    if not pairs:
        raise DataError(
            f"no label file in {labels} pairs with an image of {images} by the names "
            f"{text} (images e.g. {next(iter(found.values())).name}, labels e.g. "
            f"{next(iter(label_files.values())).name}): pass --label-pattern 'IMAGE=LABEL' "
            "such as '*_sat=*_mask', or a --pairs CSV"
        )
    if guessed:
        log.info("paired %d images with labels by name: %s", len(pairs), text)
    return Pairing(pairs, missing, text)


def guess_pattern(images: dict[str, Path], labels: dict[str, Path]) -> tuple[str, str]:
    """The (image, label) stem patterns that pair the most images with label files."""
    best = (-1, 0, "*", "*")
    for a in _tails(images):
        for b in _tails(labels):
            n = sum(_label_stem(s, f"*{a}", f"*{b}") in labels for s in images)
            best = max(best, (n, -len(a) - len(b), f"*{a}", f"*{b}"))
    return best[2], best[3]


def _tails(stems) -> list[str]:
    """'' and the name endings from a separator on that at least half the stems share."""
    counts = Counter(stem[i:] for stem in stems for i in range(1, len(stem)) if stem[i] in SEPARATORS)
    common = [tail for tail, n in counts.most_common(10) if 2 * n >= len(stems)]
    return ["", *common]


def _parse_pattern(pattern: str) -> tuple[str, str]:
    image, _, label = pattern.partition("=") if "=" in pattern else ("*", "", pattern)
    for part in (image, label):
        if part.count("*") != 1 or not part.startswith("*"):
            raise DataError(
                f"--label-pattern {pattern!r}: expected IMAGE=LABEL name stems, each starting with one *, "
                "such as '*=*-theme' or '*_sat=*_mask'"
            )
    return image, label


def _label_stem(ref: str, image_part: str, label_part: str) -> str | None:
    tail = image_part[1:]
    if not ref.endswith(tail) or len(ref) == len(tail):
        return None
    return ref[: len(ref) - len(tail)] + label_part[1:]


def read_pairs_csv(path: str | Path) -> Pairing:
    """Pairs from a CSV with `image` and `label` columns (paths relative to the CSV's folder)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"pairs file {path} does not exist")
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    columns = set(rows[0]) if rows else set()
    if not {"image", "label"} <= columns:
        raise DataError(f"{path}: expected a header with `image` and `label` columns, got {sorted(columns)}")
    pairs: dict[str, Pair] = {}
    for number, row in enumerate(rows, 2):
        image, labels = (path.parent / row["image"].strip(), path.parent / row["label"].strip())
        for file in (image, labels):
            if not file.is_file():
                raise DataError(f"{path} line {number}: {file} does not exist")
        if image.stem in pairs:
            raise DataError(f"{path} line {number}: {image} has the same name as {pairs[image.stem].image}")
        pairs[image.stem] = Pair(image.stem, image, labels)
    if not pairs:
        raise DataError(f"{path} lists no pair")
    return Pairing(pairs, {}, "pairs file")
