"""Look inside a model: a layer-by-layer summary, first-layer kernels, feature maps."""

from imagefit.explain.summary import LayerRow, ModelSummary, summarize

__all__ = ["LayerRow", "ModelSummary", "summarize"]
