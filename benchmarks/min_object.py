"""How small a person a model still finds: recall against the person's height at the model's input.

The plaza sample's hand-drawn people boxes (sample_videos/plaza.boxes.xml, 10 frames) are
scaled with their frames by several factors and pasted into a grey 1920x1080 picture,
which the model sees whole; each true person counts as found when a person box overlaps
it by IoU 0.5. Recall is binned by the person's height in the model's input pixels. The
model card's ``min_object_px`` is where recall reaches its plateau: the detection
planner (vision/detect/planner.py) tiles a zone whose people would be smaller.

Usage: ``python benchmarks/min_object.py [CARD ...]`` (default: the embedded SSD; writes
min_object.md beside it). Write the YOLOv8n INT8 card first with
``street-vision models card ../shared/data/models/yolov8n_coco_int8.onnx --out /tmp/yolo.yaml``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from vision.detect.card import load_card
from vision.detect.detector import Detector
from vision.evaluate.annotations import load_cvat
from vision.geometry import pairwise_iou

ROOT = Path(__file__).resolve().parents[1]
FACTORS = (1.8, 1.4, 1.0, 0.8, 0.6, 0.45, 0.33)
BINS = ((8, 12), (12, 16), (16, 20), (20, 24), (24, 28), (28, 34), (34, 42), (42, 60), (60, 200))


def recall_by_height(card: str) -> list[tuple[str, int, float]]:
    detector = Detector(load_card(card), threads=2, min_score=0.4)
    truth = load_cvat(ROOT / "sample_videos" / "plaza.boxes.xml")
    wanted, frames = set(truth.frames.tolist()), {}
    capture = cv2.VideoCapture(str(ROOT / "sample_videos" / "plaza.mp4"))
    index = 0
    while (got := capture.read())[0]:
        if index in wanted:
            frames[index] = got[1]
        index += 1
    spec = detector.card.input
    scale = spec.height / 1080 if spec.resize == "stretch" else min(spec.width / 1920, spec.height / 1080)
    rows = []
    for factor in FACTORS:
        for k, frame in frames.items():
            small = cv2.resize(frame, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
            picture = np.full((1080, 1920, 3), 100, np.uint8)
            picture[: small.shape[0], : small.shape[1]] = small[:1080, :1920]
            boxes = truth.xyxy[(truth.frame == k) & ~truth.ignore] * factor
            found = detector.detect([picture])[0]
            people = found.xyxy[found.class_id == 0]
            hit = (
                pairwise_iou(boxes, people).max(axis=1) >= 0.5 if len(people) else np.zeros(len(boxes), bool)
            )
            rows += [((b[3] - b[1]) * scale, h) for b, h in zip(boxes, hit, strict=True)]
    table = np.array(rows, np.float64)
    out = []
    for lo, hi in BINS:
        inside = (table[:, 0] >= lo) & (table[:, 0] < hi)
        if inside.any():
            out.append((f"{lo}-{hi}", int(inside.sum()), float(table[inside, 1].mean())))
    return out


def main(cards: list[str]) -> None:
    lines = [
        "# Recall against a person's height at the model's input",
        "",
        "Written by benchmarks/min_object.py.",
    ]
    for card in cards:
        lines += ["", f"## {Path(card).stem if card != 'default' else 'embedded SSD (default)'}", ""]
        lines += ["| height at the model (px) | people | recall |", "|---|---|---|"]
        lines += [f"| {b} | {n} | {r:.2f} |" for b, n, r in recall_by_height(card)]
    (Path(__file__).with_name("min_object.md")).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:] or ["default"])
