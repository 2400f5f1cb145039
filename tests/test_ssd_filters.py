"""The detector's own filters on its boxes: detector.classes and the card's box limits, by table lookup."""

from __future__ import annotations

import cv2
import numpy as np

from vision.detect.card import load_card
from vision.detect.detector import Detector
from vision.detect.limits import BoxLimits
from vision.detect.params import DecodeParams
from vision.detect.preprocess import Geometry
from vision.detect.ssd import decode_ssd_boxes
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


def test_the_decoder_skips_a_batch_that_shows_none_of_the_kept_classes() -> None:
    """With ``classes``, a batch in which only other classes score (a parked car) decodes to nothing at
    once; one in which a kept class scores anywhere decodes as without it, other classes and all (the
    detector drops those after, once their boxes have taken part in the one-label pass)."""
    geometry = Geometry(1.0, 1.0, 0.0, 0.0, 300, 300, 300, 300)
    boxes = np.tile(np.array([[0.1, 0.1, 0.5, 0.5], [0.6, 0.6, 0.9, 0.9]], np.float32), (2, 1, 1))
    scores = np.zeros((2, 4, 2), np.float32)
    scores[0, 2, 0] = scores[1, 2, 1] = 0.9  # class 2 in both images
    params = DecodeParams(min_score=0.5, iou=0.6)
    kept = DecodeParams(min_score=0.5, iou=0.6, classes=(0, 1))
    skipped = decode_ssd_boxes([boxes, scores], [geometry] * 2, kept)
    assert [len(d) for d in decode_ssd_boxes([boxes, scores], [geometry] * 2, params)] == [1, 1]
    assert [len(d) for d in skipped] == [0, 0]
    assert all(d.xyxy.shape == (0, 4) and d.xyxy.dtype == np.float32 for d in skipped)
    scores[1, 1, 0] = 0.7  # a kept class in the second image: the whole batch as without classes
    for a, b in zip(
        decode_ssd_boxes([boxes, scores], [geometry] * 2, kept),
        decode_ssd_boxes([boxes, scores], [geometry] * 2, params),
        strict=True,
    ):
        assert np.array_equal(a.xyxy, b.xyxy) and np.array_equal(a.class_id, b.class_id)
        assert np.array_equal(a.score, b.score)


def test_box_limits_clip_ids_past_the_table_to_its_ends() -> None:
    """A class id past the limits' table takes its last limit, below 0 its first (as np.clip gave)."""
    limits = BoxLimits(np.array([0.5, 1.0, 0.1], np.float32))
    half = np.array([0, 0, 100, 60], np.float32)  # 60% of a 100x100 frame
    boxes = Detections.from_arrays(np.tile(half, (5, 1)), np.ones(5), np.array([-1, 0, 1, 2, 7]))
    assert boxes[limits.fits(boxes, 100, 100)].class_id.tolist() == [1]
