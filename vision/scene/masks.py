"""Masks: areas of a camera's image to ignore (a road with passing traffic, a flag in the wind).

A detection whose anchor lies in a mask is dropped before tracking and rules; the
same polygons rasterized exclude those pixels from pixel-level models (litter).
"""

from __future__ import annotations

import cv2
import numpy as np

from vision.geometry import Edges, points_in_polygon, polygon_edges
from vision.types import Detections


class Masks:
    """The ignored areas of one camera, in normalized coordinates."""

    def __init__(self, polygons: list[np.ndarray], anchor: str = "bottom_center") -> None:
        self.polygons = [np.asarray(p, np.float64) for p in polygons]
        self.anchor = anchor
        self._rasters: dict[tuple[int, int], np.ndarray] = {}
        self._edges: dict[tuple[int, int], list[Edges]] = {}

    def __bool__(self) -> bool:
        return bool(self.polygons)

    def outside(self, detections: Detections, width: int, height: int) -> np.ndarray:
        """Bool mask of the detections NOT in any masked area."""
        keep = np.ones(len(detections), bool)
        if not self.polygons or len(detections) == 0:
            return keep
        anchors = detections.anchors(self.anchor)
        for edges in self._edges_at(width, height):
            keep &= ~points_in_polygon(anchors, edges)
        return keep

    def _edges_at(self, width: int, height: int) -> list[Edges]:
        """The polygons' edges in pixels of this frame size (cached: every frame asks)."""
        key = (width, height)
        if key not in self._edges:
            scale = np.array([width, height], np.float64)
            self._edges[key] = [polygon_edges(polygon * scale) for polygon in self.polygons]
        return self._edges[key]

    def raster(self, width: int, height: int) -> np.ndarray:
        """uint8 [H, W] image, 255 where masked; cached per size."""
        key = (width, height)
        if key not in self._rasters:
            image = np.zeros((height, width), np.uint8)
            scale = np.array([width, height], np.float64)
            for polygon in self.polygons:
                cv2.fillPoly(image, [np.round(polygon * scale).astype(np.int32)], 255)
            self._rasters[key] = image
        return self._rasters[key]
