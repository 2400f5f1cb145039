"""The optimal one-to-one matching of tracks to boxes by overlap."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from vision.detect.nms import iou


def associate(
    track_boxes: np.ndarray,
    other_boxes: np.ndarray,
    track_class: np.ndarray,
    boxes: np.ndarray,
    box_class: np.ndarray,
    min_iou: float,
    same_class: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """(track rows, box rows) of the matching that maximizes total IoU among pairs that pass the gate.

    A track's overlap with a box is the better of its two guesses, ``track_boxes`` and
    ``other_boxes`` (the predicted and the last seen box of a lost track: it went on, or it
    stopped behind whatever hid it). Pairs below ``min_iou`` (or of different classes with
    ``same_class``) are zeroed before the assignment, so a gated pair can never displace a
    valid one (ByteTrack's cost limit).
    """
    if len(track_boxes) == 0 or len(boxes) == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty
    overlap = iou(track_boxes[:, None, :], boxes[None, :, :])
    other = (other_boxes != track_boxes).any(axis=1).nonzero()[0]
    if other.size:
        overlap[other] = np.maximum(overlap[other], iou(other_boxes[other, None, :], boxes[None, :, :]))
    gate = overlap >= min_iou
    if same_class:
        gate &= track_class[:, None] == box_class[None, :]
    overlap = np.where(gate, overlap, 0.0)
    rows, cols = linear_sum_assignment(overlap, maximize=True)
    keep = gate[rows, cols]
    return rows[keep].astype(np.int64), cols[keep].astype(np.int64)
