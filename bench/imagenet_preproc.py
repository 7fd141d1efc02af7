"""ImageNet answers on held-out cat and dog photos: features' preprocessing vs the head's own.

    python -m bench.imagenet_preproc [--per-class 100]

The first 100 cats and 100 dogs (sorted by name) of ../shared/data/dogs-vs-cats/valid go through
EfficientNet-Lite0's ImageNet head twice in one run: once with the whole-image 288 px
preprocessing chosen for features (what `imagefit imagenet` used before), once with the weights'
own evaluation preprocessing (224 px, 0.875 centre crop; what it uses now). A top-1 class is in
the right family when it is a dog breed (ImageNet 151-268, Chihuahua..Mexican hairless) for a
dog, a domestic cat (281-285, tabby..Egyptian cat) for a cat. Printed: that rate and the mean
top-1 probability, side by side.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from bench._common import DOGS_CATS, offline_env

FAMILIES = {"dogs": range(151, 269), "cats": range(281, 286)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=100)
    args = parser.parse_args()
    os.environ.update(offline_env())
    from timm.data import ImageNetInfo

    from imagefit.inference.classifier import Classifier
    from imagefit.inference.imagenet import imagenet_classifier

    info = ImageNetInfo()
    for name, family in FAMILIES.items():
        first, last = family[0], family[-1]
        print(
            f"{name}: ImageNet {first}-{last} ({info.index_to_description(first)} .. "
            f"{info.index_to_description(last)})"
        )
    paths, truth = [], []
    for name in FAMILIES:
        files = sorted((DOGS_CATS / "valid" / name).glob("*.jpg"))[: args.per_class]
        paths += files
        truth += [name] * len(files)
    head = imagenet_classifier()
    features = Classifier(head.model, head.classes, _features_config(), head.info)
    print(f"{len(paths)} photos from {DOGS_CATS / 'valid'}")
    print(f"{'preprocessing':<44} {'top-1 in family':>16} {'mean top-1 p':>13}")
    for label, classifier in (("features' (before)", features), ("head's own (now)", head)):
        probs = classifier.predict(paths, cache=False, progress=False).probabilities
        top = probs.argmax(1)
        right = np.mean([t in FAMILIES[f] for t, f in zip(top, truth, strict=True)])
        cfg = classifier.data_config
        desc = f"{label}: {cfg['input_size'][1]} px, crop {cfg['crop_pct']}"
        print(f"{desc:<44} {right:>16.3f} {probs.max(1).mean():>13.3f}")


def _features_config() -> dict:
    from imagefit.models.registry import create_backbone

    return create_backbone().data_config


if __name__ == "__main__":
    main()
