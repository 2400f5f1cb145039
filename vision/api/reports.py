"""Inbound reports: the ticketing system tells the service what became of a ticket.

``POST /api/events/{event_id}/reports`` is signed like street-vision's own webhook (HMAC-
SHA256 with ``dispatch.secret`` over timestamp and body, an Idempotency-Key), not with a
bearer token: it is the ticketing system, not an operator, that calls it. A report is
stored first (a repeated key is answered as a duplicate), then the pipeline applies it to
the camera that holds the event between two frames: ``handled`` starts the camera's
verification of the fix, ``rejected`` and ``cancelled`` close the event.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from vision.api.events import EventId
from vision.api.models import ReportIn, ReportReceipt
from vision.api.state import Service, ServiceDep
from vision.dispatch.signed import signed_body
from vision.dispatch.signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from vision.store import EventStore

router = APIRouter(tags=["reports"])
MAX_REPORT = 16 * 1024  # bytes
TOLERANCE = 300.0  # seconds between the sender's clock and ours
ANSWERS = {
    400: {"description": "missing or malformed Idempotency-Key"},
    401: {"description": "missing, malformed, stale or wrong signature"},
    404: {"description": "no such event"},
    413: {"description": "body too large"},
    403: {"description": "inbound reports are off: the config has no dispatch.secret"},
}


@router.post("/api/events/{event_id}/reports", response_model=ReportReceipt, responses=ANSWERS)
async def report(
    event_id: EventId,
    request: Request,
    svc: ServiceDep,
    timestamp: Annotated[str | None, Header(alias=TIMESTAMP_HEADER)] = None,
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
    key: Annotated[str | None, Header(alias=IDEMPOTENCY_HEADER)] = None,
) -> ReportReceipt:
    """Report acknowledged, in_progress, handled, rejected or cancelled for one event."""
    secret = svc.runtime.config.dispatch.secret
    if secret is None:
        raise HTTPException(403, "inbound reports are off: the config has no dispatch.secret")
    raw = await signed_body(
        request, secret.get_secret_value(), TOLERANCE, MAX_REPORT, timestamp, signature, key
    )
    try:
        body = ReportIn.model_validate_json(raw)
    except ValidationError as exc:
        raise HTTPException(422, exc.errors(include_url=False, include_input=False)) from None
    return await run_in_threadpool(_take, svc, event_id, body, key or "")


def _take(svc: Service, event_id: str, body: ReportIn, key: str) -> ReportReceipt:
    """Store the report, hand it to the camera's pipeline, answer with the event as it is then."""
    store = svc.runtime.store.another()
    try:
        new = take(svc, store, Taken(key, event_id, body.status, body.note, body.ticket_id))
        applied, state, close_reason, verification = store.report_state(key)
    finally:
        store.close()
    return ReportReceipt(
        event_id=event_id,
        status=body.status,
        duplicate=not new,
        applied=applied,
        state=state,
        close_reason=close_reason,
        verification=verification,
    )


@dataclass(frozen=True, slots=True)
class Taken:
    """One report to keep: from the ticketing side (signed) or an operator (the review page)."""

    key: str
    event_id: str
    status: str
    note: str | None
    ticket_id: str | None = None
    source: str = "ticketing"


def take(svc: Service, store: EventStore, report: Taken) -> bool:
    """Keep ``report`` and have the camera's pipeline apply it between two rounds (a camera not running
    applies it when it next starts); 404 for an unknown event. Returns whether it is new (not a retry)."""
    camera, new = store.add_report(
        report.key, report.event_id, report.status, report.note, report.ticket_id, report.source
    )
    if camera is None:
        raise HTTPException(404, f"no event {report.event_id!r}")
    if new and svc.view(camera) is not None:
        with suppress(TimeoutError):  # stored: the pipeline applies it when it gets to it
            svc.runtime.pipeline.apply_reports(camera)
    return new
