"""Decoder for SSD models with the TFLite post-process op (NMS inside the model).

Outputs are normalized ymin, xmin, ymax, xmax boxes, class ids, scores and a count;
what is left is the score filter and the mapping back to source pixels. TFLite's
post-process gives each box one class, but the ONNX conversion runs NMS per class,
so one object can come back as "car" and "truck": a class-agnostic pass at a high
IoU restores one label per object without merging distinct, overlapping objects.
"""

from __future__ import annotations

import numpy as np

from vision.detect.nms import nms
from vision.detect.params import DecodeParams
from vision.detect.preprocess import Geometry, to_source
from vision.types import Detections

SAME_OBJECT_IOU = 0.8


def decode_ssd(
    outputs: list[np.ndarray], geometries: list[Geometry], params: DecodeParams
) -> list[Detections]:
    """Per image of the batch: boxes scoring at least ``min_score``, in source pixels."""
    boxes, classes, scores, counts = outputs
    results = []
    for i, geometry in enumerate(geometries):
        n = int(counts[i])
        size = np.array([geometry.input_height, geometry.input_width] * 2, np.float32)
        keep = np.flatnonzero(scores[i, :n] >= params.min_score)
        keep = keep[nms(boxes[i, keep], scores[i, keep], SAME_OBJECT_IOU)]
        xyxy = to_source(boxes[i, keep][:, [1, 0, 3, 2]] * size, geometry)
        results.append(Detections.from_arrays(xyxy, scores[i, keep], classes[i, keep].astype(np.int32)))
    return results
