"""Box overlap in numpy: IoU, coverage, and exact greedy NMS vectorized in blocks of candidates.

Greedy NMS keeps the best box, drops every later box overlapping it by more than the
threshold, and repeats. Done one kept box at a time that is one numpy call per kept
box over all remaining boxes; here candidates are taken in score order in blocks:
the IoU matrix of a block with itself settles the block (a loop over boolean rows,
no arithmetic), then the block's kept boxes suppress every later box in one matrix
operation. The result is identical to the one-at-a-time algorithm (torchvision's,
which Ultralytics uses), with a few dozen numpy calls instead of hundreds.
"""

from __future__ import annotations

import numpy as np

BLOCK = 256
LATER = np.triu(np.ones((BLOCK, BLOCK), bool), 1)  # [i, j]: box j comes after box i (np.triu per call: 20 us)


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


def settle(over: np.ndarray, classes: np.ndarray | None, groups: np.ndarray | None) -> np.ndarray:
    """Greedy NMS within one block, best first: indices of the boxes no better kept box overlaps.

    ``over`` is the block's [n, n] overlap test; only a box that overlaps a later one (a row of
    the upper triangle with a hit) can suppress, so the loop visits those rows only. ``over`` is
    overwritten. Public for a caller that has the block's IoU matrix already (the SSD decoder's
    two passes over the same boxes settle from one).
    """
    if classes is not None:
        over &= classes[:, None] == classes[None, :]
    if groups is not None:
        over &= groups[:, None] != groups[None, :]
    n = len(over)
    over &= LATER[:n, :n]
    survivors = np.ones(n, bool)
    for i in over.any(axis=1).nonzero()[0].tolist():
        if survivors[i]:
            survivors &= ~over[i]
    return survivors.nonzero()[0]


def nms(
    xyxy: np.ndarray,
    scores: np.ndarray,
    iou: float,
    class_id: np.ndarray | None = None,
    max_det: int | None = None,
    smaller: bool = False,
    group: np.ndarray | None = None,
) -> np.ndarray:
    """Indices of the boxes kept, best first; with ``class_id``, boxes of different classes never suppress.

    ``max_det`` stops once that many boxes are kept (the rest could only be lower-scored);
    ``smaller`` measures overlap as intersection over the smaller box (see pairwise_iou);
    with ``group``, boxes of the same group never suppress each other (merging the
    detections of overlapping crops must not merge two objects one crop told apart).
    """
    n = len(scores)
    limit = n if max_det is None else min(max_det, n)
    if n == 0 or limit == 0:
        return np.zeros(0, np.int64)
    if n == 1:  # nothing to suppress (a frame's lone box, the one-label pass of a lone object)
        return np.zeros(1, np.int64)
    order = np.argsort(-scores, kind="stable")
    boxes = xyxy[order].astype(np.float32, copy=False)
    classes = None if class_id is None else class_id[order]
    groups = None if group is None else group[order]
    if n <= BLOCK:  # one block settles everything: no bookkeeping of the blocks still alive
        winners = settle(pairwise_iou(boxes, boxes, smaller) > iou, classes, groups)
        return order[winners[:limit]]
    alive = np.ones(n, bool)
    keep: list[np.ndarray] = []
    kept = 0
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        block = np.flatnonzero(alive[start:stop]) + start
        if block.size == 0:
            continue
        over = pairwise_iou(boxes[block], boxes[block], smaller) > iou
        winners = block[
            settle(
                over,
                None if classes is None else classes[block],
                None if groups is None else groups[block],
            )
        ][: limit - kept]
        keep.append(winners)
        kept += winners.size
        if kept >= limit or stop == n:
            break
        later = np.flatnonzero(alive[stop:]) + stop
        hit = pairwise_iou(boxes[winners], boxes[later], smaller) > iou
        if classes is not None:
            hit &= classes[winners][:, None] == classes[later][None, :]
        if groups is not None:
            hit &= groups[winners][:, None] != groups[later][None, :]
        alive[later[hit.any(axis=0)]] = False
    return order[np.concatenate(keep)] if keep else np.zeros(0, np.int64)
