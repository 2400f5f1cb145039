"""Ultralytics/PyTorch backend: runs YOLO .pt checkpoints (or .onnx exports) through Ultralytics itself.

For GPU users and for models that are not exported yet; its pre- and post-processing
are Ultralytics' own, so its boxes are the reference the ONNX path is tested against.
Ultralytics is an optional dependency (the `yolo` extra), imported only here; it is
kept from reaching the network (no downloads, no pip installs, no telemetry).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from vision.detect.card import ModelCard, ModelError
from vision.detect.params import DecodeParams
from vision.types import Detections

OFFLINE = {"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "False", "YOLO_VERBOSE": "False"}
DEVICES = {"cpu": "cpu", "cuda": "cuda:0"}


def load_yolo(path: Path) -> Any:
    """An ultralytics.YOLO for a local file, or a ModelError saying what to install or fix."""
    for key, value in OFFLINE.items():
        os.environ.setdefault(key, value)
    try:
        from ultralytics import YOLO
    except ImportError as exc:
        raise ModelError(
            f"model {path}: detector.backend ultralytics needs the `yolo` extra ({exc}): "
            "pip install torch && pip install 'street-vision[yolo]'"
        ) from None
    from ultralytics.utils import SETTINGS

    SETTINGS.update(sync=False)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    try:
        return YOLO(str(path), task="detect")
    except Exception as exc:  # torch and ultralytics raise many types for a bad file
        raise ModelError(f"model file {path}: Ultralytics cannot load it: {exc}") from None


class UltralyticsModel:
    """A YOLO model run by Ultralytics on batches of BGR frames."""

    def __init__(self, card: ModelCard, device: str, params: DecodeParams) -> None:
        if device not in DEVICES:
            raise ModelError(
                f"detector.device {device} is for ONNX Runtime; the ultralytics backend takes cpu or cuda"
            )
        self.card = card
        self.device = DEVICES[device]
        self.params = params
        self.model = load_yolo(card.model_path)
        names = {int(k): str(v) for k, v in self.model.names.items()}
        if names != card.labels:
            raise ModelError(
                f"model file {card.model_path} has {len(names)} classes "
                f"({', '.join(list(names.values())[:4])}, ...), but its card {card.card_path} "
                f"lists {len(card.labels)} labels that differ: "
                f"rewrite it with street-vision models card {card.model_path.name}"
            )

    def infer(self, images: list[np.ndarray]) -> list[Detections]:
        """Detections per image in source pixels, exactly as Ultralytics' predict returns them.

        Ultralytics letterboxes a batch of mixed sizes to the full square (its rect mode
        needs one shape per batch), so frames go in one batch per frame size.
        """
        spec, p = self.card.input, self.params
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(images):
            by_shape.setdefault(image.shape, []).append(i)
        out: list[Detections] = [Detections.empty()] * len(images)
        for indices in by_shape.values():
            results = self.model.predict(
                [images[i] for i in indices],
                imgsz=(spec.height, spec.width),
                conf=p.min_score,
                iou=p.iou,
                max_det=p.max_det,
                device=self.device,
                verbose=False,
            )
            for i, r in zip(indices, results, strict=True):
                boxes = r.boxes.cpu().numpy()
                out[i] = Detections.from_arrays(boxes.xyxy, boxes.conf, boxes.cls)
        return out
