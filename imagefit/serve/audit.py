"""An `imagefit audit` folder for review in the browser: its findings, and thumbnails by number.

audit.csv has one row per finding: kind, path, given, suggested, score, rank. Relative paths are
taken from the dataset root that audit.json names ("data"), else from the audit folder. A
thumbnail is asked for by the finding's number, so a request never names a path to read.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from functools import lru_cache
from pathlib import Path

from imagefit.data.images import ImageReadError, open_image
from imagefit.errors import DataError

log = logging.getLogger(__name__)

COLUMNS = ("kind", "path", "given", "suggested", "score", "rank")
ACTIONS = ("keep", "relabel", "remove")
THUMB = 192


class AuditFolder:
    """The findings of one audit, and the images they name."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        table = self.folder / "audit.csv"
        if not table.is_file():
            raise DataError(f"{self.folder} holds no audit.csv: give a folder written by imagefit audit")
        self.settings = _read_json(self.folder / "audit.json")
        self.findings = _read_findings(table)
        self.root = Path(self.settings.get("data") or self.folder)
        self.thumbnail = lru_cache(maxsize=512)(self._thumbnail)

    def labels(self, model_classes: list[str]) -> list[str]:
        """Labels a finding may be relabelled to: the audit's classes, else those seen, and the model's."""
        named = self.settings.get("classes") or []
        seen = {f[c] for f in self.findings for c in ("given", "suggested") if f[c] and "/" not in f[c]}
        return sorted(set(named) | seen | set(model_classes))

    def describe(self, model_classes: list[str]) -> dict:
        """What /audit/findings answers: the findings, numbered, with the labels to choose from."""
        return {
            "folder": self.folder.name,
            "labels": self.labels(model_classes),
            "actions": list(ACTIONS),
            "findings": [{"id": i, **f} for i, f in enumerate(self.findings)],
        }

    def image_path(self, number: int) -> Path:
        """The image of finding `number` (KeyError for a number audit.csv does not have)."""
        if not 0 <= number < len(self.findings):
            raise KeyError(number)
        path = Path(self.findings[number]["path"])
        return path if path.is_absolute() else self.root / path

    def _thumbnail(self, number: int) -> bytes:
        """A JPEG of finding `number`'s image, at most THUMB pixels a side."""
        picture = open_image(self.image_path(number), min_size=THUMB)
        picture.thumbnail((THUMB, THUMB))
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=85)
        return out.getvalue()


def _read_findings(table: Path) -> list[dict]:
    with open(table, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("kind", "path") if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{table} lacks the column(s) {', '.join(missing)}: is it an audit.csv?")
        rows = [{c: (row.get(c) or "").strip() for c in COLUMNS} for row in reader]
    return rows  # in the audit's order: each kind worst first


def _read_json(path: Path) -> dict:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    settings = raw.get("settings") if isinstance(raw.get("settings"), dict) else {}
    return {**settings, **raw} if isinstance(raw, dict) else {}


def thumbnail_or_none(audit: AuditFolder, number: int) -> bytes | None:
    """The thumbnail, or None when the image is gone or does not decode (it may be an unusable file)."""
    try:
        return audit.thumbnail(number)
    except ImageReadError as exc:
        log.info("no thumbnail for finding %d: %s", number, exc)
        return None
