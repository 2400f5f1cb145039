"""Zones: polygons in normalized coordinates, tested against box anchors in pixels.

Normalized corners make a zone independent of resolution (a decoder that scales its
output does not move the zone); the pixel polygon is cached per frame size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vision.geometry import Edges, edge_distance, points_in_polygon, polygon_edges
from vision.types import Detections


@dataclass
class Zone:
    """One named area of one camera."""

    name: str
    polygon: np.ndarray  # [M, 2] float, normalized 0..1
    anchor: str = "bottom_center"
    area_m2: float | None = None  # ground area, when the camera is calibrated
    _pixels: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, repr=False)
    _edges: dict[tuple[int, int], Edges] = field(default_factory=dict, repr=False)

    def pixels(self, width: int, height: int) -> np.ndarray:
        """The polygon in pixels of a ``width`` x ``height`` frame."""
        key = (width, height)
        if key not in self._pixels:
            self._pixels[key] = (self.polygon * np.array([width, height], np.float64)).astype(np.float32)
        return self._pixels[key]

    def edges(self, width: int, height: int) -> Edges:
        """The edges of :meth:`pixels`, for the ray casting."""
        key = (width, height)
        if key not in self._edges:
            self._edges[key] = polygon_edges(self.pixels(width, height))
        return self._edges[key]

    def inside(self, anchors: np.ndarray, width: int, height: int) -> np.ndarray:
        """Bool mask of the [N, 2] anchor points (pixels) that lie in the zone."""
        return points_in_polygon(anchors, self.edges(width, height))

    def contains(self, detections: Detections, width: int, height: int) -> np.ndarray:
        """Bool mask of the detections whose anchor lies in the zone."""
        if len(detections) == 0:
            return np.zeros(0, bool)
        return self.inside(detections.anchors(self.anchor), width, height)

    def near(self, anchors: np.ndarray, width: int, height: int, margin: float | np.ndarray) -> np.ndarray:
        """Bool mask of the [N, 2] anchor points (pixels) inside, or outside by at most ``margin`` pixels
        (one for all, or one per point)."""
        inside = self.inside(anchors, width, height)
        return inside | (edge_distance(anchors, self.pixels(width, height)) <= margin)
