"""Average precision against cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from vision.evaluate.annotations import FrameBoxes
from vision.evaluate.detection import (
    FrameDetections,
    area_under_pr,
    average_precision,
    mean_average_precision,
)

# ground truth: two people on frame 0, one on frame 1
GT_FRAME = np.array([0, 0, 1])
GT_XYXY = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
# detections, best first: TP (A), a second box on A (FP: A is taken), TP (frame 1), FP, TP (B)
DET_FRAME = np.array([0, 0, 1, 0, 0])
DET_XYXY = np.array(
    [[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30]], np.float32
)
DET_SCORE = np.array([0.9, 0.8, 0.7, 0.6, 0.5], np.float32)


def test_area_under_the_envelope() -> None:
    # hits 1,0,1,0,1 of 3: precision 1, .5, .67, .5, .6 at recall 1/3, 1/3, 2/3, 2/3, 1;
    # the envelope keeps 1 up to recall 1/3, 2/3 up to 2/3 and .6 up to 1
    ap = area_under_pr(np.array([1, 0, 1, 0, 1], bool), 3)
    assert ap == pytest.approx((1 + 2 / 3 + 0.6) / 3)
    assert area_under_pr(np.array([1, 1], bool), 2) == pytest.approx(1.0)
    assert area_under_pr(np.array([0, 0], bool), 2) == 0.0
    assert area_under_pr(np.array([1], bool), 4) == pytest.approx(0.25)  # three boxes never found


def test_average_precision_hand_computed() -> None:
    ap = average_precision(DET_FRAME, DET_XYXY, DET_SCORE, GT_FRAME, GT_XYXY, np.zeros(3, bool))
    assert ap == pytest.approx((1 + 2 / 3 + 0.6) / 3)  # 0.7556
    # the order is by score, not by position in the arrays
    perm = np.array([4, 2, 0, 3, 1])
    again = average_precision(
        DET_FRAME[perm], DET_XYXY[perm], DET_SCORE[perm], GT_FRAME, GT_XYXY, np.zeros(3, bool)
    )
    assert again == pytest.approx(ap)
    # a box on the right place of another frame is no hit
    assert (
        average_precision(np.array([1]), GT_XYXY[1:2], np.array([0.9]), GT_FRAME, GT_XYXY, np.zeros(3, bool))
        == 0
    )
    # no ground truth: no AP
    assert (
        average_precision(DET_FRAME, DET_XYXY, DET_SCORE, GT_FRAME[:0], GT_XYXY[:0], np.zeros(0, bool))
        is None
    )


def test_crowd_regions_absorb_detections() -> None:
    # a crowd region on frame 0 covers the fourth detection (IoU 0.81): it no longer counts as false
    gt_frame = np.append(GT_FRAME, 0)
    gt_xyxy = np.vstack([GT_XYXY, [[40, 40, 60, 60]]]).astype(np.float32)
    ignore = np.array([False, False, False, True])
    det = DET_XYXY.copy()
    det[3] = [40, 40, 58, 58]
    ap = average_precision(DET_FRAME, det, DET_SCORE, gt_frame, gt_xyxy, ignore)
    # hits 1,0,1,1 of 3: precision 1, .5, .67, .75 -> envelope 1, .75, .75
    assert ap == pytest.approx((1 + 0.75 + 0.75) / 3)


def test_mean_over_classes_with_ground_truth_on_processed_frames() -> None:
    truth = FrameBoxes(
        frames=np.array([0, 1, 2]),
        frame=np.array([0, 0, 1, 0, 2]),
        xyxy=np.vstack([GT_XYXY, [[100, 100, 140, 120]], [[0, 0, 9, 9]]]).astype(np.float32),
        label=np.array(["person", "person", "person", "bicycle", "bicycle"]),
        ignore=np.zeros(5, bool),
        labels=("person", "bicycle", "car"),  # no car anywhere: it has no AP
    )
    dets = FrameDetections(
        frames=np.array([0, 1]),  # frame 2 was never processed: its bicycle does not count
        frame=np.append(DET_FRAME, 0),
        xyxy=np.vstack([DET_XYXY, [[101, 99, 141, 121]]]).astype(np.float32),
        score=np.append(DET_SCORE, 0.4).astype(np.float32),
        label=np.array(["person"] * 5 + ["bicycle"]),
    )
    m, per = mean_average_precision(dets, truth)
    assert per == pytest.approx({"person": (1 + 2 / 3 + 0.6) / 3, "bicycle": 1.0})
    assert m == pytest.approx(((1 + 2 / 3 + 0.6) / 3 + 1.0) / 2)
