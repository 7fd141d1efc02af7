"""The ImageNet head answers on its weights' own evaluation preprocessing; features keep theirs."""

from __future__ import annotations

from imagefit.inference.imagenet import imagenet_classifier
from imagefit.models.registry import create_backbone


def test_lite0_imagenet_head_uses_224_px_and_a_0875_centre_crop() -> None:
    classifier = imagenet_classifier("efficientnet_lite0")
    assert classifier.data_config["input_size"] == (3, 224, 224)
    assert classifier.data_config["crop_pct"] == 0.875
    assert classifier.data_config["crop_mode"] == "center"


def test_lite0_features_keep_the_whole_image_at_288_px() -> None:
    backbone = create_backbone("efficientnet_lite0")
    assert backbone.data_config["input_size"] == (3, 288, 288)
    assert backbone.data_config["crop_pct"] == 1.0
    assert backbone.head_data_config["input_size"] == (3, 224, 224)


def test_a_timm_test_size_is_kept_for_the_head() -> None:
    # resnet50's weights record a 288 px test size without crop, which timm evaluates them at
    backbone = create_backbone("resnet50", weights="none")
    assert backbone.head_data_config["input_size"] == (3, 288, 288)
    assert backbone.head_data_config["crop_pct"] == 1.0
