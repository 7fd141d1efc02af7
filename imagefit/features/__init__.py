"""Features: pre-logits embeddings of images, extracted fast and cached by file content."""

from imagefit.features.cache import FeatureCache, cache_root, model_key
from imagefit.features.engines import make_engine
from imagefit.features.extract import FeatureExtractor, Features

__all__ = [
    "FeatureCache",
    "FeatureExtractor",
    "Features",
    "cache_root",
    "make_engine",
    "model_key",
]
