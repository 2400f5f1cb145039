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

from vision.geometry import pairwise_iou
from vision.types import Detections

# Intersection over the smaller box above which two crops' boxes of one class are one object. SAHI's
# default is 0.5, but the people tiles are for may be 8-10 pixels wide: two tiles that draw one of them 4
# pixels apart (half his width, a few model pixels of the SSD's error) overlap by 0.5 of him, and were
# kept as two people; two people side by side are drawn overlapping by 0.3 or less. Merged again from
# the same crops, 0.45 took the SSD's second boxes on one person at the distant plaza's annotated frames
# from 4 to 2 (+21,+13) and 3 to 2 (+9,-15) and lost no one; 0.4 lost people standing close
# (docs/evaluation.md, "One person's two boxes from two tiles").
MERGE_OVERLAP = 0.45
EDGE = 2  # pixels: a box this near a crop's inner edge may be cut by it


def zone_boxes(
    polygons: list[np.ndarray], width: int, height: int, margin: float, min_size: int
) -> np.ndarray:
    """[R, 4] int crop boxes: each zone's bounding box, grown by ``margin`` and to ``min_size``."""
    boxes = []
    for polygon in polygons:
        x1, y1 = polygon.min(axis=0) * (width, height)
        x2, y2 = polygon.max(axis=0) * (width, height)
        grow_x, grow_y = (x2 - x1) * margin, (y2 - y1) * margin
        boxes.append(fit(x1 - grow_x, y1 - grow_y, x2 + grow_x, y2 + grow_y, width, height, min_size))
    return np.asarray(boxes, np.int32).reshape(-1, 4)


def fit(x1: float, y1: float, x2: float, y2: float, width: int, height: int, min_size: int) -> list[int]:
    """Grow a box about its centre to ``min_size`` per side, then shift it inside the frame.

    A grown side is exactly ``min_size`` whole pixels (a box at fractional coordinates grown to a
    tile's side must not come out one pixel larger: a grid over it would hold 2x2 copies of one tile).
    """
    out = []
    for lo, hi, limit in ((x1, x2, width), (y1, y2, height)):
        start, end = math.floor(lo), math.ceil(hi)
        side = min(max(end - start, min_size), limit)
        if side > end - start:  # grown about its centre
            start = math.floor((lo + hi - side) / 2)
        start = min(max(start, 0), limit - side)
        out.append((start, start + side))
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


def cut(images: list[np.ndarray], regions: list[np.ndarray | None]) -> tuple[list[np.ndarray], np.ndarray]:
    """Every crop of every frame (views, no copy) and, per crop, its frame index and box in frame pixels."""
    crops: list[np.ndarray] = []
    where: list[tuple[int, int, int, int, int]] = []
    for i, (image, boxes) in enumerate(zip(images, regions, strict=True)):
        if boxes is None:
            crops.append(image)
            where.append((i, 0, 0, image.shape[1], image.shape[0]))
            continue
        for x1, y1, x2, y2 in boxes:
            crops.append(image[y1:y2, x1:x2])
            where.append((i, int(x1), int(y1), int(x2), int(y2)))
    return crops, np.asarray(where, np.int64).reshape(-1, 5)


def cut_by_edge(xyxy: np.ndarray, crop: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bool [N]: boxes (frame pixels) that touch an edge of their ``crop`` [N, 4] lying inside the frame:
    the object may go on beyond it, so the box may hold only part of it."""
    inner = (crop[:, 0] > 0, crop[:, 1] > 0, crop[:, 2] < width, crop[:, 3] < height)
    touch = (
        xyxy[:, 0] <= crop[:, 0] + EDGE,
        xyxy[:, 1] <= crop[:, 1] + EDGE,
        xyxy[:, 2] >= crop[:, 2] - EDGE,
        xyxy[:, 3] >= crop[:, 3] - EDGE,
    )
    return np.logical_or.reduce([t & i for t, i in zip(touch, inner, strict=True)])


def greedy_merge(
    xyxy: np.ndarray, score: np.ndarray, class_id: np.ndarray, group: np.ndarray, cut: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy non-maximum merging of the boxes of overlapping crops (SAHI's GREEDYNMM, written anew).

    In score order, each box still free takes every free box of its class from *another* crop
    that overlaps it by more than MERGE_OVERLAP of the smaller box (the same object seen twice;
    two boxes of one crop are two objects, the model's own NMS told them apart). Where either
    box of a pair was cut by its crop's edge the kept box becomes their union, so an object
    split by a tile edge comes back whole; otherwise the kept box stays as the model drew it.
    Returns the kept boxes' indices (best first) and their boxes.
    """
    order = np.argsort(-score, kind="stable")
    over = pairwise_iou(xyxy, xyxy, smaller=True) > MERGE_OVERLAP
    over &= (class_id[:, None] == class_id[None, :]) & (group[:, None] != group[None, :])
    free = np.ones(len(score), bool)
    keep, boxes = [], []
    for i in order:
        if not free[i]:
            continue
        mates = np.flatnonzero(over[i] & free)
        free[i] = False
        free[mates] = False
        box = xyxy[i].copy()
        joined = mates[cut[mates] | cut[i]]
        if len(joined):
            box[:2] = np.minimum(box[:2], xyxy[joined, :2].min(axis=0))
            box[2:] = np.maximum(box[2:], xyxy[joined, 2:].max(axis=0))
        keep.append(i)
        boxes.append(box)
    return np.asarray(keep, np.int64), np.asarray(boxes, np.float32).reshape(-1, 4)


def seen_better(
    xyxy: np.ndarray, group: np.ndarray, crops: np.ndarray, scale: np.ndarray, least: float
) -> np.ndarray:
    """Bool [N]: the people's boxes (frame pixels, from crop ``group``) to drop: those below ``least`` model
    pixels tall in their crop where another of the frame's ``crops`` [P, 4] (model pixels per frame pixel
    ``scale`` [P]) holds them whole at ``least`` or more, the size the model card says it sees people at.

    Below that size a model misses most people and cannot tell the rest from what only looks like one: on
    the distant plaza the SSD's second-look tiles (224 px, people at ~33 model pixels) drew a man half
    hidden by the signpost's sign and the sign itself alike (0.58 each), and the sign made a crowd of 7
    while 6 stood there. Where a tile shows the same spot at a size the model sees reliably, its verdict
    stands; a box no crop shows larger is kept (a survey's tiles, people too small for any tile).
    SAHI keeps every slice's boxes whatever their size (its slices are one size, the user's).
    """
    height = xyxy[:, 3] - xyxy[:, 1]
    below = height * scale[group] < least
    if not below.any():
        return below
    box = xyxy[below]
    holds = (box[:, None, :2] >= crops[None, :, :2]).all(axis=2) & (
        box[:, None, 2:] <= crops[None, :, 2:]
    ).all(axis=2)
    large = height[below, None] * scale[None, :] >= least
    out = below.copy()
    out[below] = (holds & large).any(axis=1)
    return out


def merge(
    found: list[Detections],
    where: np.ndarray,
    sizes: list[tuple[int, int]],
    scale: np.ndarray | None = None,
    least: float = 0.0,
    people: np.ndarray | None = None,
) -> list[Detections]:
    """Shift each crop's boxes to frame pixels and, per frame, merge what overlapping crops both saw.

    ``sizes`` are the frames' (width, height), to tell a crop edge inside the frame from its border.
    With ``scale`` (model pixels per frame pixel, per crop), a box of a class in ``people`` below ``least``
    model pixels tall gives way to a crop that shows it larger (:func:`seen_better`).
    """
    results = []
    for i, (width, height) in enumerate(sizes):
        parts = np.flatnonzero(where[:, 0] == i)
        counts = [len(found[p]) for p in parts]
        xyxy = np.concatenate(
            [found[p].xyxy + where[p, 1:3].astype(np.float32)[[0, 1, 0, 1]] for p in parts]
        ).reshape(-1, 4)
        score = np.concatenate([found[p].score for p in parts])
        class_id = np.concatenate([found[p].class_id for p in parts])
        if len(parts) == 1:
            results.append(Detections.from_arrays(xyxy, score, class_id))
            continue
        crop = np.repeat(where[parts, 1:], counts, axis=0)
        group = np.repeat(np.arange(len(parts)), counts)
        if scale is not None and people is not None:
            doubt = np.isin(class_id, people)
            doubt[doubt] = seen_better(xyxy[doubt], group[doubt], where[parts, 1:], scale[parts], least)
            xyxy, score, class_id, crop, group = (a[~doubt] for a in (xyxy, score, class_id, crop, group))
        keep, boxes = greedy_merge(xyxy, score, class_id, group, cut_by_edge(xyxy, crop, width, height))
        results.append(Detections.from_arrays(boxes, score[keep], class_id[keep]))
    return results
