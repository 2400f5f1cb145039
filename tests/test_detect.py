"""The embedded default detector: reference detections, batching, and errors that name the model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from vision.config import DetectorConfig
from vision.detect.card import DEFAULT_CARD, ModelError, load_card
from vision.detect.detector import Detector

from .conftest import IMAGES, SAMPLE, cli

# From the issue: SSD MobileNet v2 COCO at score >= 0.4 (label, score), in descending score order.
REFERENCE = {
    "bus.jpg": [("person", 0.98), ("bus", 0.88), ("person", 0.73), ("person", 0.42)],
    "dog.jpg": [("bicycle", 0.96), ("dog", 0.96), ("car", 0.88)],
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_default_model_reproduces_reference(detector: Detector, name: str) -> None:
    image = cv2.imread(str(IMAGES / name))
    found = detector.detect([image])[0]
    records = found.to_records(detector.names)
    got = [(r["label"], r["score"]) for r in records]
    assert len(got) == len(REFERENCE[name]), got  # no duplicate label for one object (car/truck)
    for (label, score), (got_label, got_score) in zip(REFERENCE[name], got, strict=True):
        assert got_label == label and abs(got_score - score) < 0.01, got
    # boxes are in source pixels, inside the image
    h, w = image.shape[:2]
    assert (
        np.all(found.xyxy >= 0) and np.all(found.xyxy[:, [0, 2]] <= w) and np.all(found.xyxy[:, [1, 3]] <= h)
    )
    bicycle_or_bus = found.xyxy[found.class_id == (1 if name == "dog.jpg" else 5)][0]
    assert (bicycle_or_bus[2] - bicycle_or_bus[0]) > 0.5 * w  # the big object spans most of the width


def test_batch_equals_single(detector: Detector) -> None:
    """Several cameras' frames go in one model call (a dynamic batch axis) and come back as if alone:
    a box never suppresses a box of another image, even of the very same picture."""
    assert detector.engine.model.batch_size is None  # type: ignore[attr-defined]
    images = [cv2.imread(str(IMAGES / n)) for n in ("bus.jpg", "dog.jpg", "zidane.jpg", "bus.jpg")]
    batch = detector.detect(images)
    for image, together in zip(images, batch, strict=True):
        alone = detector.detect([image])[0]
        assert len(alone) > 0
        np.testing.assert_allclose(together.xyxy, alone.xyxy, atol=1e-3)
        np.testing.assert_allclose(together.score, alone.score, atol=1e-6)
        np.testing.assert_array_equal(together.class_id, alone.class_id)


def test_max_det_per_image_and_max_batch() -> None:
    """max_det counts per image of a batch; max_batch splits a round into calls of that many."""
    few = Detector(load_card("default"), threads=2, min_score=0.4, max_det=2, max_batch=2)
    images = [cv2.imread(str(IMAGES / n)) for n in ("bus.jpg", "dog.jpg", "person.jpg")]
    found = few.detect(images)
    assert [len(d) for d in found] == [2, 2, 2]
    assert [round(float(s), 2) for s in found[0].score] == [0.98, 0.88]  # the best two of bus.jpg
    for image, chunked in zip(images, found, strict=True):  # calls of 2, then 1: each image as if alone
        alone = few.detect([image])[0]
        np.testing.assert_array_equal(chunked.class_id, alone.class_id)
        np.testing.assert_allclose(chunked.xyxy, alone.xyxy, atol=1e-3)


def test_class_filter_and_unknown_class() -> None:
    card = load_card("default")
    people = Detector(card, min_score=0.4, classes=["person"])
    found = people.detect([cv2.imread(str(IMAGES / "bus.jpg"))])[0]
    assert len(found) == 3 and set(found.class_id.tolist()) == {0}
    with pytest.raises(ModelError, match="has no class litterbug"):
        Detector(card, classes=["person", "litterbug"])


def test_bad_frame_is_a_clear_error(detector: Detector) -> None:
    shape = r"expected an HxWx3 uint8 image of at least 2x2 pixels, got shape \(10, 10\)"
    with pytest.raises(ValueError, match=shape):
        detector.detect([np.zeros((10, 10), np.uint8)])
    with pytest.raises(ValueError, match="dtype float32"):
        detector.detect([np.zeros((10, 10, 3), np.float32)])


def copy_model(tmp_path: Path, **changes: object) -> Path:
    card = yaml.safe_load(DEFAULT_CARD.read_text())
    shutil.copy(DEFAULT_CARD.parent / card["file"], tmp_path / card["file"])
    for key, value in changes.items():
        if key == "input_width":
            card["input"]["width"] = value
        else:
            card[key] = value
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(card))
    return path


def test_detect_names_each_image_it_cannot_take_and_goes_on(tmp_path: Path) -> None:
    """A file that is no picture and a picture too small for any model: a line each, exit 2, the rest
    detected (a 1x1 picture was a ValueError traceback that ended the command)."""
    tiny, text, photo = tmp_path / "tiny.png", tmp_path / "notes.jpg", tmp_path / "plaza.jpg"
    cv2.imwrite(str(tiny), np.zeros((1, 1, 3), np.uint8))
    text.write_text("not a picture")
    capture = cv2.VideoCapture(str(SAMPLE))
    ok, frame = capture.read()
    capture.release()
    assert ok and cv2.imwrite(str(photo), frame)
    result = cli("detect", tiny, text, photo, "--json")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines() == [
        f"error: {tiny}: 1x1 pixels: too small (at least 2x2)",
        f"error: {text}: cannot read it as an image",
    ]
    (line,) = result.stdout.splitlines()
    assert json.loads(line)["image"] == str(photo) and json.loads(line)["detections"]


def test_card_that_does_not_match_its_file(tmp_path: Path) -> None:
    card = copy_model(tmp_path, input_width=320, sha256=None)
    with pytest.raises(ModelError) as info:
        Detector(load_card(card))
    message = str(info.value)
    assert "takes input ['batch', 300, 300, 3]" in message and str(card) in message and "320x300" in message
    card = copy_model(tmp_path, sha256=None, outputs=["scores", "boxes"])
    with pytest.raises(ModelError) as info:
        Detector(load_card(card))
    assert "says family ssd-boxes: boxes [B, anchors, 4]" in str(info.value) and str(card) in str(info.value)
    card = copy_model(tmp_path, sha256=None, nms_embedded=True)
    with pytest.raises(ModelError, match="ssd-boxes models leave NMS to us"):
        load_card(card)
    card = copy_model(tmp_path, sha256=None, family="yolo-v9")
    families = "family: no family 'yolo-v9' \\(use one of ssd-boxes, yolo-v8, yolo-v5\\)"
    with pytest.raises(ModelError, match=families):
        load_card(card)


def test_corrupt_model_and_wrong_checksum(tmp_path: Path) -> None:
    card = copy_model(tmp_path)
    model = tmp_path / "ssd_mobilenet_v2_coco.onnx"
    model.write_bytes(model.read_bytes()[:1000])
    with pytest.raises(ModelError, match=r"does not match its card .*sha256 differs"):
        load_card(card)
    card = copy_model(tmp_path, sha256=None)
    model.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="ONNX Runtime cannot load it"):
        Detector(load_card(card))
    model.unlink()
    with pytest.raises(ModelError, match=r"ssd_mobilenet_v2_coco\.onnx does not exist"):
        load_card(card)


def test_card_with_unknown_key(tmp_path: Path) -> None:
    card = copy_model(tmp_path, sha256=None, colour="rgb")
    with pytest.raises(ModelError, match="colour: Extra inputs are not permitted"):
        load_card(card)


def test_a_model_file_where_a_card_belongs(tmp_path: Path) -> None:
    """A bare model file is read as an Ultralytics export (tests/test_yolo.py runs one); the embedded SSD's
    file has no card in it, and a binary file named like a card is not one: each says what to do."""
    with pytest.raises(ModelError) as info:
        load_card(DEFAULT_CARD.with_suffix(".onnx"))
    assert "carries no class names in its metadata" in str(info.value)
    assert "write a card for it (`street-vision models card" in str(info.value)
    with pytest.raises(ModelError, match=r"model file .*missing\.onnx does not exist"):
        load_card(tmp_path / "missing.onnx")
    fake = tmp_path / "card.yaml"
    fake.write_bytes(DEFAULT_CARD.with_suffix(".onnx").read_bytes()[:4096])
    with pytest.raises(ModelError, match=r"card\.yaml: not a text file \(a card is YAML"):
        load_card(fake)


@pytest.mark.parametrize("n", [40, 300])  # within one block (a frame's usual few boxes) and past it
def test_nms_matches_brute_force(n: int) -> None:
    from vision.detect.nms import nms
    from vision.geometry import box_iou

    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 100, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (n, 2))], axis=1).astype(np.float32)
    scores = rng.uniform(0, 1, n).astype(np.float32)
    classes = rng.integers(0, 3, n)
    for cls in (None, classes):
        kept = nms(boxes, scores, 0.5, cls)
        expected: list[int] = []
        for i in np.argsort(-scores):
            same = [k for k in expected if cls is None or cls[k] == cls[i]]
            if not same or box_iou(boxes[i], boxes[same]).max() <= 0.5:
                expected.append(int(i))
        assert kept.tolist() == expected


def test_overlap_equals_the_column_by_column_arithmetic_exactly() -> None:
    """IoU, intersection over the smaller box and coverage do x and y together: the same floats, bit for
    bit, as each column on its own, on boxes that overlap, touch, lie apart, have zero area or are
    inverted (x2 < x1), in float32 and float64."""
    from vision.geometry import covered, pairwise_iou

    rng = np.random.default_rng(11)
    xy = rng.uniform(0, 100, (60, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(-5, 40, (60, 2))], axis=1)
    boxes[:6, 2:] = boxes[:6, :2]  # zero area
    boxes[6:9, 2] = boxes[6:9, 0]  # zero width
    boxes[9:12] = boxes[12:15] + np.array([60, 0, 60, 0])  # touching or far apart
    boxes[15:18] = boxes[18:21]  # identical pairs
    for dtype in (np.float32, np.float64):
        a, b = boxes[:25].astype(dtype), boxes[20:].astype(dtype)
        x1, y1, x2, y2 = (c[:, None] for c in a.T)
        u1, v1, u2, v2 = (c[None] for c in b.T)
        inter = np.maximum(np.minimum(x2, u2) - np.maximum(x1, u1), 0) * np.maximum(
            np.minimum(y2, v2) - np.maximum(y1, v1), 0
        )
        area_a, area_b = (x2 - x1) * (y2 - y1), (u2 - u1) * (v2 - v1)
        expected = inter / np.maximum(area_a + area_b - inter, 1e-9)
        smaller = inter / np.maximum(np.minimum(area_a, area_b), 1e-9)
        fraction = (inter / np.maximum(area_a, 1e-9)).max(axis=1)
        for got, want in (
            (pairwise_iou(a, b), expected),
            (pairwise_iou(a, b, smaller=True), smaller),
            (covered(a, b), fraction),
        ):
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
        assert (expected == 0).any() and (expected > 0).any() and (area_a == 0).any()


def test_grouped_nms_equals_one_call_over_many_boxes() -> None:
    """Past one block the SSD's NMS runs per group (image and class): the same boxes kept, in order."""
    from vision.detect.nms import BLOCK, nms
    from vision.detect.ssd import grouped_nms

    rng = np.random.default_rng(5)
    n = 3 * BLOCK
    xy = rng.uniform(0, 100, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (n, 2))], axis=1).astype(np.float32)
    scores = np.sort(rng.uniform(0, 1, n).astype(np.float32))[::-1]  # best first, as the decoder hands them
    group = rng.integers(0, 7, n)
    for limit in (n, 5):
        one = nms(boxes, scores, 0.5, class_id=group)
        expected = np.sort(np.concatenate([one[group[one] == g][:limit] for g in range(7)]))
        np.testing.assert_array_equal(grouped_nms(boxes, scores, 0.5, group, limit), expected)


def test_onnx_runtime_threads_spin_only_when_asked() -> None:
    """Spinning threads take the cores many cameras' readers need: off unless detector.spin says so."""
    for spin, expected in ((False, "0"), (True, "1")):
        detector = Detector.from_config(DetectorConfig(spin=spin))
        options = detector.engine.model.session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == expected
    assert DetectorConfig().spin is False
    # same boxes either way: spinning changes how threads wait, not what they compute
    image = cv2.imread(str(IMAGES / sorted(p.name for p in IMAGES.iterdir())[0]))
    boxes = [Detector.from_config(DetectorConfig(spin=s)).detect([image])[0].xyxy for s in (False, True)]
    assert np.array_equal(boxes[0], boxes[1])


def test_ssd_decode_keeps_what_its_definition_keeps(detector: Detector) -> None:
    """The SSD decoder's shortcuts (a cap skipped when no image exceeds it, the one-label pass skipped
    when one class is left) keep exactly what the plain definition keeps, on the model's outputs for
    real pictures: every score over min_score, best first, per-class NMS, the best max_det, then a
    class-agnostic pass at SAME_OBJECT_IOU, boxes mapped to source pixels."""
    from vision.detect.nms import nms
    from vision.detect.params import DecodeParams
    from vision.detect.preprocess import place, to_source, to_tensor
    from vision.detect.ssd import SAME_OBJECT_IOU, decode_ssd_boxes

    spec = detector.card.input
    images = [cv2.imread(str(IMAGES / n)) for n in ("bus.jpg", "dog.jpg", "zidane.jpg", "horses.jpg")]
    placed = [place(image, spec) for image in images]
    boxes, scores = detector.engine.model.run(to_tensor([p for p, _ in placed], spec))  # type: ignore[attr-defined]
    one_class = 0
    for min_score in (0.05, 0.3, 0.5, 0.7):
        for iou in (0.6, 0.9):
            params = DecodeParams(min_score=min_score, iou=iou)
            decoded = decode_ssd_boxes([boxes, scores], [g for _, g in placed], params)
            for i, (_, geometry) in enumerate(placed):
                class_id, anchor = np.nonzero(scores[i] >= min_score)
                score = scores[i][class_id, anchor]
                best = np.argsort(-score, kind="stable")
                class_id, anchor, score = class_id[best], anchor[best], score[best]
                yxyx = boxes[i][anchor]
                keep = nms(yxyx, score, iou, class_id=class_id)[: params.max_det]
                one_class += len(keep) > 1 and len(set(class_id[keep].tolist())) == 1
                keep = np.sort(keep[nms(yxyx[keep], score[keep], SAME_OBJECT_IOU)])
                size = np.array([geometry.input_width, geometry.input_height] * 2, np.float32)
                xyxy = to_source(yxyx[keep][:, [1, 0, 3, 2]] * size, geometry)
                np.testing.assert_array_equal(decoded[i].xyxy, xyxy)
                np.testing.assert_array_equal(decoded[i].score, score[keep])
                np.testing.assert_array_equal(decoded[i].class_id, class_id[keep])
    assert one_class > 0  # the one-class shortcut was taken, and kept the same boxes


def test_ssd_decode_of_nothing_scored_is_what_the_whole_path_gives_an_empty_image() -> None:
    """Outputs with no score at min_score (most frames of a quiet street) skip the sorting and NMS: each
    image gets the Detections the whole path gives an image without boxes in a batch with boxes in it
    (same arrays' dtypes and shapes), one object per image."""
    from vision.detect.params import DecodeParams
    from vision.detect.preprocess import place
    from vision.detect.ssd import decode_ssd_boxes

    rng = np.random.default_rng(3)
    boxes = np.sort(rng.uniform(0, 1, (2, 50, 4)).astype(np.float32), axis=2)[..., [0, 2, 1, 3]]
    scores = rng.uniform(0, 0.3, (2, 5, 50)).astype(np.float32)
    scores[0, 2, 7] = 0.9  # the first image has one box, the second none
    geometries = [place(np.zeros((360, 640, 3), np.uint8), load_card(DEFAULT_CARD).input)[1]] * 2
    params = DecodeParams(min_score=0.5, iou=0.6)
    mixed = decode_ssd_boxes([boxes, scores], geometries, params)
    assert [len(d) for d in mixed] == [1, 0]
    nothing = decode_ssd_boxes([boxes[1:], scores[1:]], geometries[1:], params)
    alone = decode_ssd_boxes([boxes, np.where(scores > 0.5, 0, scores)], geometries, params)
    for empty in (*nothing, *alone):
        for name in ("xyxy", "score", "class_id", "track_id"):
            got, whole = getattr(empty, name), getattr(mixed[1], name)
            assert (got.dtype, got.shape) == (whole.dtype, whole.shape), name
    assert alone[0] is not alone[1]


@pytest.mark.parametrize("min_score", [0.9, 0.5])  # within one NMS block, and past it (thousands of boxes)
def test_ssd_decode_equals_greedy_nms_one_box_at_a_time(min_score: float) -> None:
    """Both NMS passes of the SSD decoder (per image and class at ``iou``, then per image across classes at
    SAME_OBJECT_IOU), which within one block settle from ONE IoU matrix computed for the first pass, keep
    what the plain greedy algorithm keeps, one box at a time against every box kept before it (torchvision's
    definition): on a batch of 3 images whose boxes crowd around a few spots, with classes mixed, at an IoU
    below and above the one-label pass's and with max_det cutting in."""
    from vision.detect.nms import BLOCK
    from vision.detect.params import DecodeParams
    from vision.detect.preprocess import place, to_source
    from vision.detect.ssd import SAME_OBJECT_IOU, decode_ssd_boxes
    from vision.geometry import box_iou

    rng = np.random.default_rng(7)
    images, classes, anchors = 3, 4, 200
    centre = rng.uniform(0.2, 0.8, (6, 2))[rng.integers(0, 6, (images, anchors))] + rng.normal(
        0, 0.02, (images, anchors, 2)
    )
    half = rng.uniform(0.05, 0.15, (images, anchors, 2))
    boxes = np.concatenate([centre - half, centre + half], axis=2).astype(
        np.float32
    )  # ymin, xmin, ymax, xmax
    scores = rng.uniform(0, 1, (images, classes, anchors)).astype(np.float32)
    spec = load_card(DEFAULT_CARD).input
    geometries = [
        place(np.zeros((h, w, 3), np.uint8), spec)[1] for h, w in ((576, 768), (360, 640), (1080, 1920))
    ]
    blocks = set()

    def greedy(order: list[int], yxyx: np.ndarray, threshold: float, key: np.ndarray) -> list[int]:
        kept: list[int] = []
        for j in order:
            rivals = [k for k in kept if key[k] == key[j]]
            if not rivals or box_iou(yxyx[j], yxyx[rivals]).max() <= threshold:
                kept.append(j)
        return kept

    for iou in (0.5, 0.9):
        for max_det in (300, 4):
            params = DecodeParams(min_score=min_score, iou=iou, max_det=max_det)
            decoded = decode_ssd_boxes([boxes, scores], geometries, params)
            blocks.add(int((scores >= min_score).sum()) <= BLOCK)
            for i, geometry in enumerate(geometries):
                class_id, anchor = np.nonzero(scores[i] >= min_score)
                score = scores[i][class_id, anchor]
                order = np.argsort(-score, kind="stable").tolist()  # ties: class, then anchor
                yxyx = boxes[i][anchor]
                kept = greedy(order, yxyx, iou, class_id)[:max_det]
                kept = greedy(kept, yxyx, SAME_OBJECT_IOU, np.zeros(len(score)))
                size = np.array([geometry.input_width, geometry.input_height] * 2, np.float32)
                xyxy = to_source(yxyx[kept][:, [1, 0, 3, 2]] * size, geometry)
                assert len(kept) > 1
                np.testing.assert_array_equal(decoded[i].xyxy, xyxy)
                np.testing.assert_array_equal(decoded[i].score, score[kept])
                np.testing.assert_array_equal(decoded[i].class_id, class_id[kept])
    assert blocks == {min_score == 0.9}  # the batch's candidates fit one block, or do not
