"""Decoder for SSD models cut before their post-process: boxes and per-class scores in, Detections out.

The model (family ``ssd-boxes``) returns, for a batch of B images, ``boxes`` [B, anchors, 4]
(normalized ymin, xmin, ymax, xmax, already decoded from the anchors inside the graph) and
``scores`` [B, classes, anchors]. The score filter and NMS run here, over the whole batch
at once: a box only competes with boxes of its own image and class (one NMS call with
image and class folded into one key), as in the per-class NonMaxSuppression the converted
TFLite graph ran. Ties keep the graph's order (class, then anchor), so the result is the
one the post-processed model gave. A second, class-agnostic pass at a high IoU gives one
label per object (the per-class NMS can return one object as "car" and "truck") without
merging distinct, overlapping objects.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from vision.detect.card import ModelCard, ModelError
from vision.detect.nms import BLOCK, nms, settle
from vision.detect.params import DecodeParams
from vision.detect.preprocess import Geometry
from vision.geometry import pairwise_iou
from vision.types import Detections

SAME_OBJECT_IOU = 0.8


def check_ssd_boxes(card: ModelCard, shapes: list[list[int | str | None]], metadata: dict[str, Any]) -> None:
    """Fail, naming file and card, when the file's outputs are not boxes [B, A, 4] and scores [B, C, A]
    with a score row for every label of the card (``metadata``: the file's, which says nothing here)."""
    labels = max(card.labels) + 1 if card.labels else 0
    if len(shapes) == 2 and all(len(s) == 3 for s in shapes):
        (_, anchors, four), (_, classes, scored) = shapes
        fits = four == 4 and (not isinstance(classes, int) or classes >= labels)
        if fits and (anchors == scored or not isinstance(anchors, int) or not isinstance(scored, int)):
            return
    raise ModelError(
        f"model file {card.model_path} has outputs {shapes} for {card.outputs}, but its card "
        f"{card.card_path} says family ssd-boxes: boxes [B, anchors, 4] and scores [B, classes, anchors] "
        f"for labels 0..{labels - 1}"
    )


def first_per_image(image: np.ndarray, limit: int) -> np.ndarray:
    """Mask of the first ``limit`` entries of each image, in the given (best-first) order."""
    order = np.argsort(image, kind="stable")
    counts = np.bincount(image)
    rank = np.empty(len(image), np.int64)
    rank[order] = np.arange(len(image)) - np.repeat(np.cumsum(counts) - counts, counts)
    return rank < limit


def block_iou(boxes: np.ndarray) -> np.ndarray | None:
    """The [n, n] IoU matrix that settles up to one block of boxes (in float32, as :func:`nms` computes
    it); None past one block."""
    if len(boxes) > BLOCK:
        return None
    boxes = boxes.astype(np.float32, copy=False)
    return pairwise_iou(boxes, boxes)


def grouped_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou: float,
    group: np.ndarray,
    limit: int,
    overlap: np.ndarray | None = None,
) -> np.ndarray:
    """NMS in which boxes of different groups never suppress each other, at most ``limit`` kept per group.

    The inputs come best first (ties in the order the graph breaks them), so the kept indices,
    sorted, are best first too. Up to one block of boxes this settles their IoU matrix (``overlap``
    when the caller has it: the decoder's second pass takes its boxes' rows and columns of the
    first's, not a matrix of its own); past it (a low min_score gives thousands of boxes) one call
    per group, each stopping at ``limit``, so the cost grows with a group's own boxes and not with
    the whole batch's.
    """
    if len(scores) <= BLOCK:
        # best first already: nms's stable sort by score would leave the order as it is
        keep = settle((block_iou(boxes) if overlap is None else overlap) > iou, group, None)
        return keep[first_per_image(group[keep], limit)] if len(keep) > limit else keep
    order = np.argsort(group, kind="stable")
    parts = np.split(order, np.flatnonzero(np.diff(group[order])) + 1)
    return np.sort(
        np.concatenate([part[nms(boxes[part], scores[part], iou, max_det=limit)] for part in parts])
    )


def decode_ssd_boxes(
    outputs: list[np.ndarray], geometries: list[Geometry], params: DecodeParams
) -> list[Detections]:
    """Per image of the batch: boxes scoring at least ``min_score`` after NMS, in source pixels."""
    boxes, scores = outputs
    # nothing scored (most frames of a quiet street): nothing to sort or suppress, ~30 numpy calls fewer;
    # the best score tells in one pass that writes nothing, then, where only classes the caller drops
    # scored (a parked car), the best of the kept classes' rows (a NaN falls through to the filter)
    kept = params.classes
    if scores.size and (
        scores.max() < params.min_score
        or (kept is not None and (not kept or scores[:, kept].max() < params.min_score))
    ):
        return [Detections.empty() for _ in geometries]
    flat = np.flatnonzero(scores >= params.min_score)  # by image, class, anchor; 10x np.nonzero's speed
    if not len(flat):
        return [Detections.empty() for _ in geometries]
    score = scores.reshape(-1)[flat]
    best = np.argsort(-score, kind="stable")
    if len(best) > params.max_nms:  # no image can have more than all of them
        best = best[first_per_image(flat[best] // (scores.shape[1] * scores.shape[2]), params.max_nms)]
    score = score[best]
    image, class_id, anchor = np.unravel_index(flat[best], scores.shape)  # best first: one index, not four
    yxyx = boxes[image, anchor]
    overlap = block_iou(yxyx)  # the second pass's boxes are some of the first's: one matrix for both
    group = image * scores.shape[1] + class_id
    keep = grouped_nms(yxyx, score, params.iou, group, params.max_det, overlap)
    if len(keep) > params.max_det:
        keep = keep[first_per_image(image[keep], params.max_det)]
    labels = class_id[keep]
    # boxes the per-class NMS kept overlap by at most params.iou within a class: the one-label pass
    # (a higher IoU) can then only drop a box of another class, and has nothing to do with one class
    if params.iou > SAME_OBJECT_IOU or (len(labels) > 1 and (labels != labels[0]).any()):
        inner = None if overlap is None else overlap[keep[:, None], keep]
        keep = keep[grouped_nms(yxyx[keep], score[keep], SAME_OBJECT_IOU, image[keep], params.max_det, inner)]
    if len(geometries) > 1:  # one image: already in order
        keep = keep[np.argsort(image[keep], kind="stable")]  # by image, best first within each
    return by_image(yxyx[keep], score[keep], class_id[keep], image[keep], geometries)


def by_image(
    yxyx: np.ndarray, score: np.ndarray, class_id: np.ndarray, image: np.ndarray, geometries: list[Geometry]
) -> list[Detections]:
    """The kept boxes (normalized yxyx, sorted by ``image``) in each image's source pixels, one Detections
    per image: mapped all at once (each row by its image's geometry, the arithmetic of :func:`to_source`
    row for row), then cut into runs, so the cost does not grow with the batch's images."""
    table = np.array(
        [
            (g.input_width, g.input_height) * 2
            + (g.pad_x, g.pad_y) * 2
            + (g.scale_x, g.scale_y) * 2
            + (g.width, g.height) * 2
            for g in geometries
        ],
        np.float32,
    ).reshape(-1, 16)
    rows = table if len(table) == 1 else table[image]  # one image's row broadcasts over its boxes
    size, pad, scale, limit = rows[:, 0:4], rows[:, 4:8], rows[:, 8:12], rows[:, 12:16]
    xyxy = yxyx[:, [1, 0, 3, 2]] * size
    xyxy = ((xyxy - pad) / scale).astype(np.float32, copy=False)
    np.maximum(xyxy, 0, out=xyxy)
    np.minimum(xyxy, limit, out=xyxy)
    class_id = class_id.astype(np.int32)
    track_id = np.full(len(score), -1, np.int64)
    bounds = np.searchsorted(image, np.arange(len(geometries) + 1)).tolist()
    return [
        Detections(xyxy[a:b], score[a:b], class_id[a:b], track_id[a:b]) for a, b in itertools.pairwise(bounds)
    ]
