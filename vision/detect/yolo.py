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

from collections.abc import Callable

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


def _v8(pred: np.ndarray, geometry: Geometry, params: DecodeParams) -> Detections:
    """[4+nc, anchors]: the best class's sigmoid score is the box's score."""
    scores = pred[4:]
    best = scores.max(axis=0)
    cand = np.flatnonzero(best > params.min_score)
    class_id = scores[:, cand].argmax(axis=0).astype(np.int32)
    return _finish(pred[:4, cand].T, best[cand], class_id, geometry, params)


def _v5(pred: np.ndarray, geometry: Geometry, params: DecodeParams) -> Detections:
    """[anchors, 5+nc]: a class's score is objectness x probability."""
    rows = pred[pred[:, 4] > params.min_score]
    scores = rows[:, 5:] * rows[:, 4:5]
    class_id = scores.argmax(axis=1).astype(np.int32)
    score = scores[np.arange(len(rows)), class_id]
    ok = score > params.min_score
    return _finish(rows[ok, :4], score[ok], class_id[ok], geometry, params)


def _embedded(pred: np.ndarray, geometry: Geometry, params: DecodeParams) -> Detections:
    """[max_det, 6], NMS done by the model: score filter and mapping only."""
    rows = pred[pred[:, 4] > params.min_score][: params.max_det]
    return Detections.from_arrays(to_source(rows[:, :4], geometry), rows[:, 4], rows[:, 5].astype(np.int32))


def _batched(
    one: Callable[[np.ndarray, Geometry, DecodeParams], Detections],
) -> Callable[[list[np.ndarray], list[Geometry], DecodeParams], list[Detections]]:
    """A decoder of the whole batch output from one that decodes one image's rows."""

    def decode(
        outputs: list[np.ndarray], geometries: list[Geometry], params: DecodeParams
    ) -> list[Detections]:
        return [one(outputs[0][i], geometry, params) for i, geometry in enumerate(geometries)]

    decode.__doc__ = one.__doc__
    return decode


decode_yolo_v8 = _batched(_v8)
decode_yolo_v5 = _batched(_v5)
decode_embedded_nms = _batched(_embedded)
