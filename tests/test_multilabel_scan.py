"""The scan and `imagefit check` of a multi-label table: labels per image, images per label, bare images."""

from __future__ import annotations

import csv
from pathlib import Path

from click.testing import CliRunner

from imagefit.cli import cli
from imagefit.data.scan import scan_dataset
from imagefit.data.sources import read_dataset
from tests.conftest import COLOURS, write_image


def _table(root: Path) -> Path:
    """Train: blue on 8 images (2 with red too), green on 3, red on 2, 2 images with no label."""
    sets = [("blue",)] * 6 + [("blue", "red")] * 2 + [("green",)] * 3 + [()] * 2
    rows = [["image_name", "tags", "split"]]
    for i, labels in enumerate(sets):
        write_image(root / f"t{i:02d}.png", COLOURS[labels[0]] if labels else (128, 128, 128), i, (20, 20))
        rows.append([f"t{i:02d}.png", " ".join(labels), "train"])
    for i, labels in enumerate([("blue", "green"), ("red",), ("green",)]):
        write_image(root / f"v{i}.png", COLOURS[labels[0]], 50 + i, (20, 20))
        rows.append([f"v{i}.png", " ".join(labels), "valid"])
    with open(root / "tags.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return root / "tags.csv"


def test_the_scan_speaks_of_labels_per_image_and_images_per_label(tmp_path: Path) -> None:
    dataset = read_dataset(_table(tmp_path))
    assert dataset.multilabel
    scan = scan_dataset(dataset)
    summary = scan.summary()
    assert (
        "labels per image in train: 1.00 on average (0 to 2); images per label: 2 (red) to 8 (blue); "
        "2 image(s) with no label"
    ) in summary  # 13 labels on 13 images
    (warning,) = [w for w in scan.warnings() if "imbalance" in w]
    assert warning.startswith("label imbalance in train: blue is on 8 images, red on 2 (4.0 : 1)")
    assert "class imbalance" not in " ".join(scan.warnings())


def test_check_takes_a_table_and_reports_its_broken_images_and_labels(tmp_path: Path) -> None:
    table = _table(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["check", str(table)])
    assert result.exit_code == 0, result.output
    assert "warning label imbalance in train: blue is on 8 images" in result.output
    assert "16 image files checked; 0 unusable" in result.output
    (tmp_path / "t03.png").write_bytes(b"not a picture")
    broken = runner.invoke(cli, ["check", str(table)])
    assert broken.exit_code == 3
    assert f"{tmp_path / 't03.png'}: error" in broken.output
