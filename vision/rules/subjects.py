"""Identity by place for objects that stay put (litter, parked bicycles).

A tracker id ends when a detector misses a still object for a while; the object's
place does not. A subject keeps its name while new evidence overlaps its last box,
so one bag or one bicycle keeps one ticket however its evidence flickers. Evidence from a
tracked object (a parked bicycle) also carries its track id: a subject follows the track that last
fed it, whatever that track's box does for a frame (a passer-by in front of the bicycle boxes half
of it), since the tracker already judged it the same object; by place it matches only evidence
of no track or of a new one (a bicycle whose track was lost and found again). Times are the
camera's sight clock (seconds it was watching), so an outage never ages a subject.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vision.geometry import box_iou


@dataclass(slots=True)
class Subject:
    """One object at one place."""

    name: str
    box: np.ndarray
    last_seen: float  # sight clock
    track: int = -1  # the tracker id that last fed it (-1: none, evidence without tracks)


class Places:
    """The subjects of one rule in one zone, matched by box overlap."""

    def __init__(self, prefix: str, match_iou: float, forget_after: float) -> None:
        self.prefix = prefix
        self.match_iou = match_iou
        self.forget_after = forget_after
        self.subjects: list[Subject] = []
        self.counter = 0

    def assign(
        self, boxes: np.ndarray, sight: float, tracks: np.ndarray | None = None
    ) -> dict[str, list[int]]:
        """Rows of ``boxes`` grouped by the subject each belongs to (new subjects are created);
        ``tracks``: the track id of each box, where the evidence is tracked."""
        found: dict[str, list[int]] = {}
        for i, box in enumerate(boxes):
            track = -1 if tracks is None else int(tracks[i])
            found.setdefault(self._subject_for(box, sight, track).name, []).append(i)
        return found

    def forget_old(self, sight: float, keep: set[str]) -> None:
        """Drop subjects unseen for ``forget_after`` seconds of sight, except those in ``keep``
        (their events are still pending or open)."""
        self.subjects = [
            s for s in self.subjects if s.name in keep or sight - s.last_seen <= self.forget_after
        ]

    def state(self) -> dict[str, Any]:
        return {
            "counter": self.counter,
            "subjects": [[s.name, [float(v) for v in s.box], s.last_seen, s.track] for s in self.subjects],
        }

    def load(self, state: dict[str, Any]) -> None:
        """Take back :meth:`state` (a snapshot's before subjects kept tracks has no track: -1)."""
        self.counter = max(self.counter, int(state.get("counter", 0)))
        self.subjects = [
            Subject(str(name), np.asarray(box, np.float32), float(last), int(track[0]) if track else -1)
            for name, box, last, *track in state["subjects"]
        ]

    def _subject_for(self, box: np.ndarray, sight: float, track: int) -> Subject:
        if self.subjects:
            overlap = box_iou(box, np.stack([s.box for s in self.subjects]))
            mine = [i for i, s in enumerate(self.subjects) if track >= 0 and s.track == track]
            best = mine[0] if mine else int(np.argmax(overlap))
            if mine or overlap[best] >= self.match_iou:
                subject = self.subjects[best]
                subject.box, subject.last_seen, subject.track = box, sight, track
                return subject
        self.counter += 1
        subject = Subject(f"{self.prefix}-{self.counter}", box, sight, track)
        self.subjects.append(subject)
        return subject


def places(xyxy: np.ndarray, margin: float) -> list[np.ndarray]:
    """Rows of [N, 4] boxes grouped into places: boxes whose gap is under ``margin`` times the larger
    one's size (its longer side) are one place, and so on transitively. Groups in row order."""
    n = len(xyxy)
    if n == 0:
        return []
    size = np.maximum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])
    gap_x = np.maximum(xyxy[:, None, 0], xyxy[None, :, 0]) - np.minimum(xyxy[:, None, 2], xyxy[None, :, 2])
    gap_y = np.maximum(xyxy[:, None, 1], xyxy[None, :, 1]) - np.minimum(xyxy[:, None, 3], xyxy[None, :, 3])
    near = np.maximum(gap_x, gap_y) <= margin * np.maximum(size[:, None], size[None, :])
    group = np.arange(n)
    for _ in range(n):  # label propagation: each box takes the smallest label among its neighbours
        spread = np.where(near, group[None, :], n).min(axis=1)
        if np.array_equal(spread, group):
            break
        group = spread
    return [np.flatnonzero(group == g) for g in np.unique(group)]
