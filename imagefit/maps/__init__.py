"""Theme maps from aerial tiles: labelled patches, patch classifiers, dense maps, stitching, GeoTIFF."""

from imagefit.maps.key import ThemeKey, read_key
from imagefit.maps.patches import generate_labelled_patches, load_class_names, load_labelled_patches
from imagefit.maps.tiles import TileSet

__all__ = [
    "ThemeKey",
    "TileSet",
    "generate_labelled_patches",
    "load_class_names",
    "load_labelled_patches",
    "read_key",
]
