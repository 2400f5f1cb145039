"""Open311 end to end, on real video played as a live camera: litter on the walkway becomes a GeoReport v2
service request at the sanitation system (the crowd on the same camera goes to the duty officer's webhook
instead), the city closes the request, the status poll reports it handled, and the camera verifies: still
there -> the ticket goes back as a new request; gone -> closed verified_fixed. Meanwhile an archive target
that is down holds back nothing of the others, and a target routed to other hours gets nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from vision.store import EventStore

from .api_support import AS_READER, in_process
from .conftest import ROOT
from .dispatch_support import Receiver, wait_for
from .open311_support import API_KEY, Open311Server

CLIP = ROOT / "sample_videos" / "litter.mp4"  # a bundle lies on the walkway from 5 s to 30 s
WALKWAY = "[[0.0, 0.30], [0.55, 0.30], [0.95, 0.22], [1.0, 0.22], [1.0, 0.86], [0.0, 0.51]]"
PUBLIC = "http://vision.test"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[Open311Server, Receiver, Receiver]]:
    city = Open311Server(tmp_path / "open311.sqlite").start()
    duty = Receiver(tmp_path / "duty.sqlite", secret="duty-secret-123").start()
    down = Receiver(tmp_path / "down.sqlite")  # never started: connections are refused
    yield city, duty, down
    for server in (city, duty, down):
        server.stop()


def config(folder: Path, city: Open311Server, duty: Receiver, down: Receiver) -> Path:
    hour = time.gmtime().tm_hour
    elsewhen = f"{(hour + 3) % 24:02d}:00-{(hour + 4) % 24:02d}:00"  # hours this test never runs in
    fast = "timeout: 2, backoff_initial: 0.05, backoff_max: 0.2"
    path = folder / "open311.yaml"
    path.write_text(
        f"""cameras:
  walk:
    url: {CLIP}
    realtime: true
    detect_fps: 5
    group: centre
    location: {{lat: 52.52, long: 13.405}}
    zones:
      walkway:
        polygon: {WALKWAY}
        location: {{lat: 52.5201, long: 13.4052}}
        rules:
          litter: {{min_duration: 10, close_after: 5}}
      everywhere:
        polygon: [[0, 0], [1, 0], [1, 1], [0, 1]]
        rules:
          crowd: {{enter_count: 2, exit_count: 1, min_duration: 1}}
detector: {{min_score: 0.4, classes: [person, bicycle, motorcycle, bottle, cup]}}
events: {{verify_within: 8}}
dispatch:
  public_url: {PUBLIC}
  targets:
    sanitation:
      kind: open311
      url: {city.url}
      api_key: {API_KEY}
      service_codes: {{litter: SAN-7}}
      poll_interval: 0.2
      {fast.replace(", ", chr(10) + "      ")}
    duty:
      kind: webhook
      url: {duty.url}
      secret: duty-secret-123
      route: {{types: [crowd], groups: [centre]}}
      {fast.replace(", ", chr(10) + "      ")}
    archive:
      kind: webhook
      url: {down.url}
      secret: archive-secret-456
      route: {{types: [litter]}}
      {fast.replace(", ", chr(10) + "      ")}
    night:
      kind: webhook
      url: {down.url}
      secret: night-secret-789
      route: {{hours: ['{elsewhen}'], timezone: UTC}}
storage:
  data_dir: {folder / "data"}
"""
    )
    return path


def event(store: EventStore, event_id: str) -> dict[str, Any]:
    found = store.event(event_id)
    assert found is not None
    return found[0]


def test_a_city_closes_the_request_and_the_camera_verifies_it(
    tmp_path: Path, servers: tuple[Open311Server, Receiver, Receiver]
) -> None:
    city, duty, down = servers
    with (
        in_process(config(tmp_path, city, duty, down)) as running,
        TestClient(running.app, base_url=PUBLIC) as client,  # type: ignore[arg-type]
    ):
        (first,) = wait_for(lambda: city.all(), "the litter's service request", 60.0)
        event_id = first["attributes"].split('"')[3]
        assert (first["service_code"], first["lat"], first["long"]) == ("SAN-7", 52.5201, 13.4052)
        assert (
            first["description"]
            == f"litter in zone walkway of camera walk: 1 seen (street-vision event {event_id})"
        )
        # the picture is linked for the city without our token; a changed link shows nothing
        media = urlsplit(first["media_url"])
        assert f"{media.scheme}://{media.netloc}" == PUBLIC and media.path.endswith("-open-annotated.jpg")
        picture = client.get(f"{media.path}?{media.query}")
        assert picture.status_code == 200 and picture.content[:2] == b"\xff\xd8"
        assert client.get(f"{media.path}?sig={'0' * 64}").status_code == 404
        # the city says it is done, but the bundle still lies there: after verify_within the ticket goes back
        assert city.requests.update(1, "closed", "swept by crew 4")
        again = wait_for(lambda: city.all()[1:], "a new request for the ticket that went back", 30.0)
        assert again[0]["description"].startswith("Reported again: the camera still sees it.")
        store = running.runtime.store.another()  # this thread's own handle
        back = event(store, event_id)
        assert (back["state"], back["verification"]) == ("open", "failed")
        # the second crew takes it away (the clip's bundle goes at 30 s): closed verified_fixed
        assert city.requests.update(2, "closed", "collected")
        closed = wait_for(
            lambda: (e := event(store, event_id))["state"] == "resolved" and e, "the verified close", 40.0
        )
        assert (closed["close_reason"], closed["verification"]) == ("verified_fixed", "passed")
        history = client.get(f"/api/events/{event_id}", headers=AS_READER).json()["reports"]
        assert [(r["status"], r["note"], r["ticket_id"]) for r in history] == [
            ("handled", "swept by crew 4", "1"),
            ("handled", "collected", "2"),
        ]
        sent = store.sql.execute(
            "SELECT o.target, t.kind, o.status FROM outbox o JOIN transitions t ON t.seq = o.seq "
            "WHERE o.event_id = ? ORDER BY o.id",
            (event_id,),
        ).fetchall()
        assert [(k, s) for t, k, s in sent if t == "sanitation"] == [
            ("open", "delivered"),
            ("reopen", "delivered"),
            ("close", "delivered"),
        ]
        assert {(t, s) for t, _, s in sent if t != "sanitation"} == {("archive", "pending")}
        assert store.outbox_counts("night").to_record() == {
            "delivered": 0,
            "pending": 0,
            "blocked": 0,
            "dead": 0,
        }
        ticket = store.sql.execute(
            "SELECT ticket_id FROM remote_tickets WHERE event_id = ? AND target = 'sanitation'", (event_id,)
        ).fetchone()
        assert ticket == ("2",)  # the request that stands for the event now
        figures = client.get("/api/figures", headers=AS_READER).json()
        litter = next(f for f in figures if f["type"] == "litter")
        assert (litter["verified_fixed"], litter["failed_verifications"], litter["rejected"]) == (1, 1, 0)
        assert litter["open_to_handled"]["count"] >= 1 and litter["open_to_closed"]["count"] == 1
        crowd = wait_for(lambda: duty.bodies(), "the crowd's ticket at the duty officer's webhook", 10.0)
        assert {b["event"]["type"] for b in crowd} == {"crowd"}
        store.close()
    assert [r["status"] for r in city.all()] == ["closed", "closed"]  # nothing else was filed
