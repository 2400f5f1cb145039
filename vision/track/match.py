"""The optimal one-to-one matching of tracks to boxes by overlap."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np

from vision.geometry import iou


@cache
def assignment() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """scipy's ``linear_sum_assignment``, imported when the first tracker is made (vision/track/tracker.py):
    scipy.optimize takes ~0.5 s to import, which commands that never track should not pay, and a live
    pipeline pays at start-up rather than at its first matched frame (its lag)."""
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment


def overlaps(
    track_boxes: np.ndarray, other_boxes: np.ndarray, resting_boxes: np.ndarray, boxes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """[T, N] overlap of every track with every box, for all of a frame's matching rounds at once, and
    [T, N] IoU of every track's ``resting_boxes`` with every box, for the rest step of the tracks that
    match (vision/track/stationary.py).

    A track's overlap with a box is the better of its two guesses, ``track_boxes`` and
    ``other_boxes`` (the predicted and the last seen box of a lost track: it went on, or it
    stopped behind whatever hid it).
    """
    # all three boxes of every track in one broadcast, even where two are the same box: at these sizes
    # iou's dozen numpy calls cost more than their arithmetic, and picking the rows that differ as much
    stacked = np.concatenate([track_boxes, other_boxes, resting_boxes]).reshape(3, -1, 1, 4)
    ious = iou(stacked, boxes[None, None])
    return np.maximum(ious[0], ious[1]), ious[2]


def gate(overlap: np.ndarray, min_iou: float, allowed: np.ndarray | None) -> np.ndarray:
    """[T, N] which track-box pairs may match in a round: an overlap of at least ``min_iou``, and
    ``allowed`` (the same class; None: any)."""
    out = overlap >= min_iou
    if allowed is not None:
        out &= allowed
    return out


def associate(overlap: np.ndarray, gated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(track rows, box rows) of the matching that maximizes total overlap among pairs that pass the gate.

    ``overlap`` is the [T, N] part of :func:`overlaps` at stake, ``gated`` the same part of the
    round's :func:`gate`. Pairs not in the gate are zeroed before the assignment, so a gated-out pair
    can never displace a valid one (ByteTrack's cost limit).
    """
    if overlap.size == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty
    rows, cols = assignment()(np.where(gated, overlap, 0.0), maximize=True)
    keep = gated[rows, cols]
    return rows[keep].astype(np.int64, copy=False), cols[keep].astype(np.int64, copy=False)
