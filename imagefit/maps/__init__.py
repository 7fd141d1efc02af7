"""Theme maps from aerial tiles, in the order of the pipeline.

`inputs/` reads labelled tiles and keys; `training/` trains patch classifiers and decoders on them
(map-train); `mapping/` runs a trained model densely over a region, a tile or many tiles; `outputs/`
writes what a map becomes (GeoTIFF, pictures, polygons, areas, metrics, mosaic).
"""

from imagefit.lazy import lazy_exports

_EXPORTS = {
    "ThemeKey": "imagefit.maps.inputs.key",
    "TileSet": "imagefit.maps.inputs.tileset",
    "generate_labelled_patches": "imagefit.maps.training.patches",
    "load_class_names": "imagefit.maps.training.patches",
    "load_labelled_patches": "imagefit.maps.training.patches",
    "map_tile": "imagefit.maps.mapping.tile",
    "map_tiles": "imagefit.maps.mapping.many_tiles",
    "read_key": "imagefit.maps.inputs.key",
    "train_map": "imagefit.maps.training.map_train",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
