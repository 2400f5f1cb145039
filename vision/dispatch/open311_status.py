"""Status back from an Open311 (GeoReport v2) target: poll its open requests, turn changes into reports.

GeoReport v2 has no callbacks, so each Open311 target's dispatcher lane asks
``GET requests/{id}.json`` for the requests of its events that are not resolved, every
``poll_interval`` seconds of wall clock (this is about the network). A change becomes an
inbound report, stored exactly as the signed report endpoint stores one
(:meth:`EventStore.add_report`) and applied by the camera that holds the event:

- ``closed`` -> ``handled``: the city says it is fixed; the camera verifies it (closed
  ``verified_fixed``, or reopened when it still sees the problem, which files a new
  request);
- ``open`` with new ``status_notes`` -> ``in_progress``, with the notes.

Each report's key names the request and what changed, so a poll that sees the same
status again (or a restart that polls it again) adds nothing. A token that has no
request id yet is asked about at ``GET tokens/{token}.json`` instead.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from vision.dispatch.open311 import TOKEN, Open311Client, RequestStatus
from vision.store.base import EventStore

log = logging.getLogger(__name__)


def report_of(target: str, request_id: str, status: RequestStatus) -> tuple[str, str, str | None] | None:
    """(key, report status, note) for what the request says now; None when it says nothing to report."""
    if status.status == "closed":
        return f"open311.{target}.{request_id}.closed", "handled", status.notes
    if status.notes:
        digest = hashlib.sha256(status.notes.encode()).hexdigest()[:16]
        return f"open311.{target}.{request_id}.notes.{digest}", "in_progress", status.notes
    return None


def poll(
    store: EventStore, target: str, client: Open311Client, on_report: Callable[[str], None] | None
) -> int:
    """One round over the target's open requests; returns how many new reports it stored."""
    added = 0
    for event_id, ticket in store.open_tickets(target):
        if ticket.startswith(TOKEN):
            request_id, error = client.request_id(ticket.removeprefix(TOKEN))
            if error:
                log.warning("open311 %s: %s (asked again at the next poll)", target, error)
            if request_id is None:
                continue
            store.set_ticket(event_id, target, request_id)
            ticket = request_id
        status, error = client.status(ticket)
        if status is None:
            log.warning("open311 %s: %s (asked again at the next poll)", target, error)
            continue
        report = report_of(target, ticket, status)
        if report is None:
            continue
        key, what, note = report
        camera, new = store.add_report(key, event_id, what, note, ticket)
        if camera is None or not new:
            continue
        added += 1
        log.info(
            "open311 %s: request %s is %s: event %s reported %s",
            target,
            ticket,
            status.status,
            event_id,
            what,
        )
        if on_report is not None:
            on_report(camera)
    return added
