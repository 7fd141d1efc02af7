"""Look inside a model: a layer-by-layer summary, first-layer kernels, feature maps."""

from imagefit.lazy import lazy_exports

_EXPORTS = {
    "LayerRow": "imagefit.explain.summary",
    "ModelSummary": "imagefit.explain.summary",
    "summarize": "imagefit.explain.summary",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
