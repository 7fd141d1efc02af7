"""load(run).predict on images held in memory: PIL images, NumPy arrays and encoded bytes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagefit.data.images import ImageReadError
from imagefit.data.memory import picture
from imagefit.errors import OptionError
from imagefit.runs import load
from tests._serve import tiny_run


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return load(tiny_run(tmp_path_factory.mktemp("memory")))


@pytest.fixture(scope="module")
def photo_files(classifier) -> list[Path]:
    data = Path(classifier.info["run"]).parent / "data" / "valid"
    return [sorted((data / c).glob("*.jpg"))[0] for c in ("blue", "red")]


def test_memory_inputs_predict_like_their_files(classifier, photo_files) -> None:
    from_files = classifier.predict(photo_files, engine="torch", progress=False)
    raw = [p.read_bytes() for p in photo_files]
    pil = [Image.open(io.BytesIO(b)) for b in raw]
    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in photo_files]
    for items in (raw, pil, arrays):
        preds = classifier.predict(items, engine="torch")
        assert preds.labels == from_files.labels == ["blue", "red"]
        np.testing.assert_allclose(preds.probabilities, from_files.probabilities, atol=1e-4)


def test_one_image_alone_and_names(classifier, photo_files) -> None:
    image = Image.open(photo_files[1])
    single = classifier.predict(image, engine="torch")
    assert single.labels == ["red"] and len(single.paths) == 1
    named = classifier.predict_images([image], names=["upload.jpg"], engine="torch")
    assert [p.name for p in named.paths] == ["upload.jpg"]


def test_bad_memory_items_are_reported_not_fatal(classifier, photo_files) -> None:
    items = [b"", b"not a picture", np.zeros((4, 4, 7)), photo_files[0].read_bytes()]
    preds = classifier.predict_images(items, engine="torch")
    assert preds.labels == ["blue"] and [p.name for p in preds.paths] == ["image 3"]
    reasons = [reason for _, reason in preds.errors]
    assert "empty" in reasons[0] and "not an image" in reasons[1] and "shape" in reasons[2]


def test_tta_needs_files(classifier) -> None:
    with pytest.raises(OptionError, match="files"):
        classifier.predict(np.zeros((8, 8, 3), np.uint8), tta=True)


def test_picture_converts_arrays_and_checks_pixels() -> None:
    grey16 = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000
    rgb = picture(grey16)
    assert rgb.mode == "RGB" and rgb.size == (4, 3)
    assert np.asarray(rgb)[0, 0, 0] == 0 and np.asarray(rgb)[-1, -1, 0] == 255
    rgba = np.zeros((2, 2, 4), np.uint8)
    assert picture(rgba).getpixel((0, 0)) == (255, 255, 255)  # transparent on white
    with pytest.raises(ImageReadError, match="pixels") as err:
        picture(np.zeros((100, 100, 3), np.uint8), "big", limit=5000)
    assert err.value.kind == "too-large"
