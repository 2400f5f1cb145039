"""Crops and tiles: where on a frame the detector looks, and how their boxes come back.

A 300-640 pixel model sees a 1080p frame shrunk 3-6 times, so a 20-pixel bottle
becomes 4 pixels and disappears. Cutting the frame around the zones that matter (or
into overlapping tiles) and detecting each crop at the model's full resolution keeps
small objects visible; the crops' boxes are shifted back to frame pixels and merged
where crops overlap.
"""

from __future__ import annotations

import math

import numpy as np

from vision.config import RegionsConfig
from vision.detect.nms import nms
from vision.types import Detections

MERGE_OVERLAP = 0.6  # intersection over the smaller box above which two crops saw one object


def zone_boxes(
    polygons: list[np.ndarray], width: int, height: int, margin: float, min_size: int
) -> np.ndarray:
    """[R, 4] int crop boxes: each zone's bounding box, grown by ``margin`` and to ``min_size``."""
    boxes = []
    for polygon in polygons:
        x1, y1 = polygon.min(axis=0) * (width, height)
        x2, y2 = polygon.max(axis=0) * (width, height)
        grow_x, grow_y = (x2 - x1) * margin, (y2 - y1) * margin
        boxes.append(_fit(x1 - grow_x, y1 - grow_y, x2 + grow_x, y2 + grow_y, width, height, min_size))
    return np.asarray(boxes, np.int32).reshape(-1, 4)


def _fit(x1: float, y1: float, x2: float, y2: float, width: int, height: int, min_size: int) -> list[int]:
    """Grow a box about its centre to ``min_size`` per side, then shift it inside the frame."""
    out = []
    for lo, hi, limit in ((x1, x2, width), (y1, y2, height)):
        side = min(max(hi - lo, min_size), limit)
        start = min(max((lo + hi - side) / 2, 0), limit - side)
        out.append((math.floor(start), math.ceil(min(start + side, limit))))
    (ax, bx), (ay, by) = out
    return [ax, ay, bx, by]


def tile_boxes(width: int, height: int, size: int, overlap: float) -> np.ndarray:
    """[R, 4] int tiles of ``size`` pixels covering the frame, neighbours overlapping by ``overlap``."""
    starts = []
    for limit in (width, height):
        side = min(size, limit)
        count = 1 if side == limit else math.ceil((limit - side) / (side * (1 - overlap))) + 1
        starts.append((np.linspace(0, limit - side, count).round().astype(np.int32), side))
    (xs, tw), (ys, th) = starts
    grid = np.array([[x, y, x + tw, y + th] for y in ys for x in xs], np.int32)
    return grid.reshape(-1, 4)


class RegionPlan:
    """One camera's regions, recomputed only when its frame size changes."""

    def __init__(self, config: RegionsConfig, polygons: list[np.ndarray]) -> None:
        self.config = config
        self.polygons = polygons
        self._size: tuple[int, int] | None = None
        self._boxes: np.ndarray | None = None

    def boxes(self, width: int, height: int) -> np.ndarray | None:
        """Crop boxes for a frame of this size; None means the whole frame only."""
        cfg = self.config
        if cfg.mode == "full" or (cfg.mode == "zones" and not self.polygons):
            return None
        if self._size != (width, height):
            if cfg.mode == "zones":
                boxes = zone_boxes(self.polygons, width, height, cfg.margin, cfg.min_size)
            else:
                boxes = tile_boxes(width, height, cfg.tile_size, cfg.tile_overlap)
            if cfg.full_frame:
                boxes = np.concatenate([np.array([[0, 0, width, height]], np.int32), boxes])
            self._size, self._boxes = (width, height), boxes
        return self._boxes


def cut(images: list[np.ndarray], regions: list[np.ndarray | None]) -> tuple[list[np.ndarray], np.ndarray]:
    """Every crop of every frame (views, no copy) and, per crop, its frame index and x, y offset."""
    crops: list[np.ndarray] = []
    where: list[tuple[int, int, int]] = []
    for i, (image, boxes) in enumerate(zip(images, regions, strict=True)):
        if boxes is None:
            crops.append(image)
            where.append((i, 0, 0))
            continue
        for x1, y1, x2, y2 in boxes:
            crops.append(image[y1:y2, x1:x2])
            where.append((i, int(x1), int(y1)))
    return crops, np.asarray(where, np.int64).reshape(-1, 3)


def merge(found: list[Detections], where: np.ndarray, frames: int) -> list[Detections]:
    """Shift each crop's boxes to frame pixels and, per frame, merge what overlapping crops both saw."""
    results = []
    for i in range(frames):
        parts = np.flatnonzero(where[:, 0] == i)
        if len(parts) == 1:
            d = found[parts[0]]
            offset = np.array([where[parts[0], 1], where[parts[0], 2]] * 2, np.float32)
            results.append(Detections.from_arrays(d.xyxy + offset, d.score, d.class_id))
            continue
        xyxy = np.concatenate(
            [found[p].xyxy + np.array([where[p, 1], where[p, 2]] * 2, np.float32) for p in parts]
        )
        score = np.concatenate([found[p].score for p in parts])
        class_id = np.concatenate([found[p].class_id for p in parts])
        group = np.repeat(np.arange(len(parts)), [len(found[p]) for p in parts])
        keep = nms(xyxy, score, MERGE_OVERLAP, class_id, smaller=True, group=group)
        results.append(Detections.from_arrays(xyxy[keep], score[keep], class_id[keep]))
    return results
