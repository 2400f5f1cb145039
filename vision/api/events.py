"""Events: list with filters, detail with transitions, and the snapshot JPEGs of each transition."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import FileResponse

from vision.api.auth import Reader
from vision.api.models import ClipOut, Event, EventDetail, OutboxMessage, ReportOut, Snapshots, TransitionOut
from vision.api.state import Database, Service, ServiceDep

router = APIRouter(prefix="/api/events", tags=["events"], dependencies=[Reader])
EVENT_ID = r"^[A-Za-z0-9_-]{1,64}$"
SNAPSHOT = re.compile(r"^[0-9.]+-[a-z]+(-annotated)?\.jpg$")
CLIP = re.compile(r"^[0-9.]+-[a-z]+\.mp4$")
EventId = Annotated[str, Path(pattern=EVENT_ID)]


def _iso(moment: datetime) -> str:
    """The form wall times are stored in, so they compare as text."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


@router.get("", response_model=list[Event])
def list_events(
    db: Database,
    type: Annotated[str | None, Query(max_length=64, description="event type (rule name)")] = None,
    camera: Annotated[str | None, Query(max_length=64)] = None,
    zone: Annotated[str | None, Query(max_length=64)] = None,
    state: Annotated[
        Literal["open", "resolving", "resolved"] | None, Query(description="the event's state")
    ] = None,
    since: Annotated[datetime | None, Query(description="at or after (wall time)")] = None,
    until: Annotated[datetime | None, Query(description="before (wall time)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[Event]:
    """Newest first. Time filters use the wall time of the event's first transition, which only
    live cameras have (streams and realtime files); events of files read as fast as possible
    have none and are left out by them."""
    rows = db.events(
        {"type": type, "camera": camera, "zone": zone, "state": state},
        since=None if since is None else _iso(since),
        until=None if until is None else _iso(until),
        limit=limit,
        offset=offset,
    )
    return [Event(**row) for row in rows]


def _snapshots(event_id: str, payload: dict[str, Any]) -> Snapshots | None:
    files = payload.get("snapshots")
    if not files:
        return None
    url = f"/api/events/{event_id}/snapshots/"
    return Snapshots(
        clean=url + PurePosixPath(files["clean"]).name, annotated=url + PurePosixPath(files["annotated"]).name
    )


@router.get("/{event_id}", response_model=EventDetail, responses={404: {"description": "no such event"}})
def get_event(event_id: EventId, db: Database) -> EventDetail:
    found = db.event(event_id)
    if found is None:
        raise HTTPException(404, f"no event {event_id!r}")
    event, rows = found
    transitions = [
        TransitionOut(
            seq=t["seq"],
            kind=t["kind"],
            pts=t["pts"],
            wall_time=t["payload"].get("wall_time"),
            recorded_at=t["recorded_at"],
            snapshots=_snapshots(event_id, t["payload"]),
        )
        for t in rows
    ]
    history = [ReportOut(**r) for r in db.reports(event_id)]
    clips = [
        ClipOut(**c, url=f"/api/events/{event_id}/clips/{PurePosixPath(c['file']).name}")
        for c in db.clips(event_id)
    ]
    sent = [OutboxMessage(**m) for m in db.outbox_listing(include_delivered=True, event_id=event_id)]
    return EventDetail(
        **Event(**event).model_dump(), transitions=transitions, reports=history, clips=clips, deliveries=sent
    )


@router.get(
    "/{event_id}/snapshots/{name}",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "no such snapshot"}},
)
def snapshot(event_id: EventId, name: Annotated[str, Path(max_length=128)], svc: ServiceDep) -> FileResponse:
    """A transition's picture (clean or annotated), as written under data/snapshots/<event id>/."""
    return _event_file(svc, event_id, name, SNAPSHOT, "snapshot", "image/jpeg")


@router.get(
    "/{event_id}/clips/{name}",
    response_class=FileResponse,
    responses={200: {"content": {"video/mp4": {}}}, 404: {"description": "no such clip"}},
)
def clip(event_id: EventId, name: Annotated[str, Path(max_length=128)], svc: ServiceDep) -> FileResponse:
    """A clip around a transition (H.264 MP4), as written beside the event's snapshots."""
    return _event_file(svc, event_id, name, CLIP, "clip", "video/mp4")


def _event_file(
    svc: Service, event_id: str, name: str, pattern: re.Pattern[str], what: str, media_type: str
) -> FileResponse:
    """A file of the event's folder under data/snapshots/ whose name ``pattern`` allows, or 404."""
    path = svc.runtime.config.storage.data_dir / "snapshots" / event_id / name
    if not pattern.match(name) or not path.is_file():
        raise HTTPException(404, f"event {event_id!r} has no {what} {name!r}")
    return FileResponse(path, media_type=media_type)
