"""Decoders for Ultralytics YOLO exports, reproducing Ultralytics' own post-processing.

Three output layouts, all per image of the batch:

- ``yolo-v8`` head (YOLOv8, YOLO11, YOLO26 and the anchor-free yolov5u): [4+nc, anchors],
  rows cx, cy, w, h then one sigmoid score per class;
- ``yolo-v5`` original head: [anchors, 5+nc], cx, cy, w, h, objectness, class
  probabilities, where a class's score is objectness x probability;
- embedded NMS (exported with ``nms=True``, or YOLO26's NMS-free end-to-end head):
  [max_det, 6] rows x1, y1, x2, y2, score, class, zero-padded.

As in Ultralytics' ``non_max_suppression``: keep a box when its best class scores
above the threshold (strictly), take at most ``max_nms`` best, class-aware NMS, at
most ``max_det`` kept; boxes are then mapped back to source pixels and clipped.
"""

from __future__ import annotations

import numpy as np

from vision.detect.nms import nms
from vision.detect.params import DecodeParams
from vision.detect.preprocess import Geometry, to_source
from vision.types import Detections


def _finish(
    xywh: np.ndarray, score: np.ndarray, class_id: np.ndarray, geometry: Geometry, params: DecodeParams
) -> Detections:
    """Top max_nms by score, xywh -> xyxy, class-aware NMS, back to source pixels."""
    if len(score) > params.max_nms:
        top = np.argpartition(-score, params.max_nms)[: params.max_nms]
        xywh, score, class_id = xywh[top], score[top], class_id[top]
    xyxy = np.empty_like(xywh)
    half = xywh[:, 2:] / 2
    xyxy[:, :2] = xywh[:, :2] - half
    xyxy[:, 2:] = xywh[:, :2] + half
    kept = nms(xyxy, score, params.iou, class_id, params.max_det)
    return Detections.from_arrays(to_source(xyxy[kept], geometry), score[kept], class_id[kept])


def decode_yolo_v8(
    outputs: list[np.ndarray], geometries: list[Geometry], params: DecodeParams
) -> list[Detections]:
    """[B, 4+nc, anchors] -> Detections per image."""
    pred = outputs[0]
    results = []
    for i, geometry in enumerate(geometries):
        scores = pred[i, 4:]
        best = scores.max(axis=0)
        cand = np.flatnonzero(best > params.min_score)
        class_id = scores[:, cand].argmax(axis=0).astype(np.int32)
        results.append(_finish(pred[i][:4, cand].T, best[cand], class_id, geometry, params))
    return results


def decode_yolo_v5(
    outputs: list[np.ndarray], geometries: list[Geometry], params: DecodeParams
) -> list[Detections]:
    """[B, anchors, 5+nc] -> Detections per image; a class's score is objectness x probability."""
    pred = outputs[0]
    results = []
    for i, geometry in enumerate(geometries):
        rows = pred[i, pred[i, :, 4] > params.min_score]
        scores = rows[:, 5:] * rows[:, 4:5]
        class_id = scores.argmax(axis=1).astype(np.int32)
        score = scores[np.arange(len(rows)), class_id]
        ok = score > params.min_score
        results.append(_finish(rows[ok, :4], score[ok], class_id[ok], geometry, params))
    return results


def decode_embedded_nms(
    outputs: list[np.ndarray], geometries: list[Geometry], params: DecodeParams
) -> list[Detections]:
    """[B, max_det, 6] (NMS done by the model) -> Detections per image: score filter and mapping only."""
    pred = outputs[0]
    results = []
    for i, geometry in enumerate(geometries):
        rows = pred[i, pred[i, :, 4] > params.min_score][: params.max_det]
        results.append(
            Detections.from_arrays(to_source(rows[:, :4], geometry), rows[:, 4], rows[:, 5].astype(np.int32))
        )
    return results
