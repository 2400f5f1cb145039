"""Figures: how the tickets of each camera and event type went, computed in SQL from the store."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from vision.api.auth import Reader
from vision.api.models import Figure
from vision.api.state import Database

router = APIRouter(prefix="/api/figures", tags=["figures"], dependencies=[Reader])


@router.get("", response_model=list[Figure])
def figures(
    db: Database,
    camera: Annotated[str | None, Query(max_length=64)] = None,
    type: Annotated[str | None, Query(max_length=64, description="event type (rule name)")] = None,
) -> list[Figure]:
    """Per camera and event type: tickets opened, confirmed, rejected as false alarms, verified fixed,
    reopened after a failed verification, closed by hand; and the wall-clock seconds from open to
    handled and from open to closed (count, mean, median). The same figures are in /metrics."""
    rows = db.figures()
    return [
        Figure.model_validate({"open_to_handled": None, "open_to_closed": None} | row)
        for row in rows
        if camera in (None, row["camera"]) and type in (None, row["type"])
    ]
