"""The event lifecycle's timers, in seconds of stream time."""

from __future__ import annotations

from pydantic import Field

from vision.config.base import StrictModel


class EventsConfig(StrictModel):
    """Timers of the event lifecycle, in seconds of stream time."""

    close_after: float = Field(
        10.0, ge=0, description="A condition false for this long (healthy frames only) closes the event."
    )
    update_interval: float = Field(
        30.0, ge=0, description="At most one update per event this often, sent when its count changed."
    )
    reopen_window: float = Field(
        60.0,
        ge=0,
        description="A condition back within this long after a close reopens the same event and "
        "ticket; later, it is a new event. 0 never reopens.",
    )
    expire_after: float = Field(
        259200.0,
        ge=0,
        description="An open event of which nothing was seen (camera dark, subject hidden) for this long "
        "closes with reason `expired` (default 3 days); 0 never.",
    )
    verify_within: float = Field(
        300.0,
        gt=0,
        description="After the ticketing side reports a ticket `handled`, the camera must see the condition "
        "gone within this many seconds of watching: then it closes `verified_fixed`; if it still sees "
        "it, the ticket goes back (a `reopen` with verification `failed`).",
    )
    restart_grace: float = Field(
        15.0,
        ge=0,
        description="After a restart, an event restored from the store cannot be seen gone during this many "
        "seconds of watching: the tracker and the rules need that long to find its objects again.",
    )
