"""A zone deleted through the API while its ticket is open: the ticket closes at the real receiver, with
reason zone_removed, and the camera goes on with its other zones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from .api_support import AS_ADMIN, HOOK_SECRET, in_process, plaza_service
from .dispatch_support import Receiver, wait_for


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    server = Receiver(tmp_path / "receiver.sqlite", secret=HOOK_SECRET).start()
    yield server
    server.stop()


def config(folder: Path, url: str) -> Path:
    """The plaza clip looping in real time; a crowd of two on the crossing opens a ticket within seconds."""
    zones = """      crossing:
        polygon: [[0.0, 0.33], [0.55, 0.33], [0.95, 0.25], [1.0, 0.45], [1.0, 0.85], [0.0, 0.5]]
        rules:
          crowd: {enter_count: 2, exit_count: 1, min_duration: 1}
      lawn:
        polygon: [[0.0, 0.85], [1.0, 0.85], [1.0, 1.0], [0.0, 1.0]]
        rules:
          crowd: {enter_count: 40}
"""
    return plaza_service(folder, zones, "detector:\n  classes: [person]\n", url)


def test_deleting_a_zone_closes_its_open_ticket_with_zone_removed(tmp_path: Path, receiver: Receiver) -> None:
    with in_process(config(tmp_path, receiver.url)) as running, TestClient(running.app) as client:  # type: ignore[arg-type]
        wait_for(lambda: [t for t in receiver.tickets() if t[2] == "open"], "the crossing's ticket", 60.0)
        assert client.delete("/api/cameras/plaza/zones/crossing", headers=AS_ADMIN).status_code == 204
        wait_for(lambda: [t for t in receiver.tickets() if t[2] == "closed"], "the close", 30.0)
        assert len(receiver.tickets()) == 1
        close = receiver.bodies()[-1]
        assert close["transition"] == "close" and close["event"]["zone"] == "crossing"
        assert close["event"]["close_reason"] == "zone_removed"
        events = client.get("/api/events?zone=crossing", headers=AS_ADMIN).json()
        assert [e["state"] for e in events] == ["resolved"], events
        assert running.thread.is_alive()
