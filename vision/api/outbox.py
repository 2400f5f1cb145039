"""The webhook outbox: messages not yet delivered (or all), and re-sending dead-lettered ones."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from vision.api.auth import Admin, Reader
from vision.api.limits import StrictJSONRoute
from vision.api.models import Outbox, OutboxCounts, OutboxMessage, Resend, Resent
from vision.api.state import Database, ServiceDep

router = APIRouter(prefix="/api/outbox", tags=["outbox"], route_class=StrictJSONRoute)


@router.get("", response_model=Outbox, dependencies=[Reader])
def list_outbox(
    db: Database,
    status: Annotated[
        Literal["undelivered", "pending", "blocked", "dead", "all"],
        Query(description="undelivered: pending, blocked and dead"),
    ] = "undelivered",
) -> Outbox:
    rows = db.outbox_listing(include_delivered=status == "all")
    if status not in ("undelivered", "all"):
        rows = [r for r in rows if r["status"] == status]
    return Outbox(
        counts=OutboxCounts(**db.outbox_counts().to_record()), messages=[OutboxMessage(**r) for r in rows]
    )


@router.post("/resend", response_model=Resent, dependencies=[Admin])
def resend(request: Resend, db: Database, svc: ServiceDep) -> Resent:
    """Put dead-lettered messages back in line, and wake the dispatcher."""
    count = db.resend(request.event_id)
    if svc.runtime.dispatcher:
        svc.runtime.dispatcher.notify()
    return Resent(resent=count, counts=OutboxCounts(**db.outbox_counts().to_record()))
