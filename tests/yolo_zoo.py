"""Tiny real YOLO models built during the test run from Ultralytics' own YAMLs.

No pretrained weights can be downloaded here, so each architecture is trained for
~240 steps on generated pictures of squares, circles and triangles (64 px, plain
SGD, no augmentation): enough to give real, input-dependent boxes and scores, and
10-20 s per model on two cores. (At ~120 steps, 15 epochs, YOLO11n scored nothing
over 0.03 on an AVX-512 machine whose float arithmetic led its training elsewhere,
while it found its shapes on AVX2 machines; at 30 epochs every architecture here
finds them on both.) Then it is exported the ways users export:
fixed square, fixed rectangle, dynamic axes, nms=True, and YOLO26's NMS-free head.
Nothing here is committed; everything lives in a pytest tmp folder.

One real model too: the shared YOLOv8n COCO INT8 file is dynamically quantized, so
its weights are int8 with a scale each; dequantized into Ultralytics' fused
yolov8n.yaml they make a float COCO YOLOv8n checkpoint (real detections) that can be
exported at any size, run through the Ultralytics backend, and quantized again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

CLASSES = {0: "square", 1: "circle", 2: "triangle"}
COLORS = [(40, 40, 220), (40, 200, 40), (220, 60, 40)]
SIZE = 128


def offline(config_dir: Path) -> None:
    """Keep Ultralytics off the network and out of the home folder (before it is imported)."""
    os.environ.update(
        YOLO_OFFLINE="1", YOLO_AUTOINSTALL="False", YOLO_VERBOSE="False", YOLO_CONFIG_DIR=str(config_dir)
    )


def shapes_image(rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """A flat background with 1-3 filled shapes, and their YOLO label lines."""
    image = np.full((SIZE, SIZE, 3), int(rng.integers(60, 200)), np.uint8)
    lines = []
    for _ in range(int(rng.integers(1, 4))):
        c, s = int(rng.integers(0, 3)), int(rng.integers(20, 50))
        x, y = int(rng.integers(0, SIZE - s)), int(rng.integers(0, SIZE - s))
        if c == 0:
            cv2.rectangle(image, (x, y), (x + s, y + s), COLORS[c], -1)
        elif c == 1:
            cv2.circle(image, (x + s // 2, y + s // 2), s // 2, COLORS[c], -1)
        else:
            cv2.fillPoly(image, [np.array([[x + s // 2, y], [x, y + s], [x + s, y + s]])], COLORS[c])
        lines.append(f"{c} {(x + s / 2) / SIZE} {(y + s / 2) / SIZE} {s / SIZE} {s / SIZE}")
    return image, lines


def make_dataset(root: Path, count: int = 32) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", count), ("val", 4)):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        for i in range(n):
            image, lines = shapes_image(rng)
            cv2.imwrite(str(root / split / "images" / f"{i}.png"), image)
            (root / split / "labels" / f"{i}.txt").write_text("\n".join(lines))
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: train/images\nval: val/images\nnames: {CLASSES}\n")
    return data


class Zoo:
    """Trains each architecture once and exports each variant once, on demand."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = make_dataset(root / "shapes")
        self.checkpoints: dict[str, Path] = {}
        self.exports: dict[tuple[str, str], Path] = {}

    def checkpoint(self, arch: str) -> Path:
        """``arch`` is an Ultralytics model YAML name, e.g. yolov8n.yaml."""
        if arch not in self.checkpoints:
            from ultralytics import YOLO

            name = arch.removesuffix(".yaml")
            YOLO(arch).train(
                data=str(self.data), imgsz=64, epochs=30, batch=4, nbs=4, optimizer="SGD", lr0=0.02,
                workers=0, device="cpu", plots=False, val=False, amp=False, seed=0, deterministic=True,
                mosaic=0.0, fliplr=0.0, hsv_h=0.0, hsv_s=0.0, hsv_v=0.0, scale=0.0, translate=0.0,
                erasing=0.0,
                project=str(self.root / "runs"), name=name, exist_ok=True, verbose=False,
            )  # fmt: skip
            self.checkpoints[arch] = self.root / "runs" / name / "weights" / "last.pt"
        return self.checkpoints[arch]

    def coco_checkpoint(self, int8_onnx: Path) -> Path:
        """A float YOLOv8n COCO .pt rebuilt from the shared INT8 ONNX's dequantized weights."""
        if "coco" not in self.checkpoints:
            from vision.tuning.rebuild import rebuild

            self.checkpoints["coco"] = rebuild(int8_onnx, "yolov8n.yaml", self.root / "yolov8n_coco.pt")
        return self.checkpoints["coco"]

    def export(self, arch: str, variant: str) -> Path:
        """An ONNX export of ``arch``: square, rect, dynamic, nms, end2end (YOLO26); for arch "coco"
        (after coco_checkpoint): coco640, coco480 (640x480 for 4:3 footage), cocodyn (dynamic)."""
        key = (arch, variant)
        if key not in self.exports:
            from ultralytics import YOLO

            options: dict[str, Any] = {
                "square": {"imgsz": 160},
                "rect": {"imgsz": (96, 160)},
                "dynamic": {"imgsz": 160, "dynamic": True},
                "nms": {"imgsz": 160, "nms": True},
                "end2end": {"imgsz": 160, "nms": False},
            }.get(variant, {})
            options |= {
                "coco640": {"imgsz": 640},
                "coco480": {"imgsz": (480, 640)},
                "cocodyn": {"imgsz": 640, "dynamic": True},
            }.get(variant, {})
            weights = self.checkpoints["coco"] if arch == "coco" else self.checkpoint(arch)
            made = Path(YOLO(str(weights)).export(format="onnx", **options))
            target = self.root / f"{arch.removesuffix('.yaml')}_{variant}.onnx"
            made.rename(target)
            self.exports[key] = target
        return self.exports[key]
