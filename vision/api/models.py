"""Pydantic models of every API request and response, so the OpenAPI schema documents the API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from vision.config import Name, ZoneConfig


class Health(BaseModel):
    """A camera's health now (see vision/ingest/health.py); the source URL is redacted."""

    state: str = Field(description="connecting, live, stalled, offline, ended or error")
    since: float = Field(description="Unix time the state began (error: the first failure in a row)")
    last_frame_pts: float | None
    last_frame_time: float | None
    fps_in: float
    fps_out: float
    frames_in: int
    frames_out: int
    frames_dropped: int
    frames_skipped: int
    lag: float | None
    reconnects: int
    errors: int = Field(description="failures of its analysis, each followed by a restart")
    last_error: str | None


class DetectionPlan(BaseModel):
    """Where the detector looks on this camera's frames and what it costs (vision/detect/planner.py)."""

    mode: str = Field(description="full (whole frame), tiles (tiles over zones + whole frame), zones")
    inferences_per_frame: int = Field(description="Model inputs per frame: 1 is the whole frame only")
    zones: dict[str, str] = Field(description="Per zone: the people's size there and what it needs")


class Camera(BaseModel):
    id: str
    url: str = Field(description="The source, password and secret query parameters redacted")
    enabled: bool
    health: Health | None = Field(description="None for a disabled camera")
    zones: list[str] = Field(description="Zones in the config file")
    active_zones: list[str] = Field(description="Zones the running pipeline watches now")
    detection: DetectionPlan | None = Field(
        None, description="The detection plan for its frames; None before its first frame or when not running"
    )


class Zone(ZoneConfig):
    """A zone as in the config file, with its name."""

    name: Name


class Rules(BaseModel):
    """Each rule's parameters as JSON schema, for forms."""

    rules: dict[str, dict[str, Any]]


class Snapshots(BaseModel):
    clean: str = Field(description="URL of the frame as it was")
    annotated: str = Field(description="URL of the frame with the zone and boxes drawn")


class TransitionOut(BaseModel):
    seq: int
    kind: str = Field(description="open, update, resolve or reopen")
    pts: float = Field(description="stream seconds")
    wall_time: str | None = Field(description="ISO 8601, live cameras only")
    recorded_at: str | None = Field(None, description="ISO 8601 UTC, when it was committed to the store")
    snapshots: Snapshots | None


class Event(BaseModel):
    event_id: str
    type: str
    camera: str
    zone: str
    subject: str
    state: str
    first_seen: float
    opened_at: float | None
    resolved_at: float | None
    reopened_at: float | None
    reopens: int
    confidence: float
    count: int
    peak_count: int
    close_reason: str | None = Field(
        description="why it closed (resolved, zone_removed, zone_changed, rule_removed, camera_removed, "
        "camera_disabled, expired, verified_fixed, rejected, cancelled, closed_by_operator); null while open"
    )
    wall_time: str | None = Field(description="when its first transition happened (live cameras)")


class ReportOut(BaseModel):
    status: str = Field(
        description="ticketing: acknowledged, in_progress, handled, rejected or cancelled; operator: "
        "confirmed, false_alarm or closed"
    )
    note: str | None = Field(description="free text; an operator's close: their reason")
    ticket_id: str | None
    received_at: str = Field(description="ISO 8601 UTC, when the service received it")
    applied: bool = Field(description="taken in by the camera (false until its pipeline has applied it)")
    source: str = Field(description="ticketing (signed inbound report) or operator (the review page)")


class ClipOut(BaseModel):
    """A short H.264 MP4 around one transition (storage.clips)."""

    kind: str = Field(description="the transition: open, reopen or close")
    pts: float = Field(description="stream seconds of the transition")
    start_pts: float = Field(description="stream seconds of its first frame")
    end_pts: float = Field(description="stream seconds of its last frame")
    frames: int
    bytes: int
    url: str = Field(description="the MP4 (needs the token, like the snapshots)")


class EventDetail(Event):
    transitions: list[TransitionOut]
    reports: list[ReportOut] = Field(
        description="what the ticketing side and operators reported, oldest first"
    )
    clips: list[ClipOut] = Field(description="clips around its transitions, oldest first")
    deliveries: list[OutboxMessage] = Field(
        description="its outbox messages (one per transition sent to the target) and how they went"
    )


class ReviewIn(BaseModel):
    """An operator's verdict on an event, from the review page."""

    model_config = {"extra": "forbid"}

    action: Literal["confirm", "false_alarm", "close"] = Field(
        description="confirm: it is real (kept in the history, counted); false_alarm: closes it rejected "
        "(its frames become hard negatives); close: closes it closed_by_operator, sent to the target"
    )
    reason: str | None = Field(
        None, max_length=500, description="why; required for close (sent with the close), else a note"
    )


class ReviewReceipt(BaseModel):
    event_id: str
    action: str
    applied: bool = Field(description="the camera has taken it in (else: when its pipeline runs it)")
    state: str = Field(description="the event's state after it: open or resolved")
    close_reason: str | None


class Duration(BaseModel):
    """Wall-clock seconds of the tickets that got that far."""

    count: int
    mean: float
    p50: float = Field(description="the median (the lower middle one of an even count)")


class Figure(BaseModel):
    """How the tickets of one camera and event type went (from the store)."""

    camera: str
    type: str
    opened: int = Field(description="tickets opened")
    confirmed: int = Field(description="confirmed by an operator")
    rejected: int = Field(
        description="closed rejected as false alarms (by the ticketing side or an operator)"
    )
    verified_fixed: int = Field(description="reported handled, then seen gone by the camera")
    failed_verifications: int = Field(description="reopens after a failed verification (each counted)")
    closed_by_operator: int = Field(description="closed by hand on the review page")
    open_to_handled: Duration | None = Field(description="from the open to the first report of handled")
    open_to_closed: Duration | None = Field(description="from the open to the close (closed tickets)")


class ReportIn(BaseModel):
    """What the ticketing system reports about one event (signed like street-vision's own webhook)."""

    model_config = {"extra": "forbid"}

    status: Literal["acknowledged", "in_progress", "handled", "rejected", "cancelled"] = Field(
        description="handled: the worker says it is fixed, and the camera verifies it; rejected: not a "
        "real problem (closes it as a false alarm); cancelled: closes it; the others are noted."
    )
    note: str | None = Field(None, max_length=500, description="free text for the event's history")
    ticket_id: str | None = Field(
        None, max_length=100, pattern=r"^[\x21-\x7e]+$", description="your ticket id"
    )


class ReportReceipt(BaseModel):
    event_id: str
    status: str
    duplicate: bool = Field(description="this Idempotency-Key was received before: nothing applied again")
    applied: bool = Field(description="the camera has taken it in (else: when its pipeline runs it)")
    state: str = Field(description="the event's state after it: open or resolved")
    close_reason: str | None
    verification: str | None = Field(description="pending after handled; passed or failed later")


class OutboxMessage(BaseModel):
    seq: int
    target: str = Field(description="the dispatch target it goes to (webhook: dispatch.webhook_url)")
    event_id: str
    event_seq: int
    transition: str
    status: str = Field(description="pending, blocked (behind a dead message), dead or delivered")
    attempts: int
    next_attempt_at: float
    recorded_at: str
    delivered_at: str | None
    last_error: str | None
    ticket_id: str | None


class OutboxCounts(BaseModel):
    delivered: int
    pending: int
    blocked: int
    dead: int


class Outbox(BaseModel):
    counts: OutboxCounts
    messages: list[OutboxMessage]


class Resend(BaseModel):
    event_id: str | None = Field(None, max_length=64, description="only this event; None: every dead one")


class Resent(BaseModel):
    resent: int
    counts: OutboxCounts


class ShardHealth(BaseModel):
    alive: bool = Field(description="the shard answers and its pipeline runs (false while Ray restarts it)")
    node: str | None = Field(description="Ray node id it runs on (null: silent)")
    started: float | None = Field(description="Unix time it (its latest restart) started")
    cameras: dict[str, float | None] = Field(
        description="its cameras, each with its lag behind the live edge in seconds (null: not measured)"
    )


class ReplicaHealth(BaseModel):
    alive: bool = Field(description="the detector replica answers")
    node: str | None = Field(description="Ray node id it runs on (null: silent)")
    started: float | None = Field(description="Unix time it (its latest restart) started")
    batches: int = Field(description="model calls since it (last re)started")
    frames: int = Field(description="frames in them")
    frames_per_batch: float | None = Field(description="frames / batches (null: no batch yet)")
    queued: int = Field(description="frames waiting now")
    busy_seconds: float = Field(description="seconds in model calls")


class Healthz(BaseModel):
    status: str = Field(description="ok (HTTP 200) or failing (HTTP 503)")
    problems: list[str] = Field(
        description="why it is failing: the pipeline has stopped (files ended, or it failed: see the log), "
        "or a camera has been in error longer than health.error_grace"
    )
    cameras: dict[str, str] = Field(description="state per camera")
    shards: dict[str, ShardHealth] | None = Field(
        None, description="on a Ray cluster, every camera shard (docs/scaling.md); absent in one process"
    )
    replicas: dict[str, ReplicaHealth] | None = Field(
        None, description="on a Ray cluster, every shared detector replica; absent in one process"
    )
