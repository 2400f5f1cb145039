"""The detector's own filters on its boxes: detector.classes and the card's box limits, by table lookup."""

from __future__ import annotations

import cv2
import numpy as np

from vision.detect.card import load_card
from vision.detect.detector import Detector
from vision.detect.limits import BoxLimits
from vision.types import Detections

from .conftest import IMAGES, require

CLASSES = ["person", "bicycle", "car"]


def test_the_class_filter_keeps_exactly_what_np_isin_keeps() -> None:
    """On real pictures at a low score (many classes), the filtered detector gives the unfiltered one's
    boxes of the wanted classes, in order; ids below 0 or past the labels are dropped."""
    images = [
        cv2.imread(str(require(IMAGES / n))) for n in ("bus.jpg", "dog.jpg", "horses.jpg", "zidane.jpg")
    ]
    everything = Detector(load_card("default"), threads=1, min_score=0.1)
    some = Detector(load_card("default"), threads=1, min_score=0.1, classes=CLASSES)
    ids = [k for k, v in some.names.items() if v in CLASSES]
    kept = dropped = 0
    for whole, filtered in zip(everything.detect(images), some.detect(images), strict=True):
        expected = whole[np.isin(whole.class_id, ids)]
        assert np.array_equal(filtered.xyxy, expected.xyxy) and np.array_equal(filtered.score, expected.score)
        assert np.array_equal(filtered.class_id, expected.class_id)
        kept, dropped = kept + len(expected), dropped + len(whole) - len(expected)
    assert kept and dropped  # both ways were exercised
    odd = np.array([-5, -1, 0, 1, 2, 89, 90, 1000], np.int32)
    assert np.array_equal(np.take(some.wanted, odd + 1, mode="clip"), np.isin(odd, ids))


def test_box_limits_clip_ids_past_the_table_to_its_ends() -> None:
    """A class id past the limits' table takes its last limit, below 0 its first (as np.clip gave)."""
    limits = BoxLimits(np.array([0.5, 1.0, 0.1], np.float32))
    half = np.array([0, 0, 100, 60], np.float32)  # 60% of a 100x100 frame
    boxes = Detections.from_arrays(np.tile(half, (5, 1)), np.ones(5), np.array([-1, 0, 1, 2, 7]))
    assert boxes[limits.fits(boxes, 100, 100)].class_id.tolist() == [1]
