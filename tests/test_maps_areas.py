"""Hectares of theme maps in projected and geographic CRSs: raster cells and polygons agree."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import from_origin

from imagefit.maps.inputs.key import ThemeKey
from imagefit.maps.outputs.areas import band_area, class_areas, ellipsoid, polygon_hectares

WGS84_AXES = (6378137.0, 298.257223563)
KEY = ThemeKey(("Building", "Land", "Water"), (1000, 2000, 3000))


def _blobs(shape=(120, 160), seed=0) -> np.ndarray:
    """A class map of smooth blobs (classes 0-2) with a strip of no data (-1)."""
    rng = np.random.default_rng(seed)
    field = rng.normal(size=(shape[0] // 8, shape[1] // 8)).repeat(8, 0).repeat(8, 1)
    index = np.digitize(field, [-0.4, 0.4]).astype(np.int16)
    index[:, :5] = -1
    return index


def _polygons(index: np.ndarray, transform) -> tuple[np.ndarray, np.ndarray]:
    import shapely
    from rasterio import features

    shapes = list(features.shapes(index, mask=index >= 0, connectivity=4, transform=transform))
    return np.array([shapely.geometry.shape(g) for g, _ in shapes]), np.array([int(v) for _, v in shapes])


def test_the_ellipsoid_of_a_crs_is_read_from_its_definition():
    assert ellipsoid(CRS.from_epsg(4326)) == pytest.approx(WGS84_AXES)
    assert ellipsoid(CRS.from_epsg(4230))[1] == pytest.approx(297.0)  # ED50: the international ellipsoid


def test_band_areas_add_up_to_the_whole_ellipsoid_and_to_a_sphere_formula():
    whole = band_area(np.array([-math.pi / 2]), np.array([math.pi / 2]), 2 * math.pi, WGS84_AXES)
    assert whole[0] / 1e6 == pytest.approx(510_065_621.7, rel=1e-9)  # WGS 84's surface in km2
    edges = np.radians(np.linspace(-90, 90, 181))
    bands = band_area(edges[:-1], edges[1:], 2 * math.pi, WGS84_AXES)
    assert bands.sum() == pytest.approx(whole[0], rel=1e-12) and bands[90] > bands[0] * 50
    r = 6_371_000.0
    sphere = band_area(np.radians([10.0]), np.radians([11.0]), math.radians(1), (r, 0.0))
    assert sphere[0] == pytest.approx(
        r * r * math.radians(1) * (math.sin(math.radians(11)) - math.sin(math.radians(10)))
    )


def test_a_geographic_map_gets_hectares_per_row_that_its_polygons_match():
    index = _blobs()
    transform = from_origin(55.2, 25.3, 0.0001, 0.0001)  # degrees: about 10 m cells near Dubai
    crs = CRS.from_epsg(4326)
    table = class_areas(index, KEY, transform, crs)
    assert table.hectares is not None and table.why == ""
    geometry, classes = _polygons(index, transform)
    hectares = polygon_hectares(geometry, crs)
    for k in range(3):
        assert hectares[classes == k].sum() == pytest.approx(table.hectares[k], rel=1e-3)
    # near 25.3 N a cell of 1e-4 degrees is about 10.06 m (east) by 11.07 m (north)
    cell = table.hectares.sum() / table.pixels.sum()
    assert cell * 1e4 == pytest.approx(10.06 * 11.07, rel=0.005)


def test_the_same_ground_in_utm_and_in_degrees_has_the_same_hectares():
    from rasterio.warp import transform as reproject_points

    utm = CRS.from_epsg(32640)
    index = _blobs(seed=1)
    projected = class_areas(index, KEY, from_origin(330_000, 2_800_000, 10, 10), utm)
    geometry, classes = _polygons(index, from_origin(330_000, 2_800_000, 10, 10))
    import shapely

    def to_degrees(xy):
        xs, ys = reproject_points(utm, "EPSG:4326", xy[:, 0], xy[:, 1])
        return np.column_stack([xs, ys])

    in_degrees = polygon_hectares(shapely.transform(geometry, to_degrees), CRS.from_epsg(4326))
    for k in range(3):
        # UTM's scale factor near its zone's edge (0.9996..1.0004) is all that separates the two
        assert in_degrees[classes == k].sum() == pytest.approx(projected.hectares[k], rel=2e-3)


def test_a_rotated_geographic_grid_says_why_it_has_no_hectares():
    from affine import Affine

    table = class_areas(
        _blobs(), KEY, Affine(0.0001, 0.00002, 55.2, 0.00002, -0.0001, 25.3), CRS.from_epsg(4326)
    )
    assert table.hectares is None and "rotated" in table.why and table.pixels.sum() > 0


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:27700"])
def test_unsure_pixels_have_their_own_row_and_the_classes_keep_theirs(crs):
    from imagefit.maps.outputs.theme_map import UNSURE

    index = _blobs()
    geographic = crs == "EPSG:4326"
    transform = from_origin(-1.5, 52.0, 0.001, 0.001) if geographic else from_origin(440000, 110000, 2, 2)
    unsure = index.copy()
    unsure[40:80, 60:100][index[40:80, 60:100] == 1] = UNSURE  # some Land left unsure
    every = class_areas(index, KEY, transform, CRS.from_user_input(crs))
    table = class_areas(unsure, KEY, transform, CRS.from_user_input(crs), unsure=True)
    n = int((unsure == UNSURE).sum())
    assert n > 100 and table.unsure_pixels == n and every.unsure is None
    assert table.pixels.tolist() == [every.pixels[0], every.pixels[1] - n, every.pixels[2]]
    assert table.hectares.sum() + table.unsure[1] == pytest.approx(every.hectares.sum())
    rows = table.rows()
    assert rows[-1]["class"] == "unsure" and rows[-1]["pixels"] == n
    assert sum(r["share"] for r in rows) == pytest.approx(1, abs=1e-5)
    assert (table + table).unsure_pixels == 2 * n
