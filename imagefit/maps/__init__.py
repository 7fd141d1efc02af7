"""Theme maps from aerial tiles: labelled patches, patch classifiers, dense maps, stitching, GeoTIFF."""

from imagefit._lazy import lazy_exports

_EXPORTS = {
    "ThemeKey": "imagefit.maps.key",
    "TileSet": "imagefit.maps.tiles",
    "generate_labelled_patches": "imagefit.maps.patches",
    "load_class_names": "imagefit.maps.patches",
    "load_labelled_patches": "imagefit.maps.patches",
    "read_key": "imagefit.maps.key",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
