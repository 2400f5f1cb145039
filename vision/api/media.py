"""Annotated snapshots for ticketing systems: ``GET /media/{event_id}/{file}?sig=...``, without a token.

An Open311 request links its picture here (``media_url``, see :mod:`vision.dispatch.media`):
the city's system and its staff open it without our bearer token, so the link itself
is the permission. Only the annotated pictures of a signed link are served; anything
else is the same 404, so a guess learns nothing.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import FileResponse

from vision.api.events import EventId
from vision.api.state import ServiceDep
from vision.dispatch.media import MediaLinks

router = APIRouter(tags=["media"])
ANNOTATED = re.compile(r"^[0-9.]+-[a-z]+-annotated\.jpg$")


@router.get(
    "/media/{event_id}/{name}",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "no such picture, or a bad link"}},
)
def media(
    event_id: EventId,
    name: Annotated[str, Path(max_length=128)],
    svc: ServiceDep,
    sig: Annotated[str, Query(max_length=64)] = "",
) -> FileResponse:
    """An event's annotated snapshot, for the link an Open311 request carries."""
    data_dir = svc.runtime.config.storage.data_dir
    path = data_dir / "snapshots" / event_id / name
    links = MediaLinks(svc.runtime.config.dispatch.public_url or "", data_dir)
    if not ANNOTATED.match(name) or not links.valid(event_id, name, sig) or not path.is_file():
        raise HTTPException(404, "no such picture")
    return FileResponse(path, media_type="image/jpeg")
