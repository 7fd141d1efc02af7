"""A hand-made `imagefit audit` folder (audit.csv with kind, path, given, suggested, score, rank)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.conftest import COLOURS, write_image


def make_audit(root: Path, photos: dict[str, Path] | None = None) -> Path:
    """DATA with a few images and AUDIT/audit.csv + audit.json naming them; returns AUDIT."""
    data = root / "data"
    images = {
        "train/red/red_07.jpg": COLOURS["blue"],  # a blue picture filed as red
        "train/blue/blue_03.jpg": COLOURS["blue"],
        "train/blue/odd.jpg": (128, 128, 128),
    }
    for i, (rel, colour) in enumerate(images.items()):
        if photos and rel in photos:
            (data / rel).parent.mkdir(parents=True, exist_ok=True)
            (data / rel).write_bytes(photos[rel].read_bytes())
        else:
            write_image(data / rel, colour, 900 + i, size=(120, 90))
    rows = [
        ("label", "train/red/red_07.jpg", "red", "blue", "0.031", "1"),
        ("label", "train/blue/blue_03.jpg", "blue", "red", "0.204", "2"),
        ("outlier", "train/blue/odd.jpg", "blue", "", "0.12", "1"),
        ("unusable", "train/red/gone.jpg", "red", "", "", "1"),
    ]
    audit = root / "audit"
    audit.mkdir()
    with open(audit / "audit.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["kind", "path", "given", "suggested", "score", "rank"])
        writer.writerows(rows)
    settings = {"data": str(data), "classes": ["blue", "red"], "counts": {"label": 2, "outlier": 1}}
    (audit / "audit.json").write_text(json.dumps(settings))
    return audit
