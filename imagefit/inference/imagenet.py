"""Top-k ImageNet classes of images, from any backbone with an ImageNet head."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from timm.data import ImageNetInfo

from imagefit.errors import ModelError
from imagefit.inference.classifier import Classifier
from imagefit.models.registry import DEFAULT_BACKBONE, create_backbone


def imagenet_classifier(model: str = DEFAULT_BACKBONE, weights: str | Path = "auto") -> Classifier:
    """A Classifier over the 1,000 ImageNet classes (WordNet ids as class names)."""
    backbone = create_backbone(model, weights)
    if backbone.model.num_classes != 1000:
        raise ModelError(f"{model} has {backbone.model.num_classes} outputs, not the 1,000 of ImageNet")
    info = ImageNetInfo()
    wnids = [info.index_to_label_name(i) for i in range(1000)]
    meta = {"backbone": backbone.spec.name, "arch": backbone.spec.arch, "weights": backbone.weights}
    # The head answers best on the preprocessing it was evaluated with (224 px, 0.875 crop for
    # Lite0), not on the whole-image 288 px chosen for features.
    return Classifier(backbone.model, wnids, backbone.head_data_config, meta)


def imagenet(
    images: Iterable[str | os.PathLike],
    model: str = DEFAULT_BACKBONE,
    weights: str | Path = "auto",
    top: int = 5,
    **extract_options,
) -> list[dict]:
    """For each image in input order: {"path", "predictions": [{index, wnid, name, probability}]}."""
    classifier = imagenet_classifier(model, weights)
    extract_options.setdefault("cache", False)
    preds = classifier.predict(images, **extract_options)
    info = ImageNetInfo()
    results = []
    for path, probs in zip(preds.paths, preds.probabilities, strict=True):
        order = np.argsort(-probs)[:top]
        results.append(
            {
                "path": str(path),
                "predictions": [
                    {
                        "index": int(i),
                        "wnid": info.index_to_label_name(int(i)),
                        "name": info.index_to_description(int(i)),
                        "probability": round(float(probs[i]), 6),
                    }
                    for i in order
                ],
            }
        )
    return results
