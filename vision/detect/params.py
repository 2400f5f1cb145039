"""Thresholds shared by every decoder and backend."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DecodeParams:
    """What is kept of a model's raw output; the defaults are Ultralytics' predict defaults.

    ``max_nms`` caps how many boxes enter NMS (best scores first), as Ultralytics does,
    so a low threshold on a noisy frame cannot make NMS the slowest step. ``classes``: the class ids
    the caller keeps (None: all); a decoder may return nothing for a batch in which none of them
    scores ``min_score``, since the caller drops the other classes' boxes anyway.
    """

    min_score: float = 0.25
    iou: float = 0.7
    max_det: int = 300
    max_nms: int = 30000
    classes: tuple[int, ...] | None = None
