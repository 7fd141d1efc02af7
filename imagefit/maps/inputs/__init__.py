"""What maps are made from: images with label rasters or a vector layer, the key, the tiles to map.

`tileset.TileSet` gathers labelled tiles for training (from `pairs`, `labels`, `vector`, `key`,
`colours`, all read through `rasters`); `sources` expands the tiles a map command names.
"""
