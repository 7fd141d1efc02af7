"""Backbones: which timm architecture, which weights, which preprocessing."""

from imagefit.models.registry import (
    Backbone,
    BackboneSpec,
    available_backbones,
    create_backbone,
    get_spec,
)

__all__ = ["Backbone", "BackboneSpec", "available_backbones", "create_backbone", "get_spec"]
