"""Mapping with a trained model: the dense networks and engines that give a window's logits, a
region of a raster mapped window by window (stitched or blended), a tile, and many tiles."""
