"""Inference: classifiers that predict on files, and ImageNet top-k."""

from imagefit.inference.classifier import Classifier, Predictions, collect_inputs
from imagefit.inference.imagenet import imagenet

__all__ = ["Classifier", "Predictions", "collect_inputs", "imagenet"]
