"""Crops and tiles: a small real object missed on the whole frame is found in a crop, in place."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vision.config import RegionsConfig
from vision.detect.card import load_card
from vision.detect.detector import Detector
from vision.detect.planner import Planner
from vision.detect.regions import MERGE_OVERLAP, merge, tile_boxes, zone_boxes
from vision.detect.yolo_card import write_card
from vision.geometry import pairwise_iou
from vision.scene.zones import Zone
from vision.types import Detections

from .conftest import IMAGES, SHARED, require

COCO_INT8 = SHARED / "models" / "yolov8n_coco_int8.onnx"
PASTE = (1400, 700)  # top-left of the small person in the 1920x1080 frame


def test_tiles_cover_the_frame_with_overlap() -> None:
    tiles = tile_boxes(1920, 1080, 640, 0.2)
    assert tiles[:, 0].min() == 0 and tiles[:, 2].max() == 1920 and tiles[:, 3].max() == 1080
    assert np.all(tiles[:, 2] - tiles[:, 0] == 640) and len(tiles) == 4 * 2
    assert tile_boxes(300, 200, 640, 0.2).tolist() == [[0, 0, 300, 200]]


def test_zone_crops_grow_to_min_size_and_stay_inside() -> None:
    tiny = np.array([[0.95, 0.95], [1.0, 0.95], [1.0, 1.0]])
    wide = np.array([[0.0, 0.3], [1.0, 0.3], [1.0, 0.7], [0.0, 0.7]])
    boxes = zone_boxes([tiny, wide], 1920, 1080, 0.1, 320)
    assert boxes[0].tolist() == [1600, 760, 1920, 1080]  # grown to 320, shifted back inside
    assert boxes[1].tolist() == [0, 280, 1920, 800]  # 432 px + 10% per side; clipped to the width
    plan = by_hand(RegionsConfig(mode="zones"), [tiny])
    assert plan.boxes(1920, 1080)[0].tolist() == [0, 0, 1920, 1080]  # the whole frame too (full_frame)
    assert by_hand(RegionsConfig(mode="full"), [tiny]).boxes(1920, 1080) is None


def merged(
    crops: list[list[int]], boxes: list[list[list[float]]], classes: list[list[int]] | None = None
) -> list:
    """The merge of what each crop [x1, y1, x2, y2] of a 1920x1080 frame drew (``boxes`` in frame pixels,
    per crop; all people unless ``classes``), as frame-pixel boxes sorted left to right."""
    where = np.array([[0, *c] for c in crops], np.int64)
    found = [
        Detections.from_arrays(
            np.array(b, np.float32).reshape(-1, 4) - np.array(c[:2] * 2, np.float32),
            np.linspace(0.9, 0.6, len(b)),
            np.zeros(len(b), np.int32) if classes is None else np.array(classes[i], np.int32),
        )
        for i, (c, b) in enumerate(zip(crops, boxes, strict=True))
    ]
    out = merge(found, where, [(1920, 1080)])[0]
    return sorted(out.xyxy.round().tolist())


TILES = [[800, 400, 1024, 624], [900, 440, 1124, 664]]  # two tiles overlapping by 124 px


def test_the_halves_of_a_person_cut_by_two_tiles_edges_come_back_as_one_box() -> None:
    # 60 px tall and 14 wide at x 1017-1031: the first tile ends at x 1024 (7 px of him), the second starts
    # at 1010 and holds him whole; seen only as halves (each touching its tile's edge), they are joined too
    assert merged(TILES, [[[1017, 500, 1024, 560]], [[1017, 500, 1031, 560]]]) == [[1017, 500, 1031, 560]]
    halves = [[800, 400, 1024, 624], [1020, 440, 1244, 664]]
    assert merged(halves, [[[1017, 500, 1024, 560]], [[1020, 501, 1031, 560]]]) == [[1017, 500, 1031, 560]]


def test_one_small_person_drawn_apart_by_two_tiles_is_one_and_two_side_by_side_stay_two() -> None:
    # the distant plaza (SSD): one man 8 px wide drawn 4 px apart by two tiles, half his width: one person
    one = merged(TILES, [[[1001, 516, 1009, 539]], [[1005, 516, 1013, 538]]])
    assert len(one) == 1 and MERGE_OVERLAP < 0.5
    # two people side by side, each drawn by both tiles a pixel or two apart: two people
    left, right = [978, 517, 987, 544], [987, 518, 996, 546]
    pair = merged(TILES, [[left, right], [[980, 517, 988, 543], [986, 518, 995, 546]]])
    assert len(pair) == 2 and pair[0][2] <= 988 and pair[1][0] >= 986
    # a box drawn between two of another tile's people joins one of them: still two
    two = [[940, 500, 948, 522], [946, 500, 954, 522]]
    assert len(merged(TILES, [two, [[943, 501, 951, 521]]])) == 2


def test_the_merge_threshold_is_intersection_over_the_smaller_box_and_class_aware() -> None:
    box = [1000, 500, 1020, 540]  # 20 x 40
    # overlaps of 20, 10, 9 and 8 of its 20 px: 1, 0.5, 0.45 (not above the threshold) and 0.4
    for shift, count in ((0, 1), (10, 1), (11, 2), (12, 2)):
        other = [box[0] + shift, 500, box[2] + shift, 540]
        assert len(merged(TILES, [[box], [other]])) == count, shift
    inside = [1002, 505, 1012, 535]  # a smaller box wholly inside the other: IoU 0.375, over the smaller 1
    assert merged(TILES, [[box], [inside]]) == [box]
    assert len(merged(TILES, [[box], [inside]], [[0], [1]])) == 2  # a person and a bicycle: two objects
    assert len(merged(TILES[:1], [[box, inside]])) == 2  # two boxes of one crop: the model told them apart


def by_hand(config: RegionsConfig, polygons: list[np.ndarray]) -> Planner:
    """A camera's planner with these zones, regions set by hand (the model plays no part)."""
    zones = {f"z{i}": Zone(f"z{i}", p) for i, p in enumerate(polygons)}
    return Planner.for_camera(config, zones, None, load_card("default"))


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> Detector:
    require(COCO_INT8)
    model = tmp_path_factory.mktemp("coco") / COCO_INT8.name
    model.symlink_to(COCO_INT8)
    return Detector(load_card(write_card(model)), threads=2, min_score=0.25)


def small_person_frame(detector: Detector, height: int) -> tuple[np.ndarray, np.ndarray]:
    """A 1920x1080 frame with the person of person.jpg shrunk to ``height`` pixels, and its box."""
    source = cv2.imread(str(IMAGES / "person.jpg"))
    found = detector.detect([source])[0]
    x1, y1, x2, y2 = found.xyxy[found.class_id == 0][0].astype(int)
    person = source[y1:y2, x1:x2]
    width = round(person.shape[1] * height / person.shape[0])
    small = cv2.resize(person, (width, height), interpolation=cv2.INTER_AREA)
    noise = np.random.default_rng(0).normal(0, 6, (1080, 1920, 3))
    frame = np.clip(np.array([90, 110, 100]) + noise, 0, 255).astype(np.uint8)
    x, y = PASTE
    frame[y : y + height, x : x + width] = small
    return frame, np.array([[x, y, x + width, y + height]], np.float32)


def people(detector: Detector, frame: np.ndarray, regions: np.ndarray | None) -> np.ndarray:
    found = detector.detect([frame], None if regions is None else [regions])[0]
    return found.xyxy[found.class_id == 0]


def test_small_person_missed_on_full_frame_found_in_zone_crop_and_tiles(detector: Detector) -> None:
    frame, truth = small_person_frame(detector, 30)
    assert len(people(detector, frame, None)) == 0  # 30 px shrunk 3x: 10 px, invisible to the model
    zone = np.array([[1300, 620], [1560, 620], [1560, 800], [1300, 800]]) / [1920, 1080]
    crops = by_hand(RegionsConfig(mode="zones"), [zone]).boxes(1920, 1080)
    in_crop = people(detector, frame, crops)
    assert len(in_crop) == 1 and pairwise_iou(in_crop, truth)[0, 0] > 0.6
    tiles = by_hand(RegionsConfig(mode="tiles", tile_size=320, tile_overlap=0.5), []).boxes(1920, 1080)
    in_tiles = people(detector, frame, tiles)  # the person lies in up to 4 overlapping tiles: merged to one
    assert len(in_tiles) == 1 and pairwise_iou(in_tiles, truth)[0, 0] > 0.6


def test_regions_batch_and_big_objects_still_found(detector: Detector, tmp_path: Path) -> None:
    bus = cv2.imread(str(IMAGES / "bus.jpg"))
    whole = detector.detect([bus])[0]
    tiles = by_hand(RegionsConfig(mode="tiles", tile_size=320), []).boxes(bus.shape[1], bus.shape[0])
    frame, _ = small_person_frame(detector, 30)
    both = detector.detect([bus, frame], [tiles, None])
    assert len(both[1]) == 0  # the frame without regions: as before
    bus_boxes = both[0].xyxy[both[0].class_id == 5]
    assert len(bus_boxes) == 1  # the bus (bigger than a tile) from the full frame, not one per tile
    assert pairwise_iou(bus_boxes, whole.xyxy[whole.class_id == 5])[0, 0] > 0.9
