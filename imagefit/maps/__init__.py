"""Theme maps from aerial tiles: labelled patches, patch classifiers, dense maps, stitching, GeoTIFF."""

from imagefit.lazy import lazy_exports

_EXPORTS = {
    "ThemeKey": "imagefit.maps.key",
    "TileSet": "imagefit.maps.tiles",
    "generate_labelled_patches": "imagefit.maps.patches",
    "load_class_names": "imagefit.maps.patches",
    "load_labelled_patches": "imagefit.maps.patches",
    "map_tile": "imagefit.maps.mapping",
    "map_tiles": "imagefit.maps.batch",
    "read_key": "imagefit.maps.key",
    "train_map": "imagefit.maps.train",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
