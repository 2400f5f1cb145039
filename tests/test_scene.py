"""Zones: the vectorized point-in-polygon agrees with OpenCV, and anchors choose the point."""

from __future__ import annotations

import cv2
import numpy as np

from vision.scene.zones import Zone, points_in_polygon
from vision.types import Detections


def test_points_in_polygon_matches_opencv() -> None:
    rng = np.random.default_rng(7)
    polygon = np.array([[10, 10], [200, 30], [150, 120], [220, 200], [20, 180], [60, 90]], np.float32)
    points = rng.uniform(0, 230, size=(2000, 2)).astype(np.float32)
    ours = points_in_polygon(points, polygon)
    theirs = np.array([cv2.pointPolygonTest(polygon, (float(x), float(y)), True) for x, y in points])
    clear = np.abs(theirs) > 1e-3  # points on an edge may go either way
    np.testing.assert_array_equal(ours[clear], theirs[clear] > 0)


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
