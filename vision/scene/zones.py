"""Zones: polygons in normalized coordinates, tested against box anchors in pixels.

Normalized corners make a zone independent of resolution (a decoder that scales its
output does not move the zone); the pixel polygon is cached per frame size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import cv2
import numpy as np

from vision.types import Detections


class Edges(NamedTuple):
    """A polygon's edges (corner to next corner) as [1, M] rows, the ray casting's operands worked out
    once per polygon (a zone's, per frame size) rather than at each of the several calls per frame.
    ``dy`` is 1 where an edge is horizontal: no ray straddles it, so its crossing is never read, and
    the division needs no guard."""

    x0: np.ndarray
    y0: np.ndarray
    y1: np.ndarray
    dx: np.ndarray
    dy: np.ndarray


def polygon_edges(polygon: np.ndarray) -> Edges:
    """The :class:`Edges` of an [M, 2] polygon, in its dtype."""
    following = np.concatenate([polygon[1:], polygon[:1]])  # each corner's next (np.roll, cheaper)
    dy = following[:, 1] - polygon[:, 1]
    dy[dy == 0] = 1
    row = (polygon[:, 0], polygon[:, 1], following[:, 1], following[:, 0] - polygon[:, 0], dy)
    return Edges(*(a[None, :] for a in row))


def points_in_polygon(points: np.ndarray, polygon: np.ndarray | Edges) -> np.ndarray:
    """Even-odd ray casting, vectorized over points: [N, 2] points, [M, 2] polygon (or its
    :class:`Edges`) -> bool [N]."""
    edges = polygon if isinstance(polygon, Edges) else polygon_edges(polygon)
    x = points[:, 0][:, None]
    y = points[:, 1][:, None]
    straddles = (edges.y0 > y) != (edges.y1 > y)
    x_cross = edges.x0 + (y - edges.y0) * edges.dx / edges.dy
    return np.logical_xor.reduce(straddles & (x < x_cross), axis=1)  # odd crossings, in one reduction


def edge_distance(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Distance of each of [N, 2] points to the nearest edge of an [M, 2] polygon, vectorized."""
    a = polygon[None, :, :]
    ab = np.concatenate([polygon[1:], polygon[:1]])[None, :, :] - a
    ap = points[:, None, :] - a
    t = np.minimum(np.maximum((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0), 1.0)  # np.clip
    nearest = a + t[..., None] * ab
    return np.sqrt(((points[:, None, :] - nearest) ** 2).sum(-1)).min(axis=1)


def polygon_iou(a: np.ndarray, b: np.ndarray, grid: int = 512) -> float:
    """Overlap (intersection over union) of two normalized polygons, rasterized on a ``grid``² raster:
    how much a redrawn zone is still the same place."""
    masks = []
    for polygon in (a, b):
        mask = np.zeros((grid, grid), np.uint8)
        cv2.fillPoly(mask, [np.round(np.asarray(polygon) * grid).astype(np.int32)], 1)
        masks.append(mask.astype(bool))
    union = np.count_nonzero(masks[0] | masks[1])
    return np.count_nonzero(masks[0] & masks[1]) / union if union else 1.0


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
