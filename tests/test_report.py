"""report.html: self-contained (decodable embedded PNGs, nothing external), numbers equal evaluation.json's,
user strings escaped; written by training, by imagefit evaluate and by imagefit report; learning curves."""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from imagefit.cli import cli
from imagefit.evaluate.curves import learning_curves, stage_spans
from tests.conftest import COLOURS, TINY, make_folder, write_image

ODD = '<i>red&"x"'  # a class name that is also markup


class Page(HTMLParser):
    """What a report holds: every tag's attributes, and numbers of table cells by table id."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.cells: dict[str, list[list[float]]] = {}
        self._table: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs) -> None:
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "table":
            self._table = attrs.get("id")
        elif tag == "tr" and self._table:
            self.cells.setdefault(self._table, []).append([])
        elif tag == "td" and "data-value" in attrs and self._table:
            self.cells[self._table][-1].append(float(attrs["data-value"]))


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def odd_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two classes, one named like markup, with one unreadable validation image."""
    root = tmp_path_factory.mktemp("odd") / "data"
    for split, n in (("train", 6), ("valid", 4)):
        for k, name in enumerate(("blue", ODD)):
            for i in range(n):
                seed = 100 * k + 10 * (split == "valid") + i
                write_image(root / split / name / f"{i}.jpg", COLOURS["blue" if k == 0 else "red"], seed)
    (root / "valid" / "blue" / "broken.jpg").write_bytes(b"not a jpeg")
    return root


@pytest.fixture(scope="module")
def linear_run(odd_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("linear") / "run"
    result = invoke("train", odd_data, "--out", run, *TINY)
    assert result.exit_code == 0, result.output
    assert f"report: {run / 'report.html'}" in result.output
    return run


def _images(page: Page) -> list[Image.Image]:
    out = []
    for tag, attrs in page.tags:
        if tag == "img":
            prefix, payload = attrs["src"].split(",", 1)
            assert prefix == "data:image/png;base64"
            image = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
            image.load()
            assert image.format == "PNG" and min(image.size) > 50
            out.append(image)
    return out


def _assert_self_contained(text: str, page: Page) -> None:
    for tag, attrs in page.tags:
        assert tag not in ("script", "link", "iframe", "object", "embed"), tag
        assert attrs.get("href", "#").startswith("#"), attrs
        assert attrs.get("src", "data:").startswith("data:"), attrs
    assert not re.search(r"https?:|url\(|@import|file:", text)


def test_training_writes_a_self_contained_report(linear_run: Path) -> None:
    text = (linear_run / "report.html").read_text(encoding="utf-8")
    page = Page(text)
    _assert_self_contained(text, page)
    evaluation = json.loads((linear_run / "evaluation" / "evaluation.json").read_text())
    galleries = [g for g in evaluation["galleries"].values() if g["file"]]
    images = _images(page)
    # confusion matrix, galleries, reliability and coverage; a linear run has no learning curves
    assert len(images) == 1 + len(galleries) + 2
    shown = Image.open(linear_run / "evaluation" / "confusion.png")
    assert images[0].size == shown.size and images[0].tobytes() == shown.convert(images[0].mode).tobytes()
    assert not (linear_run / "curves.png").exists() and "has no epochs" in text


def test_report_numbers_equal_evaluation_json(linear_run: Path) -> None:
    page = Page((linear_run / "report.html").read_text(encoding="utf-8"))
    ev = json.loads((linear_run / "evaluation" / "evaluation.json").read_text())
    per_class = [row for row in page.cells["per-class"] if row]
    want = [[s["precision"], s["recall"], s["f1"], s["support"]] for s in ev["per_class"].values()]
    assert per_class == want  # exact: data-value holds repr() of each float
    assert [row[0] for row in page.cells["scores"] if row] == [ev["accuracy"], ev["loss"]]
    assert [row for row in page.cells["confusion-table"] if row] == ev["confusion_matrix"]
    metrics = json.loads((linear_run / "metrics.json").read_text())
    assert next(row for row in page.cells["training-scores"] if row) == [
        metrics["train"]["n"],
        metrics["train"]["loss"],
        metrics["train"]["accuracy"],
    ]


def test_user_strings_are_escaped(linear_run: Path) -> None:
    text = (linear_run / "report.html").read_text(encoding="utf-8")
    assert ODD not in text and "<i>" not in text
    assert text.count("&lt;i&gt;red&amp;&quot;x&quot;") >= 4  # config, header, tables
    page = Page(text)
    assert [attrs["data-class"] for tag, attrs in page.tags if "data-class" in attrs] == [ODD, "blue"]


def test_unreadable_validation_image_is_listed_as_skipped(linear_run: Path) -> None:
    text = (linear_run / "report.html").read_text(encoding="utf-8")
    section = text[text.index('<section id="skipped">') :]
    section = section[: section.index("</section>")]
    assert "1 file(s) could not be read" in section and "broken.jpg" in section


def test_evaluate_and_report_commands_write_the_report(linear_run: Path, odd_data: Path, tmp_path) -> None:
    out = tmp_path / "eval out"
    result = invoke("evaluate", linear_run, odd_data, "--out", out, "--engine", "torch", "-j", "0")
    assert result.exit_code == 0, result.output
    page = Page((out / "report.html").read_text(encoding="utf-8"))
    ev = json.loads((out / "evaluation.json").read_text())
    assert [row[0] for row in page.cells["scores"] if row] == [ev["accuracy"], ev["loss"]]
    (linear_run / "report.html").unlink()
    again = invoke("report", linear_run)
    assert again.exit_code == 0 and (linear_run / "report.html").is_file()
    assert len(_images(Page((linear_run / "report.html").read_text(encoding="utf-8")))) >= 2


def test_scratch_run_report_has_learning_curves(tmp_path: Path) -> None:
    data = make_folder(tmp_path / "data", n_train=6, n_valid=3)
    run = tmp_path / "scratch"
    args = ["train", data, "--strategy", "scratch", "--arch", "conv4@3-pool2-dense8", "--image-size", "24"]
    result = invoke(*args, "--epochs", "3", "--out", run, "-j", "0")
    assert result.exit_code == 0, result.output
    text = (run / "report.html").read_text(encoding="utf-8")
    page = Page(text)
    curves = Image.open(run / "curves.png")
    images = _images(page)
    assert images[0].size == curves.size  # the curves come first, before the evaluation figures
    evaluation = json.loads((run / "evaluation" / "evaluation.json").read_text())
    assert evaluation["split"] == "valid" and evaluation["n"] == 6
    assert "training-details" in page.cells


def test_stage_spans_group_consecutive_epochs() -> None:
    rows = [{"epoch": 1, "stage": "head"}, {"epoch": 2, "stage": "top2"}, {"epoch": 3, "stage": "top2"}]
    assert stage_spans(rows) == [("head", 1, 1), ("top2", 2, 3)]
    assert stage_spans([]) == []


def test_learning_curves_figure(tmp_path: Path) -> None:
    rows = [
        {"epoch": e, "stage": s, "loss": 1 / e, "acc": 0.5 + e / 10, "val_loss": 1.2 / e, "val_acc": None}
        for e, s in ((1, "head"), (2, "top2"), (3, "top2"))
    ]
    path = learning_curves(rows, tmp_path / "c.png")
    image = Image.open(path)
    assert image.format == "PNG" and image.size == (990, 342)  # 11 x 3.8 inches at 90 dpi
    assert learning_curves([], tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()


def test_a_failing_report_does_not_fail_the_finished_run(
    linear_run: Path, odd_data: Path, monkeypatch
) -> None:
    from imagefit.data.folders import discover_dataset
    from imagefit.evaluate import training_report as module
    from imagefit.runs import load

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module, "write_report", fail)
    classifier, dataset = load(linear_run), discover_dataset(odd_data)
    assert module.training_report(linear_run, classifier, dataset, engine="torch", workers=0) is None
    assert (linear_run / "model.safetensors").is_file()
