"""YOLO on ONNX Runtime agrees with Ultralytics' own predict on the same file.

Same classes, box IoU >= 0.99 and scores within 1e-3, on every shared image and on
frames of the shared footage, for every head and export variant Ultralytics makes.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vision.detect.card import load_card
from vision.detect.compare import match
from vision.detect.detector import Detector
from vision.detect.yolo_card import write_card
from vision.types import Detections

from .conftest import FOOTAGE, IMAGES, SHARED

COCO_INT8 = SHARED / "models" / "yolov8n_coco_int8.onnx"


def footage_frames(count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(FOOTAGE))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    frames = []
    for index in np.linspace(0, total - 1, count).astype(int):
        capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        ok, frame = capture.read()
        assert ok, f"cannot read frame {index} of {FOOTAGE}"
        frames.append(frame)
    return frames


def sample_frames() -> list[np.ndarray]:
    return [cv2.imread(str(p)) for p in sorted(IMAGES.glob("*.jpg"))] + footage_frames(4)


def ultralytics_predict(
    model: Path, images: list[np.ndarray], card_path: Path, **kw: float
) -> list[Detections]:
    from ultralytics import YOLO

    spec = load_card(card_path).input
    yolo = YOLO(str(model), task="detect")
    out = []
    for image in images:
        r = yolo.predict(image, imgsz=(spec.height, spec.width), verbose=False, **kw)[0]
        out.append(Detections.from_arrays(r.boxes.xyxy.numpy(), r.boxes.conf.numpy(), r.boxes.cls.numpy()))
    return out


def assert_same(ours: list[Detections], theirs: list[Detections]) -> int:
    """Every box paired one to one, same class, IoU >= 0.99, score within 1e-3; returns the box count."""
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        ia, ib, _ = match(a, b, min_iou=0.99)
        assert len(a) == len(b) == len(ia), (
            f"image {i}: {len(a)} ours, {len(b)} Ultralytics, {len(ia)} paired"
        )
        assert np.all(np.abs(a.score[ia] - b.score[ib]) <= 1e-3), f"image {i}: scores differ"
    return sum(len(b) for b in theirs)


def agree(model: Path, images: list[np.ndarray], min_score: float, iou: float = 0.7) -> int:
    card = write_card(model)
    ours = Detector(load_card(card), threads=2, min_score=min_score, iou=iou).detect(images)
    theirs = ultralytics_predict(model, images, card, conf=min_score, iou=iou)
    return assert_same(ours, theirs)


@pytest.mark.skipif(not COCO_INT8.is_file(), reason=f"{COCO_INT8} is not here")
def test_real_coco_model_agrees_with_ultralytics(zoo, tmp_path: Path) -> None:
    model = tmp_path / COCO_INT8.name
    model.symlink_to(COCO_INT8)
    assert agree(model, sample_frames(), 0.25) > 30  # persons, a bus, a dog, a bicycle, horses...


def shapes_and_photos() -> list[np.ndarray]:
    from .yolo_zoo import shapes_image

    rng = np.random.default_rng(7)
    return [shapes_image(rng)[0] for _ in range(6)] + sample_frames()


@pytest.mark.parametrize(
    ("arch", "variant"),
    [
        ("yolov8n.yaml", "square"),
        ("yolov8n.yaml", "rect"),
        ("yolov8n.yaml", "dynamic"),
        ("yolov8n.yaml", "nms"),
        ("yolo11n.yaml", "square"),
        ("yolov5nu.yaml", "square"),
        ("yolo26n.yaml", "square"),
        ("yolo26n.yaml", "end2end"),
    ],
)
def test_trained_models_agree_with_ultralytics(zoo, arch: str, variant: str) -> None:
    boxes = agree(zoo.export(arch, variant), shapes_and_photos(), 0.05)
    assert boxes >= 6  # the tiny models do find their shapes
