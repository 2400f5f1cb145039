"""Box overlap in numpy: IoU, coverage, and greedy non-maximum suppression."""

from __future__ import annotations

import numpy as np


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one [4] xyxy box against [N, 4] boxes."""
    ix1 = np.maximum(box[0], boxes[:, 0])
    iy1 = np.maximum(box[1], boxes[:, 1])
    ix2 = np.minimum(box[2], boxes[:, 2])
    iy2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def covered(boxes: np.ndarray, by: np.ndarray) -> np.ndarray:
    """For each of [N, 4] boxes, the largest fraction of its area covered by one of [M, 4] boxes."""
    if len(boxes) == 0 or len(by) == 0:
        return np.zeros(len(boxes), np.float32)
    x1 = np.maximum(boxes[:, None, 0], by[None, :, 0])
    y1 = np.maximum(boxes[:, None, 1], by[None, :, 1])
    x2 = np.minimum(boxes[:, None, 2], by[None, :, 2])
    y2 = np.minimum(boxes[:, None, 3], by[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-9)
    return (inter / area[:, None]).max(axis=1)


def nms(xyxy: np.ndarray, scores: np.ndarray, iou: float, class_id: np.ndarray | None = None) -> np.ndarray:
    """Indices of the boxes kept, best first; with ``class_id``, boxes of different classes never suppress.

    Class-aware NMS offsets each class into its own region of the plane, the trick
    torchvision's batched_nms uses, so one pass serves every class.
    """
    if len(scores) == 0:
        return np.zeros(0, np.int64)
    boxes = xyxy.astype(np.float32, copy=True)
    if class_id is not None:
        boxes += (class_id.astype(np.float32) * (float(boxes.max()) + 1.0))[:, None]
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best = order[0]
        keep.append(int(best))
        rest = order[1:]
        order = rest[box_iou(boxes[best], boxes[rest]) <= iou]
    return np.asarray(keep, np.int64)
