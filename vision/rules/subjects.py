"""Identity by place for objects that stay put (litter, parked bicycles).

A tracker id ends when a detector misses a still object for a while; the object's
place does not. A subject keeps its name while new evidence overlaps its last box,
so one bag or one bicycle keeps one ticket however its evidence flickers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vision.detect.nms import box_iou


@dataclass(slots=True)
class Subject:
    """One object at one place."""

    name: str
    box: np.ndarray
    last_seen: float


class Places:
    """The subjects of one rule in one zone, matched by box overlap."""

    def __init__(self, prefix: str, match_iou: float, forget_after: float) -> None:
        self.prefix = prefix
        self.match_iou = match_iou
        self.forget_after = forget_after
        self.subjects: list[Subject] = []
        self.counter = 0

    def assign(self, boxes: np.ndarray, pts: float) -> dict[str, list[int]]:
        """Rows of ``boxes`` grouped by the subject each belongs to (new subjects are created)."""
        found: dict[str, list[int]] = {}
        for i, box in enumerate(boxes):
            found.setdefault(self._subject_for(box, pts).name, []).append(i)
        return found

    def forget_old(self, pts: float) -> None:
        """Drop subjects unseen for ``forget_after`` seconds (their events closed long ago)."""
        self.subjects = [s for s in self.subjects if pts - s.last_seen <= self.forget_after]

    def _subject_for(self, box: np.ndarray, pts: float) -> Subject:
        if self.subjects:
            overlap = box_iou(box, np.stack([s.box for s in self.subjects]))
            best = int(np.argmax(overlap))
            if overlap[best] >= self.match_iou:
                subject = self.subjects[best]
                subject.box, subject.last_seen = box, pts
                return subject
        self.counter += 1
        subject = Subject(f"{self.prefix}-{self.counter}", box, pts)
        self.subjects.append(subject)
        return subject
