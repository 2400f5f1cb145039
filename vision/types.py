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

from vision.geometry import anchors_of

NO_CLASS = -1  # class id of evidence that has no detector class (a static blob); data["source"] says what


@dataclass(frozen=True, slots=True)
class Motion:
    """Pixels each block of the picture moved between the frame handed over at ``since`` (stream pts)
    and this one, from the codec's motion vectors (vision/ingest/vectors.py)."""

    since: float
    grid: np.ndarray  # float32 [rows, cols] of 16x16-pixel blocks, upright; inf: a block coded afresh


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded image of one camera; ``pts`` (seconds, stream clock) is the pipeline's only clock."""

    camera_id: str
    pts: float
    image: np.ndarray  # HxWx3 uint8, BGR (OpenCV order)
    captured: float = 0.0  # monotonic seconds when its reader received it: lag figures only, never a clock
    motion: Motion | None = None  # since the reader's previous frame, where the codec exported vectors
    picture: np.ndarray | None = None  # the motion gate's small grey picture, where the reader built it
    small: np.ndarray | None = None  # the clips' downscaled copy (clips.py), where the reader made it

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


@dataclass(frozen=True, slots=True)
class Detections:
    """N boxes of one frame: ``xyxy`` in source-image pixels, ``track_id`` -1 until tracked.

    ``data`` holds extra per-box arrays of length N (as supervision's ``Detections.data``):
    ``source`` says where a box came from (``detector``, ``static_object``), ``area_px`` the
    pixel area of a blob, and so on; selecting or concatenating boxes carries them along.
    """

    xyxy: np.ndarray  # float32 [N, 4]
    score: np.ndarray  # float32 [N]
    class_id: np.ndarray  # int32 [N]; NO_CLASS for evidence without a detector class
    track_id: np.ndarray  # int64 [N]
    data: dict[str, np.ndarray] = field(default_factory=dict)  # each [N]

    @classmethod
    def empty(cls) -> Detections:
        """No boxes (built directly: every rule's observation of nothing holds one)."""
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.int32),
            np.zeros(0, np.int64),
        )

    @classmethod
    def from_arrays(
        cls,
        xyxy: np.ndarray,
        score: np.ndarray,
        class_id: np.ndarray,
        track_id: np.ndarray | None = None,
        data: dict[str, np.ndarray] | None = None,
    ) -> Detections:
        """Build with the canonical dtypes so later stages never have to check them."""
        n = len(score)
        tracks = np.full(n, -1, np.int64) if track_id is None else np.asarray(track_id, np.int64)
        extra = {k: np.asarray(v).reshape(n) for k, v in (data or {}).items()}
        return cls(
            xyxy=np.asarray(xyxy, np.float32).reshape(n, 4),
            score=np.asarray(score, np.float32).reshape(n),
            class_id=np.asarray(class_id, np.int32).reshape(n),
            track_id=tracks,
            data=extra,
        )

    def __len__(self) -> int:
        return int(self.score.shape[0])

    def __getitem__(self, index: np.ndarray | slice) -> Detections:
        """Select boxes by boolean mask, index array or slice."""
        return Detections(
            self.xyxy[index],
            self.score[index],
            self.class_id[index],
            self.track_id[index],
            {k: v[index] for k, v in self.data.items()},
        )

    @classmethod
    def concatenate(cls, parts: list[Detections]) -> Detections:
        """One Detections from several (crops, evidence sources); a data key that some parts lack
        is filled there with the array type's zero (empty string, 0, False)."""
        if not parts:
            return cls.empty()
        keys: dict[str, np.dtype] = {}
        for part in parts:
            keys |= {k: v.dtype for k, v in part.data.items() if k not in keys}
        data = {
            key: np.concatenate([p.data.get(key, np.zeros(len(p), dtype)) for p in parts])
            for key, dtype in keys.items()
        }
        return cls(
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.score for p in parts]),
            np.concatenate([p.class_id for p in parts]),
            np.concatenate([p.track_id for p in parts]),
            data,
        )

    def anchors(self, kind: str = "bottom_center") -> np.ndarray:
        """[N, 2] points that stand for each box when testing zone membership."""
        return anchors_of(self.xyxy, kind)

    def to_records(self, names: dict[int, str]) -> list[dict[str, Any]]:
        """JSON-ready boxes, for output only (never in the per-frame hot path).

        A box without a detector class (a static blob) has ``class_id`` None and says its
        ``source``; ``area_px`` comes along where the box has one."""
        n = len(self)
        source = self.data.get("source", np.full(n, "detector"))
        area = self.data.get("area_px")
        records = []
        for i, (b, s, c, t) in enumerate(
            zip(self.xyxy, self.score, self.class_id, self.track_id, strict=True)
        ):
            record: dict[str, Any] = {
                "label": names.get(int(c), str(int(c))) if c >= 0 else str(source[i]).replace("_", " "),
                "class_id": int(c) if c >= 0 else None,
                "source": str(source[i]) or "detector",
                "score": round(float(s), 4),
                "box": [round(float(v), 1) for v in b],
            }
            if t >= 0:
                record["track_id"] = int(t)
            if area is not None and area[i] > 0:
                record["area_px"] = round(float(area[i]), 1)
            records.append(record)
        return records


def member_of(values: np.ndarray, ids: np.ndarray | list[int]) -> np.ndarray:
    """``np.isin(values, ids)`` for the few ids of a label set or of a camera's tracks: one broadcast
    comparison, without np.isin's set-up, which at these sizes costs several times the comparison (and
    reduced by the ufunc itself: ``np.any`` and the array's ``any`` wrap it in Python)."""
    return np.logical_or.reduce(np.asarray(values)[:, None] == np.asarray(ids)[None, :], axis=1)


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
    since: float | None = None  # when a TRUE condition began, if before this rule could first say so


class CloseReason(StrEnum):
    """Why an event closed: every close says it, in the store and in the payload."""

    RESOLVED = "resolved"  # the camera saw the condition gone for close_after seconds
    ZONE_REMOVED = "zone_removed"  # its zone is no longer in the config
    ZONE_CHANGED = "zone_changed"  # its zone was redrawn so much that it is another place
    RULE_REMOVED = "rule_removed"  # its zone no longer has that rule
    CAMERA_REMOVED = "camera_removed"  # its camera is no longer in the config
    CAMERA_DISABLED = "camera_disabled"  # its camera is in the config with enabled: false
    EXPIRED = "expired"  # nothing seen of it (camera dark, subject hidden) for events.expire_after
    VERIFIED_FIXED = "verified_fixed"  # a worker reported it handled, then the camera saw it gone
    REJECTED = "rejected"  # the ticketing side said it is not a real problem (a false alarm)
    CANCELLED = "cancelled"  # the ticketing side cancelled the ticket
    CLOSED_BY_OPERATOR = "closed_by_operator"  # an operator closed it by hand, saying why (review page)


class Report(StrEnum):
    """What the ticketing side reports about an event (inbound status), or what an operator decided on
    the review page (the last three: they never show as the event's ``report``)."""

    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    HANDLED = "handled"  # the worker says it is fixed: the camera verifies
    REJECTED = "rejected"  # not a real problem
    CANCELLED = "cancelled"
    CONFIRMED = "confirmed"  # operator: a real problem (kept in the history, counted)
    FALSE_ALARM = "false_alarm"  # operator: not a real problem (closes it rejected, like REJECTED)
    CLOSED = "closed"  # operator: closed by hand (closes it closed_by_operator, with the operator's text)


OPERATOR_REPORTS = frozenset({Report.CONFIRMED, Report.FALSE_ALARM, Report.CLOSED})


class Verification(StrEnum):
    """Where the camera's check of a worker's fix stands."""

    PENDING = "pending"  # reported handled; the camera has not yet seen the condition gone
    PASSED = "passed"  # seen gone: closed verified_fixed
    FAILED = "failed"  # still seen after events.verify_within: the ticket went back


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
    close_reason: CloseReason | None = None  # set on close, cleared by a reopen
    report: Report | None = None  # the latest status the ticketing side reported
    verification: Verification | None = None  # the camera's check of a fix reported handled
    failed_verifications: int = 0  # fixes reported that the camera did not confirm

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
            "close_reason": None if self.close_reason is None else self.close_reason.value,
            "report": None if self.report is None else self.report.value,
            "verification": None if self.verification is None else self.verification.value,
            "failed_verifications": self.failed_verifications,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Event:
        """The event back from :meth:`to_record` (a restore from the store)."""
        reason, report, verification = (record.get(k) for k in ("close_reason", "report", "verification"))
        return cls(
            event_id=record["event_id"],
            rule=record["type"],
            camera_id=record["camera"],
            zone=record["zone"],
            subject=record["subject"],
            state=EventState(record["state"]),
            first_seen=float(record["first_seen"]),
            opened_at=record["opened_at"],
            resolved_at=record["resolved_at"],
            reopened_at=record["reopened_at"],
            reopens=int(record["reopens"]),
            confidence=float(record["confidence"]),
            count=int(record["count"]),
            peak_count=int(record["peak_count"]),
            close_reason=None if reason is None else CloseReason(reason),
            report=None if report is None else Report(report),
            verification=None if verification is None else Verification(verification),
            failed_verifications=int(record.get("failed_verifications", 0)),
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of an event's state, frozen at the moment it happened: the unit that is stored and sent."""

    kind: str  # "open" | "update" | "close" | "reopen"
    pts: float
    event: dict[str, Any]  # Event.to_record() at that moment
    boxes: Detections = field(default_factory=Detections.empty)
    note: str | None = None  # a close by an operator: their reason, sent with the close
