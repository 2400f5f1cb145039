"""Geometry on numpy arrays: boxes (overlap, IoU, coverage), the points that stand for them (anchors), and
polygons (membership, distance, area, overlap): the one place for both, so that the detector's NMS,
the tracker, the rules, the zones and the evaluation measure alike.

Boxes are [N, 4] xyxy in pixels; polygons [M, 2], in pixels or normalized 0..1 as their caller keeps
them. Everything is vectorized over boxes and points: the hot path makes no Python object per box.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np


def _overlap(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intersection area and both areas of xyxy boxes, with numpy broadcasting over the leading axes.

    x and y go through each step together (one call over both coordinates, not one per column):
    the same float operations per element in fewer numpy calls, which at a frame's handful of
    boxes cost more than the arithmetic (benchmarks/overlap.md). The coordinates go first, in a
    copy: with them last, numpy's inner loops would run over two values each and cost several
    times the column-by-column version from about 40x40 boxes on. The results are the leading
    axes' transposed views.
    """
    a, b = np.ascontiguousarray(a.T), np.ascontiguousarray(b.T)  # [4, ...reversed leading axes]
    sides = np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2])
    np.maximum(sides, 0, out=sides)  # np.clip's wrapper costs a few times the maximum
    size_a, size_b = a[2:] - a[:2], b[2:] - b[:2]
    return (sides[0] * sides[1]).T, (size_a[0] * size_a[1]).T, (size_b[0] * size_b[1]).T


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU with numpy broadcasting: ``iou(a[:, None], b[None])`` is the [A, B] matrix,
    ``iou(a, b)`` with equal shapes is row by row."""
    inter, area_a, area_b = _overlap(a, b)
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one [4] xyxy box against [N, 4] boxes."""
    return iou(box[None], boxes)


def pairwise_iou(a: np.ndarray, b: np.ndarray, smaller: bool = False) -> np.ndarray:
    """[N, M] IoU of xyxy boxes ``a`` [N, 4] against ``b`` [M, 4].

    With ``smaller``, intersection over the smaller box's area instead: a box cut off by
    a crop's edge lies inside the whole object's box, so it overlaps it fully by this
    measure while its IoU can be low.
    """
    if not smaller:
        return iou(a[:, None], b[None])
    inter, area_a, area_b = _overlap(a[:, None], b[None])
    return inter / np.maximum(np.minimum(area_a, area_b), 1e-9)


def covered(boxes: np.ndarray, by: np.ndarray) -> np.ndarray:
    """For each of [N, 4] boxes, the largest fraction of its area covered by one of [M, 4] boxes."""
    if len(boxes) == 0 or len(by) == 0:
        return np.zeros(len(boxes), np.float32)
    inter, area, _ = _overlap(boxes[:, None], by[None])
    return (inter / np.maximum(area, 1e-9)).max(axis=1)


def anchors_of(xyxy: np.ndarray, kind: str = "bottom_center") -> np.ndarray:
    """[N, 2] points that stand for each of [N, 4] boxes (``bottom_center`` or ``center``), in their dtype;
    filled column by column (np.stack costs more, at a few boxes)."""
    out = np.empty((len(xyxy), 2), xyxy.dtype)
    if kind == "bottom_center":
        out[:, 1] = xyxy[:, 3]
    elif kind == "center":
        np.add(xyxy[:, 1], xyxy[:, 3], out=out[:, 1])
        out[:, 1] *= 0.5
    else:
        raise ValueError(f"unknown anchor {kind!r}: use bottom_center or center")
    np.add(xyxy[:, 0], xyxy[:, 2], out=out[:, 0])
    out[:, 0] *= 0.5
    return out


def polygon_area(points: np.ndarray) -> float:
    """Shoelace area of an [M, 2] polygon, in the units of its coordinates squared."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


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


def box_of(polygon: np.ndarray) -> tuple[float, float, float, float]:
    """The box around a normalized polygon (x0, y0, x1, y1), rounded so that a snapshot compares equal."""
    x0, y0 = np.clip(polygon.min(axis=0), 0.0, 1.0)
    x1, y1 = np.clip(polygon.max(axis=0), 0.0, 1.0)
    return round(float(x0), 4), round(float(y0), 4), round(float(x1), 4), round(float(y1), 4)
