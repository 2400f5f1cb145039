"""Boxes that cannot be real, by a rule each model card states (``max_box_fraction``).

A detector can hallucinate one huge box over a busy frame: the embedded SSD calls a
crowded plaza a single "person" covering most of it, and the tracker then follows that
box for the whole clip. No real object of that class fills so much of a street camera's
view, so the card says, per label, the largest share of the frame a box may cover.
"""

from __future__ import annotations

import numpy as np

from vision.detect.card import ModelCard
from vision.types import Detections


class BoxLimits:
    """Largest box area per class id, as a fraction of the frame (1.0: no limit)."""

    def __init__(self, fraction: np.ndarray) -> None:
        self.fraction = fraction  # float32 [max class id + 1]

    @classmethod
    def of(cls, card: ModelCard) -> BoxLimits | None:
        """The card's limits, or None when it sets none."""
        if not card.max_box_fraction:
            return None
        default = card.max_box_fraction.get("all", 1.0)
        fraction = np.full(max(card.labels) + 1, default, np.float32)
        for class_id, label in card.labels.items():
            fraction[class_id] = card.max_box_fraction.get(label, default)
        return cls(fraction)

    def fits(self, detections: Detections, width: int, height: int) -> np.ndarray:
        """Bool mask of the detections whose box covers no more of the ``width`` x ``height`` frame than
        its class may."""
        xyxy = detections.xyxy
        share = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1]) / float(width * height)
        limit = np.take(self.fraction, detections.class_id, mode="clip")  # np.clip's wrapper costs 4x this
        return share <= limit
