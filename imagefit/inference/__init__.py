"""Inference: classifiers that predict on files, and ImageNet top-k."""

from imagefit.inference.classifier import Classifier, Predictions
from imagefit.inference.imagenet import imagenet
from imagefit.inference.submission import Submission, write_submission

__all__ = ["Classifier", "Predictions", "Submission", "imagenet", "write_submission"]
