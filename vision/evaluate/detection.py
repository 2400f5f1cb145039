"""Detection average precision at IoU 0.5 over the annotated frames of a video.

COCO's matching (each detection, best score first, takes the unmatched ground-truth box
it overlaps most; crowd regions absorb detections without counting them) and the
all-point interpolated area under the precision/recall curve (PASCAL VOC 2010 onward),
so a small case can be checked by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vision.evaluate.annotations import FrameBoxes
from vision.geometry import box_iou


@dataclass(frozen=True)
class FrameDetections:
    """Detections of the annotated frames the pipeline processed, labels as the ground truth names them."""

    frames: np.ndarray  # int64 [F]: every annotated frame processed, with or without detections
    frame: np.ndarray  # int64 [N]
    xyxy: np.ndarray  # float32 [N, 4]
    score: np.ndarray  # float32 [N]
    label: np.ndarray  # str [N]


def area_under_pr(tp: np.ndarray, n_truth: int) -> float:
    """All-point interpolated AP of detections sorted by score, given which were true positives."""
    hits = np.cumsum(tp)
    recall = hits / n_truth
    precision = hits / np.arange(1, len(tp) + 1)
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the envelope: best precision from here on
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def average_precision(
    det_frame: np.ndarray,
    det_xyxy: np.ndarray,
    det_score: np.ndarray,
    gt_frame: np.ndarray,
    gt_xyxy: np.ndarray,
    gt_ignore: np.ndarray,
    iou_threshold: float = 0.5,
) -> float | None:
    """AP of one class; None when there is no ground-truth box to find."""
    n_truth = int(np.count_nonzero(~gt_ignore))
    if n_truth == 0:
        return None
    order = np.argsort(-det_score, kind="stable")
    taken = np.zeros(len(gt_frame), bool)
    verdict = np.zeros(len(order), np.int8)  # 1: true positive, 0: false positive, -1: on a crowd region
    for k, i in enumerate(order):
        rows = np.flatnonzero(gt_frame == det_frame[i])
        if len(rows) == 0:
            continue
        iou = box_iou(det_xyxy[i], gt_xyxy[rows])
        free = ~taken[rows] & ~gt_ignore[rows] & (iou >= iou_threshold)
        if free.any():
            best = rows[free][np.argmax(iou[free])]
            taken[best] = True
            verdict[k] = 1
        elif np.any(gt_ignore[rows] & (iou >= iou_threshold)):
            verdict[k] = -1
    return area_under_pr(verdict[verdict >= 0] == 1, n_truth)


def mean_average_precision(
    detections: FrameDetections, truth: FrameBoxes
) -> tuple[float | None, dict[str, float]]:
    """mAP@0.5 over the labels that have ground truth on the processed frames, and the AP of each."""
    keep = np.isin(truth.frame, detections.frames)
    per_label: dict[str, float] = {}
    for label in truth.labels:
        d = detections.label == label
        g = keep & (truth.label == label)
        ap = average_precision(
            detections.frame[d],
            detections.xyxy[d],
            detections.score[d],
            truth.frame[g],
            truth.xyxy[g],
            truth.ignore[g],
        )
        if ap is not None:
            per_label[label] = ap
    return (float(np.mean(list(per_label.values()))) if per_label else None), per_label
