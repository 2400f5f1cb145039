"""The webhook payload, version 2: the models the receiver validates with and the body the sender sends.

Version 2 (from version 1): every close says why (``event.close_reason``); a box without
a detector class (a litter blob of the static-object model) has ``class_id`` null and
says its ``source``.

The models are the single definition: ``docs/webhook-payload.schema.json`` is
generated from them (``python docs/make_webhook_schema.py``). Times named ``pts`` or
``*_at``/``first_seen`` inside ``event`` are seconds of the camera's stream clock, the
pipeline's only clock; ``recorded_at`` is the wall-clock moment the transition was
committed to the outbox.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vision.dispatch.outbox import Message

VERSION = 2
SCHEMA_ID = "https://street-vision.invalid/schemas/webhook-payload/v2.json"
CloseReasonName = Literal[
    "resolved",
    "zone_removed",
    "zone_changed",
    "rule_removed",
    "camera_removed",
    "camera_disabled",
    "expired",
    "verified_fixed",
    "rejected",
    "cancelled",
    "closed_by_operator",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Box(_Strict):
    """One detection that supports the transition, in pixels of the camera's frame."""

    label: str = Field(
        description="Class name from the model card, e.g. person; 'static object' for a blob of the "
        "static-object model."
    )
    class_id: int | None = Field(
        ge=0, description="Class index of the model; null for evidence without a detector class."
    )
    source: Literal["detector", "static_object"] = Field(
        description="Where the box comes from: the detector, or the camera's static-object (dual "
        "background) model, which sees any object that arrived and stayed, named or not."
    )
    score: float = Field(ge=0, le=1, description="Confidence (a blob alone: 0.5).")
    box: list[float] = Field(min_length=4, max_length=4, description="[x1, y1, x2, y2] in pixels.")
    track_id: int | None = Field(None, ge=0, description="Tracker id; absent when not tracked.")
    area_px: float | None = Field(
        None, ge=0, description="Area of a static blob in pixels; absent otherwise."
    )


class EventRecord(_Strict):
    """The event (one incident of one rule in one zone of one camera) at the time of the transition."""

    event_id: str = Field(description="Stable id of the event; one ticket per event.")
    type: str = Field(description="Rule that raised it: crowd, litter, bike_parking, fishing, ...")
    camera: str = Field(description="Camera id from the config.")
    zone: str = Field(description="Zone name from the config.")
    subject: str = Field(description="What the rule watches: 'zone' or a tracked object.")
    state: Literal["open", "resolved"] = Field(description="open (also after a reopen) or resolved.")
    first_seen: float = Field(ge=0, description="Stream seconds when the condition was first seen.")
    opened_at: float = Field(ge=0, description="Stream seconds when the event opened.")
    resolved_at: float | None = Field(ge=0, description="Stream seconds of the close; null unless resolved.")
    reopened_at: float | None = Field(ge=0, description="Stream seconds of the latest reopen, or null.")
    reopens: int = Field(ge=0, description="How many times the event reopened.")
    confidence: float = Field(ge=0, le=1, description="Highest rule confidence seen.")
    count: int = Field(ge=0, description="Objects counted by the rule at this transition.")
    peak_count: int = Field(ge=0, description="Highest count of the event so far.")
    close_reason: CloseReasonName | None = Field(
        description="Why it closed, on a close (null otherwise): resolved (the camera saw the condition "
        "gone for close_after seconds), zone_removed, zone_changed (redrawn to another place), "
        "rule_removed, camera_removed, camera_disabled, expired (nothing seen of it for "
        "events.expire_after), verified_fixed (reported handled, then seen gone), rejected (a false "
        "alarm, as the ticketing side or an operator said), cancelled, closed_by_operator (closed by hand "
        "on the review page; the payload's note says why). Only a resolved or verified_fixed event may "
        "reopen."
    )
    report: Literal["acknowledged", "in_progress", "handled", "rejected", "cancelled"] | None = Field(
        description="The latest status the ticketing side reported for this event (inbound), or null."
    )
    verification: Literal["pending", "passed", "failed"] | None = Field(
        description="The camera's check of a fix reported `handled`: pending until it sees the condition "
        "gone (passed: the close says verified_fixed) or still sees it after events.verify_within "
        "(failed: a reopen sends the ticket back)."
    )
    failed_verifications: int = Field(ge=0, description="Reported fixes the camera did not confirm.")


class Snapshots(_Strict):
    """JPEG files of the transition's frame, relative to the sender's data folder."""

    clean: str = Field(description="The frame as the camera saw it.")
    annotated: str = Field(description="The frame with the zone and the boxes drawn.")
    source: Literal["main", "detect"] | None = Field(
        None,
        description="Cameras with a detect_url substream: `main` when the pictures are the main stream's "
        "(the boxes drawn scaled to it), `detect` when it gave no frame in time and the detection frame "
        "was used (`note` says why); absent for cameras with one stream.",
    )
    width: int | None = Field(None, ge=1, description="With source: the pictures' width in pixels.")
    height: int | None = Field(None, ge=1, description="With source: the pictures' height in pixels.")
    note: str | None = Field(None, description="With source `detect`: why the main stream gave no picture.")


class WebhookPayload(_Strict):
    """One ticket transition of street-vision, POSTed as JSON to the ticketing webhook."""

    model_config = ConfigDict(
        extra="forbid",
        title="street-vision webhook payload",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID},
    )

    version: Literal[2] = Field(description="Payload schema version; changes only with incompatible changes.")
    idempotency_key: str = Field(
        pattern=r"^.+\.[1-9][0-9]*$",
        description="'<event_id>.<sequence>', as in the Idempotency-Key header: the same on every retry.",
    )
    sequence: int = Field(ge=1, description="Position of this transition within its event: 1 is the open.")
    transition: Literal["open", "update", "close", "reopen"] = Field(description="What happened.")
    ticket_id: str | None = Field(
        description="The receiver's ticket id from its answer to the open; null on the open itself."
    )
    pts: float = Field(ge=0, description="Stream seconds of the frame that caused the transition.")
    recorded_at: str = Field(
        pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$",
        description="UTC wall-clock time the transition was committed to the outbox.",
    )
    event: EventRecord
    boxes: list[Box] = Field(description="Detections that support the transition (may be empty on a close).")
    snapshots: Snapshots | None = Field(
        None, description="Pictures of the moment; absent only if the camera never showed a frame."
    )
    wall_time: str | None = Field(
        None,
        description="Live cameras: UTC wall-clock time of the frame (pts mapped through the stream's "
        "anchor); absent for recordings read as fast as possible.",
    )
    note: str | None = Field(
        None,
        max_length=500,
        description="A close by an operator (close_reason closed_by_operator): the reason they gave; "
        "absent otherwise.",
    )


def body(message: Message) -> bytes:
    """The exact bytes POSTed for ``message``: the same on every attempt, so every retry is identical."""
    stored = json.loads(message.payload)
    document = {
        "version": VERSION,
        "idempotency_key": message.key,
        "sequence": message.event_seq,
        "ticket_id": message.ticket_id,
        "recorded_at": message.recorded_at,
        **stored,
    }
    return json.dumps(document, separators=(",", ":")).encode()
