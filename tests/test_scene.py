"""Zones: the vectorized point-in-polygon agrees with OpenCV, and anchors choose the point."""

from __future__ import annotations

import cv2
import numpy as np

from vision.geometry import points_in_polygon
from vision.scene.zones import Zone
from vision.types import Detections


def test_points_in_polygon_matches_opencv() -> None:
    rng = np.random.default_rng(7)
    polygon = np.array([[10, 10], [200, 30], [150, 120], [220, 200], [20, 180], [60, 90]], np.float32)
    points = rng.uniform(0, 230, size=(2000, 2)).astype(np.float32)
    ours = points_in_polygon(points, polygon)
    theirs = np.array([cv2.pointPolygonTest(polygon, (float(x), float(y)), True) for x, y in points])
    clear = np.abs(theirs) > 1e-3  # points on an edge may go either way
    np.testing.assert_array_equal(ours[clear], theirs[clear] > 0)


def test_points_in_polygon_from_cached_edges_is_the_plain_ray_casting() -> None:
    """The ray casting from a polygon's cached edges (a zone's and a mask's, per frame size) answers
    as the plain vectorized one (the code before), point for point: on points off, on and across the
    edges, on corners and on horizontal edges, for float32 pixels (zones) and float64 ones (masks)."""

    def plain(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
        x, y = points[:, 0][:, None], points[:, 1][:, None]
        following = np.concatenate([polygon[1:], polygon[:1]])
        x0, y0, x1, y1 = polygon[:, 0], polygon[:, 1], following[:, 0], following[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        return (((y0 > y) != (y1 > y)) & (x < x_cross)).sum(axis=1) % 2 == 1

    rng = np.random.default_rng(15)
    square = [[10, 10], [200, 10], [200, 120], [10, 120]]  # two horizontal edges
    for dtype in (np.float32, np.float64):
        for polygon in (np.array(square, dtype), rng.uniform(0, 230, (7, 2)).astype(dtype)):
            points = rng.uniform(0, 230, (500, 2)).astype(np.float32)
            corners = np.concatenate([polygon, (polygon + np.roll(polygon, 1, axis=0)) / 2]).astype(
                np.float32
            )
            for pts in (points, corners, np.round(points / 10) * 10, points[:0]):
                np.testing.assert_array_equal(points_in_polygon(pts, polygon), plain(pts, polygon))
    zone = Zone("square", np.array(square, np.float64) / 230)
    points = rng.uniform(0, 230, (300, 2)).astype(np.float32)
    np.testing.assert_array_equal(zone.inside(points, 230, 230), plain(points, zone.pixels(230, 230)))


def test_anchors_filled_by_columns_are_the_stacked_ones() -> None:
    """anchors_of fills its two columns in place: the same float32 points, bit for bit, as stacking the
    centre and the bottom (or middle) computed from the box's columns (the code before), and none of
    no boxes."""
    from vision.geometry import anchors_of

    xyxy = (np.random.default_rng(16).random((50, 4)) * 1000).astype(np.float32)
    x1, y1, x2, y2 = xyxy.T
    cx = (x1 + x2) * 0.5
    for kind, expected in (
        ("bottom_center", np.stack([cx, y2], 1)),
        ("center", np.stack([cx, (y1 + y2) * 0.5], 1)),
    ):
        ours = anchors_of(xyxy, kind)
        assert ours.dtype == expected.dtype and ours.tobytes() == expected.tobytes()
        assert anchors_of(xyxy[:0], kind).shape == (0, 2)


def test_zone_uses_bottom_center_anchor_in_pixels() -> None:
    zone = Zone("ground", np.array([[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]))
    # a person standing with feet inside the lower half, head in the upper half: inside
    # a person entirely in the upper half: outside
    dets = Detections.from_arrays(
        np.array([[100, 100, 140, 400], [300, 20, 340, 200]]), np.array([0.9, 0.8]), np.array([0, 0])
    )
    np.testing.assert_array_equal(zone.contains(dets, 640, 480), [True, False])
    center = Zone("ground", zone.polygon, anchor="center")  # centre (120, 250) is just inside y >= 240
    np.testing.assert_array_equal(center.contains(dets, 640, 480), [True, False])
    # the same normalized zone at another resolution scales with the frame
    np.testing.assert_array_equal(zone.contains(dets, 1280, 960), [False, False])


def test_ground_plane_area_of_a_known_rectangle() -> None:
    from vision.scene.calibration import GroundPlane

    # a 10 m x 4 m rectangle on the ground seen in perspective (farther edge shorter)
    image = np.array([[0.3, 0.4], [0.7, 0.4], [0.9, 0.9], [0.1, 0.9]])
    world = np.array([[0, 0], [10, 0], [10, 4], [0, 4]])
    ground = GroundPlane(image, world)
    np.testing.assert_allclose(ground.to_world(image), world, atol=1e-6)
    assert abs(ground.area_m2(image) - 40.0) < 1e-4
    # the nearer half of the trapezoid's height covers less ground than the farther half
    near = np.array([[0.2, 0.65], [0.8, 0.65], [0.9, 0.9], [0.1, 0.9]])
    assert 10 < ground.area_m2(near) < 20


def test_masks_drop_detections_and_rasterize() -> None:
    from vision.scene.masks import Masks

    road = Masks([np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.3], [0.0, 0.3]])])
    dets = Detections.from_arrays(
        np.array([[10, 10, 50, 100], [10, 10, 50, 200]]), np.array([0.9, 0.9]), np.array([2, 0])
    )
    # feet at y = 100 and 200 px; the road is the top 30% of the picture
    np.testing.assert_array_equal(road.outside(dets, 640, 480), [False, True])
    np.testing.assert_array_equal(road.outside(dets, 640, 480 * 3), [False, False])
    np.testing.assert_array_equal(road.outside(dets, 640, 240), [True, True])
    raster = road.raster(100, 100)
    assert raster[10, 50] == 255 and raster[50, 50] == 0 and raster.dtype == np.uint8


def test_heatmap_decays_with_stream_time_and_renders() -> None:
    from vision.scene.heatmap import Heatmap

    heat = Heatmap(half_life=10.0, columns=10, rows=10)
    heat.add(np.array([[5.0, 5.0], [5.0, 5.0]]), 100, 100, pts=0.0)
    assert heat.grid[0, 0] == 2.0
    heat.add(np.zeros((0, 2)), 100, 100, pts=10.0)
    assert abs(heat.grid[0, 0] - 1.0) < 1e-6
    heat.add(np.array([[95.0, 95.0]]), 100, 100, pts=20.0)
    assert abs(heat.grid[0, 0] - 0.5) < 1e-6 and heat.grid[9, 9] == 1.0
    before = heat.copy()  # a camera view's snapshot: it shares the grid, later frames do not change it
    grid = before.grid.copy()
    assert before.grid is heat.grid and not heat.grid.flags.writeable
    heat.add(np.array([[5.0, 5.0]]), 100, 100, pts=20.0)  # no decay (same time): heat added all the same
    heat.add(np.array([[5.0, 5.0]]), 100, 100, pts=30.0)
    np.testing.assert_array_equal(before.grid, grid)
    assert before.last_pts == 20.0 and heat.last_pts == 30.0
    assert abs(heat.grid[0, 0] - 1.75) < 1e-6  # (0.5 + 1) / 2 + 1 and heat.copy().grid is heat.grid
    background = np.full((60, 80, 3), 100, np.uint8)
    out = heat.render(background)
    assert out.shape == background.shape and not np.array_equal(out, background)
    assert heat.png(background)[:8] == b"\x89PNG\r\n\x1a\n"


def test_edge_distance_and_near() -> None:
    from vision.geometry import edge_distance

    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], np.float64)
    points = np.array([[5, 5], [12, 5], [5, -3], [13, 14]], np.float64)
    np.testing.assert_allclose(edge_distance(points, square), [5, 2, 3, 5])
    zone = Zone("z", np.array([[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [0.0, 0.5]]))
    dets = Detections.from_arrays(
        np.array([[0, 0, 10, 45], [0, 0, 10, 55], [0, 0, 10, 70]], np.float32), np.ones(3), np.zeros(3)
    )
    np.testing.assert_array_equal(zone.near(dets.anchors(), 100, 100, margin=6.0), [True, True, False])
