"""Features: pre-logits embeddings of images, extracted fast and cached by file content."""

from imagefit.lazy import lazy_exports

_EXPORTS = {
    "FeatureCache": "imagefit.features.cache",
    "FeatureExtractor": "imagefit.features.extract",
    "Features": "imagefit.features.extract",
    "cache_root": "imagefit.features.cache",
    "make_engine": "imagefit.features.engines",
    "model_key": "imagefit.features.cache",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
