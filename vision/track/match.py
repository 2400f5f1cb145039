"""The optimal one-to-one matching of tracks to boxes by overlap."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from vision.detect.nms import iou


def overlaps(track_boxes: np.ndarray, other_boxes: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """[T, N] overlap of every track with every box, for all of a frame's matching rounds at once.

    A track's overlap with a box is the better of its two guesses, ``track_boxes`` and
    ``other_boxes`` (the predicted and the last seen box of a lost track: it went on, or it
    stopped behind whatever hid it).
    """
    # both guesses of every track in one broadcast, even where they are the same box: at these sizes
    # iou's dozen numpy calls cost more than their arithmetic, and picking the rows that differ as much
    both = iou(np.concatenate([track_boxes, other_boxes]).reshape(2, -1, 1, 4), boxes[None, None])
    return np.maximum(both[0], both[1])


def associate(
    overlap: np.ndarray, allowed: np.ndarray | None, min_iou: float
) -> tuple[np.ndarray, np.ndarray]:
    """(track rows, box rows) of the matching that maximizes total overlap among pairs that pass the gate.

    ``overlap`` is the [T, N] part of :func:`overlaps` at stake, ``allowed`` which of its pairs may
    match at all (the same class; None: any). Pairs below ``min_iou`` or not allowed are zeroed
    before the assignment, so a gated pair can never displace a valid one (ByteTrack's cost limit).
    """
    if overlap.size == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty
    gate = overlap >= min_iou
    if allowed is not None:
        gate &= allowed
    overlap = np.where(gate, overlap, 0.0)
    rows, cols = linear_sum_assignment(overlap, maximize=True)
    keep = gate[rows, cols]
    return rows[keep].astype(np.int64, copy=False), cols[keep].astype(np.int64, copy=False)
