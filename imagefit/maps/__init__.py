"""Theme maps from aerial tiles: labelled patches, patch classifiers, dense maps, stitching, GeoTIFF."""

from imagefit.maps.key import ThemeKey, read_key
from imagefit.maps.mapping import map_tile
from imagefit.maps.patches import generate_labelled_patches, load_class_names, load_labelled_patches
from imagefit.maps.tiles import TileSet
from imagefit.maps.train import train_map

__all__ = [
    "ThemeKey",
    "TileSet",
    "generate_labelled_patches",
    "load_class_names",
    "load_labelled_patches",
    "map_tile",
    "read_key",
    "train_map",
]
