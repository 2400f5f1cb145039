"""Plain values that flow between the pipeline stages.

Every stage takes and returns these, so each stage can be tested with arrays and
timestamps alone. Detections are a struct of numpy arrays (one array per field,
never one Python object per box) to keep the hot path allocation-free per box.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

STATIC_OBJECT = -1  # class id of class-agnostic evidence (a static blob), not a detector class


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded image of one camera; ``pts`` (seconds, stream clock) is the pipeline's only clock."""

    camera_id: str
    pts: float
    image: np.ndarray  # HxWx3 uint8, BGR (OpenCV order)

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


@dataclass(frozen=True, slots=True)
class Detections:
    """N boxes of one frame: ``xyxy`` in source-image pixels, ``track_id`` -1 until tracked."""

    xyxy: np.ndarray  # float32 [N, 4]
    score: np.ndarray  # float32 [N]
    class_id: np.ndarray  # int32 [N]
    track_id: np.ndarray  # int64 [N]

    @classmethod
    def empty(cls) -> Detections:
        return cls.from_arrays(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32))

    @classmethod
    def from_arrays(
        cls,
        xyxy: np.ndarray,
        score: np.ndarray,
        class_id: np.ndarray,
        track_id: np.ndarray | None = None,
    ) -> Detections:
        """Build with the canonical dtypes so later stages never have to check them."""
        n = len(score)
        tracks = np.full(n, -1, np.int64) if track_id is None else np.asarray(track_id, np.int64)
        return cls(
            xyxy=np.asarray(xyxy, np.float32).reshape(n, 4),
            score=np.asarray(score, np.float32).reshape(n),
            class_id=np.asarray(class_id, np.int32).reshape(n),
            track_id=tracks,
        )

    def __len__(self) -> int:
        return int(self.score.shape[0])

    def __getitem__(self, index: np.ndarray | slice) -> Detections:
        """Select boxes by boolean mask, index array or slice."""
        return Detections(self.xyxy[index], self.score[index], self.class_id[index], self.track_id[index])

    @classmethod
    def concatenate(cls, parts: list[Detections]) -> Detections:
        """One Detections from several (crops, evidence sources)."""
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.score for p in parts]),
            np.concatenate([p.class_id for p in parts]),
            np.concatenate([p.track_id for p in parts]),
        )

    def anchors(self, kind: str = "bottom_center") -> np.ndarray:
        """[N, 2] points that stand for each box when testing zone membership."""
        x1, y1, x2, y2 = self.xyxy.T
        cx = (x1 + x2) * 0.5
        if kind == "bottom_center":
            return np.stack([cx, y2], axis=1)
        if kind == "center":
            return np.stack([cx, (y1 + y2) * 0.5], axis=1)
        raise ValueError(f"unknown anchor {kind!r}: use bottom_center or center")

    def to_records(self, names: dict[int, str]) -> list[dict[str, Any]]:
        """JSON-ready boxes, for output only (never in the per-frame hot path)."""
        return [
            {
                "label": "static object" if c == STATIC_OBJECT else names.get(int(c), str(int(c))),
                "class_id": int(c),
                "score": round(float(s), 4),
                "box": [round(float(v), 1) for v in b],
                **({"track_id": int(t)} if t >= 0 else {}),
            }
            for b, s, c, t in zip(self.xyxy, self.score, self.class_id, self.track_id, strict=True)
        ]


def label_ids(names: dict[int, str], labels: list[str]) -> tuple[list[int], list[str]]:
    """Class ids of ``labels`` in a model's label map, and the labels it does not have."""
    by_name = {v: k for k, v in names.items()}
    return [by_name[label] for label in labels if label in by_name], [x for x in labels if x not in by_name]


class Condition(StrEnum):
    """What a rule saw for one subject on one frame; UNKNOWN pauses every timer."""

    TRUE = "true"
    FALSE = "false"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Observation:
    """One rule's verdict for one subject on one frame, with the evidence events need."""

    rule: str
    camera_id: str
    zone: str
    subject: str
    pts: float
    condition: Condition
    confidence: float = 0.0
    count: int = 0
    boxes: Detections = field(default_factory=Detections.empty)
    details: dict[str, Any] = field(default_factory=dict)


class EventState(StrEnum):
    """Lifecycle of one incident: only OPEN and later states are ever reported outside."""

    PENDING = "pending"
    OPEN = "open"
    RESOLVING = "resolving"
    RESOLVED = "resolved"


@dataclass(slots=True)
class Event:
    """One incident (camera, zone, rule, subject) and its times on the stream clock."""

    event_id: str
    rule: str
    camera_id: str
    zone: str
    subject: str
    state: EventState
    first_seen: float
    opened_at: float | None = None
    resolved_at: float | None = None
    reopened_at: float | None = None  # the last time it reopened within the reopen window
    reopens: int = 0
    confidence: float = 0.0
    count: int = 0
    peak_count: int = 0

    def to_record(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "type": self.rule,
            "camera": self.camera_id,
            "zone": self.zone,
            "subject": self.subject,
            "state": self.state.value,
            "first_seen": round(self.first_seen, 3),
            "opened_at": None if self.opened_at is None else round(self.opened_at, 3),
            "resolved_at": None if self.resolved_at is None else round(self.resolved_at, 3),
            "reopened_at": None if self.reopened_at is None else round(self.reopened_at, 3),
            "reopens": self.reopens,
            "confidence": round(self.confidence, 4),
            "count": self.count,
            "peak_count": self.peak_count,
        }


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of an event's state, frozen at the moment it happened: the unit that is stored and sent."""

    kind: str  # "open" | "update" | "close" | "reopen"
    pts: float
    event: dict[str, Any]  # Event.to_record() at that moment
    boxes: Detections = field(default_factory=Detections.empty)
