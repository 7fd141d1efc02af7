"""What a map becomes: the `ThemeMap` itself, its GeoTIFF with legend, pictures, polygons, areas,
metrics against labels, and the VRT mosaic of many maps."""
