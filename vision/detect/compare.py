"""How far one model's detections are from another's on the same frames.

Used to check the ONNX path against Ultralytics, and to report what INT8
quantization moved: boxes are paired one to one, same class, best IoU first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vision.geometry import pairwise_iou
from vision.types import Detections

SAME_PX = 1e-2  # box corners this close are one box (float rounding between two runs of a model)


def match(a: Detections, b: Detections, min_iou: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (index in a, index in b, IoU) of same-class boxes, greedily by IoU, each box used once."""
    if len(a) == 0 or len(b) == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.float32)
    iou = pairwise_iou(a.xyxy, b.xyxy)
    # zero-area boxes (clipped to an edge) have no IoU: equal to float rounding (SAME_PX), one box
    iou[np.all(np.abs(a.xyxy[:, None] - b.xyxy[None]) <= SAME_PX, axis=-1)] = 1.0
    iou[a.class_id[:, None] != b.class_id[None, :]] = 0
    ia, ib = np.nonzero(iou >= min_iou)
    order = np.argsort(-iou[ia, ib], kind="stable")
    used_a, used_b = np.zeros(len(a), bool), np.zeros(len(b), bool)
    pairs = []
    for k in order:
        i, j = ia[k], ib[k]
        if not used_a[i] and not used_b[j]:
            used_a[i] = used_b[j] = True
            pairs.append((i, j))
    pa, pb = (
        (np.array(x, np.int64) for x in zip(*pairs, strict=True)) if pairs else (np.zeros(0, np.int64),) * 2
    )
    return pa, pb, iou[pa, pb]


@dataclass
class Drift:
    """Totals over frames of how a candidate's detections differ from a reference's."""

    reference: int = 0
    matched: int = 0
    missed: int = 0  # in the reference, not in the candidate
    extra: int = 0  # in the candidate, not in the reference
    ious: list[float] = field(default_factory=list)
    score_deltas: list[float] = field(default_factory=list)

    def add(self, reference: Detections, candidate: Detections) -> None:
        ia, ib, iou = match(reference, candidate)
        self.reference += len(reference)
        self.matched += len(ia)
        self.missed += len(reference) - len(ia)
        self.extra += len(candidate) - len(ib)
        self.ious += iou.tolist()
        self.score_deltas += (candidate.score[ib] - reference.score[ia]).tolist()

    def to_record(self) -> dict[str, Any]:
        deltas = np.abs(np.asarray(self.score_deltas, np.float64))
        return {
            "reference_boxes": self.reference,
            "matched": self.matched,
            "missed": self.missed,
            "extra": self.extra,
            "mean_iou": round(float(np.mean(self.ious)), 4) if self.ious else None,
            "mean_abs_score_delta": round(float(deltas.mean()), 4) if deltas.size else None,
            "max_abs_score_delta": round(float(deltas.max()), 4) if deltas.size else None,
        }
