"""Exact greedy NMS in numpy, vectorized in blocks of candidates (the IoU: vision/geometry.py).

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

from vision.geometry import pairwise_iou

BLOCK = 256
LATER = np.triu(np.ones((BLOCK, BLOCK), bool), 1)  # [i, j]: box j comes after box i (np.triu per call: 20 us)


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
