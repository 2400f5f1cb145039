"""Two-way tickets end to end: the service opens tickets at the real receiver; the ticketing side reports
back (signed, over the real API); the camera verifies a reported fix (closed verified_fixed) or sends the
ticket back (reopen, verification failed); rejected closes as a false alarm and marks the frames as hard
negatives for the tuning dataset."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from vision.dispatch.signing import signed_headers

from .api_support import AS_READER, HOOK_SECRET, in_process, plaza_service
from .dispatch_support import Receiver, wait_for

CROSSING = "[[0.0, 0.33], [0.55, 0.33], [0.95, 0.25], [1.0, 0.45], [1.0, 0.85], [0.55, 0.62], [0.0, 0.5]]"


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    server = Receiver(tmp_path / "receiver.sqlite", secret=HOOK_SECRET).start()
    yield server
    server.stop()


def config(folder: Path, url: str) -> Path:
    """The plaza clip looping in real time: the demo's crowd on the crossing (it forms at about 13 s and
    clears at about 35 s of the clip), and a zone over the whole picture that is always crowded."""
    zones = f"""      crossing:
        polygon: {CROSSING}
        rules:
          crowd: {{enter_count: 7, exit_count: 5, window: 2, min_duration: 2, close_after: 3}}
      everywhere:
        polygon: [[0, 0], [1, 0], [1, 1], [0, 1]]
        rules:
          crowd: {{enter_count: 2, exit_count: 1, min_duration: 1}}
"""
    rest = "detector:\n  classes: [person]\nevents: {verify_within: 20, update_interval: 10}\n"
    return plaza_service(folder, zones, rest, url)


def send(client: TestClient, event_id: str, status: str, key: str | None = None, secret: str = HOOK_SECRET):
    body = json.dumps({"status": status, "note": f"worker says {status}"}).encode()
    headers = signed_headers(secret, body, key or uuid.uuid4().hex, time.time())
    return client.post(f"/api/events/{event_id}/reports", content=body, headers=headers)


def ticket_of(receiver: Receiver, zone: str) -> tuple[str, str, str] | None:
    bodies = receiver.bodies()
    ids = [b["event"]["event_id"] for b in bodies if b["event"]["zone"] == zone]
    return next((t for t in receiver.tickets() if ids and t[1] == ids[0]), None)


def last_body(receiver: Receiver, event_id: str) -> dict:
    return [b for b in receiver.bodies() if b["event"]["event_id"] == event_id][-1]


def test_reports_are_verified_by_the_camera_end_to_end(tmp_path: Path, receiver: Receiver) -> None:
    with in_process(config(tmp_path, receiver.url)) as running, TestClient(running.app) as client:  # type: ignore[arg-type]
        always = wait_for(lambda: ticket_of(receiver, "everywhere"), "a ticket for the busy plaza", 60.0)
        busy = always[1]
        # refused before anything is stored: no signature, a wrong one, an unknown event, a bad status
        assert client.post(f"/api/events/{busy}/reports", json={"status": "handled"}).status_code == 401
        assert send(client, busy, "handled", secret="not-the-secret").status_code == 401
        assert send(client, "0" * 32, "handled").status_code == 404
        refused = send(client, busy, "fixed")
        assert refused.status_code == 422 and "fixed" not in refused.text
        # acknowledged is noted; a retry with the same key is a duplicate
        first = send(client, busy, "acknowledged", key="ack-1")
        assert first.status_code == 200, first.text
        assert first.json()["applied"] and not first.json()["duplicate"]
        assert send(client, busy, "acknowledged", key="ack-1").json()["duplicate"]
        # handled, but the plaza is still busy: after verify_within (20 s of watching) the ticket goes back
        handled = send(client, busy, "handled")
        assert handled.json()["verification"] == "pending" and handled.json()["state"] == "open"
        wait_for(lambda: last_body(receiver, busy)["transition"] == "reopen", "the ticket to go back", 60.0)
        back = last_body(receiver, busy)["event"]
        assert back["verification"] == "failed" and back["failed_verifications"] == 1
        # the crossing's crowd: reported handled while it is still there, then it clears within the window
        crossing = wait_for(lambda: ticket_of(receiver, "crossing"), "the crossing's ticket", 90.0)[1]
        wait_for(
            lambda: last_body(receiver, crossing)["transition"] == "update",
            "the crowd to grow (an update)",
            60.0,
        )
        assert send(client, crossing, "handled").json()["verification"] == "pending"
        wait_for(lambda: last_body(receiver, crossing)["transition"] == "close", "the verified close", 60.0)
        closed = last_body(receiver, crossing)["event"]
        assert (closed["close_reason"], closed["verification"], closed["report"]) == (
            "verified_fixed",
            "passed",
            "handled",
        )
        # the busy plaza was a false alarm after all: closed at once, its frames marked as hard negatives
        rejected = send(client, busy, "rejected")
        assert rejected.json()["state"] == "resolved" and rejected.json()["close_reason"] == "rejected"
        wait_for(lambda: last_body(receiver, busy)["transition"] == "close", "the rejected close", 30.0)
        detail = client.get(f"/api/events/{busy}", headers=AS_READER).json()
        assert [r["status"] for r in detail["reports"]] == ["acknowledged", "handled", "rejected"]
        assert all(r["applied"] for r in detail["reports"])
        metrics = client.get("/metrics", headers=AS_READER).text
        for line in (
            'street_vision_events_closed{camera="plaza",reason="verified_fixed",type="crowd"} 1.0',
            'street_vision_events_closed{camera="plaza",reason="rejected",type="crowd"} 1.0',
            'street_vision_failed_verifications{camera="plaza",type="crowd"} 1.0',
        ):
            assert line in metrics, metrics
    from vision.tuning.sources import event_snapshots

    frames = [c for c in event_snapshots(tmp_path / "data") if c.event and c.event["event_id"] == busy]
    assert frames and all(c.event.get("hard_negative") for c in frames)
    others = [c for c in event_snapshots(tmp_path / "data") if c.event and c.event["event_id"] == crossing]
    assert others and not any(c.event.get("hard_negative") for c in others)
