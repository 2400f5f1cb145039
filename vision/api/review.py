"""Operator review: confirm an event, mark it a false alarm, or close it by hand, from the review page.

An action is kept as a report with source ``operator`` and applied exactly like an inbound
report of the ticketing side: by the camera's own unit, between two rounds of its pipeline
(vision/api/reports.py), so the store, the camera's state and the outbox never disagree.
``confirm`` only goes into the event's history (and the figures); ``false_alarm`` closes it
``rejected`` (its frames become hard negatives for ``dataset mine``); ``close`` closes it
``closed_by_operator`` with the operator's reason, sent to the target like any close.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException

from vision.api.auth import Admin
from vision.api.events import EventId
from vision.api.limits import StrictJSONRoute
from vision.api.models import ReviewIn, ReviewReceipt
from vision.api.reports import Taken, take
from vision.api.state import Database, ServiceDep
from vision.types import Report

router = APIRouter(tags=["review"], route_class=StrictJSONRoute)
STATUS = {"confirm": Report.CONFIRMED, "false_alarm": Report.FALSE_ALARM, "close": Report.CLOSED}
ANSWERS = {
    404: {"description": "no such event"},
    409: {"description": "false_alarm or close of an event that is closed already"},
    422: {"description": "an unknown action, or close without a reason"},
}


@router.post(
    "/api/events/{event_id}/review", response_model=ReviewReceipt, dependencies=[Admin], responses=ANSWERS
)
def review(event_id: EventId, body: ReviewIn, db: Database, svc: ServiceDep) -> ReviewReceipt:
    """Confirm, mark a false alarm, or close by hand (with a reason); needs the admin token."""
    reason = (body.reason or "").strip() or None
    if body.action == "close" and reason is None:
        raise HTTPException(422, "reason: closing by hand needs a reason (it is sent with the close)")
    found = db.event(event_id)
    if found is None:
        raise HTTPException(404, f"no event {event_id!r}")
    event = found[0]
    if body.action != "confirm" and event["state"] == "resolved":
        raise HTTPException(
            409, f"event {event_id!r} is closed already ({event['close_reason']}): nothing to {body.action}"
        )
    key = f"operator-{uuid.uuid4().hex}"
    take(svc, db, Taken(key, event_id, STATUS[body.action].value, reason, source="operator"))
    applied, state, close_reason, _ = db.report_state(key)
    return ReviewReceipt(
        event_id=event_id, action=body.action, applied=applied, state=state, close_reason=close_reason
    )
