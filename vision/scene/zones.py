"""Zones: polygons in normalized coordinates, tested against box anchors in pixels.

Normalized corners make a zone independent of resolution (a decoder that scales its
output does not move the zone); the pixel polygon is cached per frame size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from vision.types import Detections


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd ray casting, vectorized over points: [N, 2] points, [M, 2] polygon -> bool [N]."""
    x = points[:, 0][:, None]
    y = points[:, 1][:, None]
    x0, y0 = polygon[:, 0][None, :], polygon[:, 1][None, :]
    following = np.concatenate([polygon[1:], polygon[:1]])  # each corner's next (np.roll, cheaper)
    x1, y1 = following[:, 0][None, :], following[:, 1][None, :]
    straddles = (y0 > y) != (y1 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    crossings = straddles & (x < x_cross)
    return crossings.sum(axis=1) % 2 == 1  # count_nonzero with an axis: a slower Python path


def edge_distance(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Distance of each of [N, 2] points to the nearest edge of an [M, 2] polygon, vectorized."""
    a = polygon[None, :, :]
    ab = np.concatenate([polygon[1:], polygon[:1]])[None, :, :] - a
    ap = points[:, None, :] - a
    t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
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

    def pixels(self, width: int, height: int) -> np.ndarray:
        """The polygon in pixels of a ``width`` x ``height`` frame."""
        key = (width, height)
        if key not in self._pixels:
            self._pixels[key] = (self.polygon * np.array([width, height], np.float64)).astype(np.float32)
        return self._pixels[key]

    def contains(self, detections: Detections, width: int, height: int) -> np.ndarray:
        """Bool mask of the detections whose anchor lies in the zone."""
        if len(detections) == 0:
            return np.zeros(0, bool)
        return points_in_polygon(detections.anchors(self.anchor), self.pixels(width, height))

    def near(self, detections: Detections, width: int, height: int, margin: float | np.ndarray) -> np.ndarray:
        """Bool mask of the detections whose anchor is inside, or outside by at most ``margin`` pixels
        (one for all, or one per detection)."""
        if len(detections) == 0:
            return np.zeros(0, bool)
        anchors, polygon = detections.anchors(self.anchor), self.pixels(width, height)
        return points_in_polygon(anchors, polygon) | (edge_distance(anchors, polygon) <= margin)
