"""Kaggle submissions (ids, ordering, clipping, positive class); test-time augmentation averages views."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from imagefit.cli import cli
from imagefit.data import iterate_batches
from imagefit.errors import DataError, OptionError
from imagefit.features.engines import OnnxEngine, TorchEngine
from imagefit.features.layers import VIEWS, Embedding, apply_view
from imagefit.inference.classifier import Predictions, tta_views
from imagefit.inference.submission import Submission, submission_id, write_submission
from imagefit.runs import load
from tests.conftest import COLOURS, TINY, TINY_MODEL, make_folder, write_image

PLAIN = {"engine": "torch", "workers": 0, "progress": False}


def _preds(names: list[str], p_dog: list[float]) -> Predictions:
    probs = np.array([[1 - p, p] for p in p_dog], np.float32)
    return Predictions(["cats", "dogs"], [Path("test") / n for n in names], probs)


def test_ids_are_numbers_of_numeric_names_else_stems() -> None:
    assert submission_id("a/1234.jpg") == 1234
    assert submission_id("0042.png") == 42
    assert submission_id("cat.12.jpg") == "cat.12"
    assert submission_id("١٢.jpg") == "١٢"  # Arabic-Indic digits are not an ASCII number


def test_rows_are_sorted_by_numeric_id_and_clipped() -> None:
    preds = _preds(["10.jpg", "2.jpg", "b.jpg", "1.jpg", "a.jpg"], [0.999, 0.5, 0.2, 0.001, 0.97])
    rows = Submission(preds.classes).rows(preds)
    assert [r[0] for r in rows] == [1, 2, 10, "a", "b"]  # 10 after 2: numeric, not text order
    assert [r[1] for r in rows] == pytest.approx([0.025, 0.5, 0.975, 0.97, 0.2])


def test_positive_class_and_clip_are_configurable() -> None:
    preds = _preds(["1.jpg", "2.jpg"], [0.999, 0.3])
    cats = Submission(preds.classes, positive="cats", clip=(0.0, 1.0)).rows(preds)
    assert cats == [(1, pytest.approx(0.001, abs=1e-6)), (2, pytest.approx(0.7))]
    assert Submission(preds.classes, clip=(0.1, 0.9)).rows(preds) == [(1, 0.9), (2, pytest.approx(0.3))]
    assert Submission(["dogs", "cats"]).positive == "dogs"  # the second in sorted order


@pytest.mark.parametrize(
    "classes, options, message",
    [
        (["a", "b", "c"], {}, "say which one"),
        (["a", "b"], {"positive": "z"}, "not a class"),
        (["a", "b"], {"clip": (0.9, 0.1)}, "LO < HI"),
        (["a", "b"], {"clip": (-0.1, 0.9)}, "LO < HI"),
    ],
)
def test_bad_submission_options_are_option_errors(classes, options, message) -> None:
    with pytest.raises(OptionError, match=message):
        Submission(classes, **options)


def test_duplicate_ids_are_a_data_error(tmp_path: Path) -> None:
    preds = Predictions(["cats", "dogs"], [Path("x/1.jpg"), Path("y/1.png")], np.full((2, 2), 0.5))
    with pytest.raises(DataError, match="one image per id"):
        write_submission(preds, tmp_path / "s.csv")
    assert not (tmp_path / "s.csv").exists()


def test_submission_file_text(tmp_path: Path) -> None:
    path = write_submission(_preds(["3.jpg", "1.jpg"], [0.5, 0.9999]), tmp_path / "s.csv")
    assert path.read_text().splitlines() == ["id,label", "1,0.975", "3,0.5"]


def test_views_mirror_and_zoom_the_corners() -> None:
    x = torch.arange(64.0).reshape(1, 1, 8, 8)
    assert torch.equal(apply_view(x, "mirror"), x.flip(-1))
    assert torch.equal(apply_view(x, "image"), x)
    for view, (r, c) in {"crop-tl": (0, 0), "crop-tr": (0, 7), "crop-bl": (7, 0), "crop-br": (7, 7)}.items():
        out = apply_view(x, view)
        assert out.shape == x.shape and out[0, 0, r, c] == x[0, 0, r, c]  # the corner stays put
    centre = apply_view(x, "crop-br")[0, 0]
    assert centre.min() > x[0, 0, 0, 0] + 8  # the first row and column are cut away
    assert (
        tta_views(True) == ("image", "mirror")
        and tta_views("crops") == VIEWS
        and tta_views(False) == ("image",)
    )
    with pytest.raises(OptionError):
        tta_views("sideways")


@pytest.fixture(scope="module")
def run_and_images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("sub")
    data = make_folder(root / "data", n_train=4, n_valid=2)
    run = root / "run"
    result = CliRunner().invoke(cli, ["train", str(data), "--out", str(run), *TINY], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    test = root / "test"
    for i, name in enumerate(
        ("blue", "red", "red", "blue", "red", "blue", "blue", "red", "red", "blue", "red")
    ):
        write_image(test / f"{i + 1}.jpg", COLOURS[name], seed=500 + i, size=(56, 40))
    return run, test


def _by_hand(run: Path, folder: Path, views: tuple[str, ...]) -> np.ndarray:
    """Mean over views of softmax(model(view(x))), straight through the torch model."""
    classifier = load(run)
    files = sorted(folder.glob("*.jpg"))
    batch = next(iterate_batches(files, classifier.data_config, batch_size=len(files), workers=0))
    with torch.no_grad():
        probs = [classifier.model(apply_view(batch.images, v)).softmax(-1).numpy() for v in views]
    return np.mean(probs, axis=0)


@pytest.mark.parametrize("tta", ["flip", "crops"])
def test_tta_is_the_mean_of_the_views_probabilities(run_and_images, tta) -> None:
    run, folder = run_and_images
    got = load(run).predict([folder], tta=tta, **PLAIN)
    want = _by_hand(run, folder, tta_views(tta))
    assert [p.name for p in got.paths] == sorted(p.name for p in folder.glob("*.jpg"))
    np.testing.assert_allclose(got.probabilities, want, atol=1e-5)
    plain = load(run).predict([folder], **PLAIN).probabilities

    def logit(p: np.ndarray) -> np.ndarray:
        """log p of each image's less likely class: exact in float32 where 1 - p is not (a confident head)."""
        return np.log(np.clip(p.astype(np.float64).min(1), 1e-30, None))

    assert np.abs(logit(got.probabilities) - logit(want)).max() < 0.05
    assert np.abs(logit(plain) - logit(want)).max() > 0.05  # the views do change the prediction


def test_crop_view_exports_to_onnx_alike(tmp_path: Path) -> None:
    import timm

    model = timm.create_model(TINY_MODEL, num_classes=2).eval()
    x = torch.rand(2, 3, 64, 64)
    net = Embedding(model, view="crop-tr")
    onnx = OnnxEngine(net, (3, 64, 64), tmp_path / "crop.onnx")
    np.testing.assert_allclose(onnx(x), TorchEngine(net, torch.device("cpu"))(x), atol=1e-4)


def test_predict_writes_a_submission_end_to_end(run_and_images, tmp_path: Path) -> None:
    run, folder = run_and_images
    sub, table = tmp_path / "sub.csv", tmp_path / "all.csv"
    args = [
        "predict",
        run,
        folder,
        "--submission",
        sub,
        "--csv",
        table,
        "--tta",
        "--engine",
        "torch",
        "-j",
        "0",
    ]
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(sub.open()))
    assert rows[0] == ["id", "label"] and [int(r[0]) for r in rows[1:]] == list(range(1, 12))
    p_red = {int(Path(r["path"]).stem): float(r["p_red"]) for r in csv.DictReader(table.open())}
    for key, label in rows[1:]:
        assert float(label) == pytest.approx(min(max(p_red[int(key)], 0.025), 0.975), abs=1e-5)
    want = _by_hand(run, folder, ("image", "mirror"))[:, 1]
    order = sorted(folder.glob("*.jpg"))
    assert [p_red[int(p.stem)] for p in order] == pytest.approx(want.tolist(), abs=1e-5)


def test_submission_option_errors_come_before_predicting(run_and_images, tmp_path: Path) -> None:
    run, folder = run_and_images
    for extra in (["--positive", "green"], ["--clip", "0.5", "0.5"]):
        args = ["predict", str(run), str(folder), "--submission", str(tmp_path / "s.csv"), *extra]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2 and result.output.count("\n") == 1 and "Traceback" not in result.output
        assert not (tmp_path / "s.csv").exists()
