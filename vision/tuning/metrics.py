"""mAP@0.5 per class of a model card on a dataset split, through our own detector path.

The number a model is judged by is what ``run`` will see: our preprocessing, ONNX
Runtime, our decoding and NMS, scored with the evaluation's AP (vision/evaluate/detection.py)
with image k of the split as frame k.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from vision.detect.card import ModelCard
from vision.detect.detector import Detector
from vision.evaluate.annotations import FrameBoxes
from vision.evaluate.detection import FrameDetections, mean_average_precision
from vision.tuning.errors import TuningError
from vision.tuning.layout import Dataset, read_labels

EVAL_MIN_SCORE = 0.001  # as Ultralytics' val: the whole precision/recall curve counts
BATCH = 8


def split_metrics(card: ModelCard, dataset: Dataset, split: str = "val", threads: int = 0) -> dict[str, Any]:
    """{"split", "images", "boxes", "map50", "ap50": {class: AP}} of ``card`` on a split of ``dataset``."""
    images = dataset.splits[split]
    if not images:
        raise TuningError(f"{dataset.data_yaml}: the {split} split has no images")
    detector = Detector(card, threads=threads, min_score=EVAL_MIN_SCORE)
    truth_rows: list[tuple[int, np.ndarray, np.ndarray]] = []
    found_rows: list[tuple[int, Any]] = []
    for start in range(0, len(images), BATCH):
        paths = images[start : start + BATCH]
        pixels = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths]
        for path, image in zip(paths, pixels, strict=True):
            if image is None:
                raise TuningError(f"{path}: cannot read it as an image ({dataset.data_yaml}, {split})")
        for k, (path, image, found) in enumerate(zip(paths, pixels, detector.detect(pixels), strict=True)):
            xyxy, class_id = read_labels(path, image.shape[1], image.shape[0])
            truth_rows.append((start + k, xyxy, class_id))
            found_rows.append((start + k, found))
    names = dataset.names
    truth = FrameBoxes(
        frames=np.arange(len(images), dtype=np.int64),
        frame=np.concatenate([np.full(len(c), f, np.int64) for f, _, c in truth_rows]),
        xyxy=np.concatenate([x for _, x, _ in truth_rows]).astype(np.float32).reshape(-1, 4),
        label=np.array([names.get(int(c), str(int(c))) for _, _, cs in truth_rows for c in cs], dtype=str),
        ignore=np.zeros(sum(len(c) for _, _, c in truth_rows), bool),
        labels=tuple(names.values()),
    )
    detections = FrameDetections(
        frames=truth.frames,
        frame=np.concatenate([np.full(len(d), f, np.int64) for f, d in found_rows]),
        xyxy=np.concatenate([d.xyxy for _, d in found_rows]).reshape(-1, 4),
        score=np.concatenate([d.score for _, d in found_rows]),
        label=np.array(
            [detector.names.get(int(c), str(int(c))) for _, d in found_rows for c in d.class_id], dtype=str
        ),
    )
    map50, per_class = mean_average_precision(detections, truth)
    return {
        "split": split,
        "images": len(images),
        "boxes": len(truth),
        "map50": None if map50 is None else round(map50, 4),
        "ap50": {k: round(v, 4) for k, v in per_class.items()},
    }
