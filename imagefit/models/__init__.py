"""Backbones: which timm architecture, which weights, which preprocessing."""

from imagefit.lazy import lazy_exports

_EXPORTS = {
    "Backbone": "imagefit.models.registry",
    "BackboneSpec": "imagefit.models.registry",
    "available_backbones": "imagefit.models.registry",
    "create_backbone": "imagefit.models.registry",
    "get_spec": "imagefit.models.registry",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
