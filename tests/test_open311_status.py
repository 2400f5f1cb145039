"""The Open311 target against the real test server, without video: a request filed with a token gets its
id from the status poll, the staff's notes become in_progress and the close handled, each reported once;
a wrong api_key is a permanent refusal kept with the server's own words; updates and closes send nothing."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi import FastAPI, Request
from pydantic import SecretStr

from vision.config import CameraConfig, DispatchConfig, parse_config
from vision.dispatch.dispatcher import Dispatcher
from vision.dispatch.routing import Router
from vision.dispatch.targets import TargetConfig
from vision.events.lifecycle import Timers

from .dispatch_support import F, Loopback, Sender, T, steady, wait_for
from .open311_support import API_KEY, Open311Server

TIMERS = Timers(min_duration=1.0, close_after=2.0, update_interval=1.0, reopen_window=10.0)
CAMERAS = parse_config(
    "cameras:\n  cam:\n    url: x.mp4\n    location: {lat: 48.1372, long: 11.5756}\n    zones:\n"
    "      square: {polygon: [[0, 0], [1, 0], [1, 1]]}\n"
).cameras
FAST = {"timeout": 2.0, "max_attempts": 50, "backoff_initial": 0.05, "backoff_max": 0.2, "poll_interval": 0.1}


def open311(url: str, api_key: str) -> TargetConfig:
    return TargetConfig(
        kind="open311", url=url, api_key=SecretStr(api_key), service_codes={"crowd": "BIKE-2"}, **FAST
    )


def test_tokens_notes_and_closes_come_back_as_reports_once(tmp_path: Path) -> None:
    city = Open311Server(tmp_path / "open311.sqlite", tokens=True).start()
    targets = {"city": open311(city.url, API_KEY), "wrong": open311(city.url, "not-the-key")}
    sender = Sender(tmp_path / "data", TIMERS, router=Router(targets, {}))
    dispatcher = Dispatcher(sender.store.another, DispatchConfig(targets=targets), CAMERAS)
    reported: list[str] = []
    dispatcher.on_report = reported.append
    dispatcher.start()
    store = sender.store

    def ticket() -> str | None:
        row = store.sql.execute("SELECT ticket_id FROM remote_tickets WHERE target = 'city'").fetchone()
        return None if row is None else row[0]

    try:
        assert sender.feed(steady(0, 2, T) + steady(2.5, 4, T, 12)) == ["open", "update"]
        dispatcher.notify()
        wait_for(lambda: store.outbox_counts("city").delivered == 2, "the open and the update at the city")
        (filed,) = city.all()  # the update filed nothing
        assert (filed["service_code"], filed["lat"], filed["long"]) == ("BIKE-2", 48.1372, 11.5756)
        wait_for(lambda: ticket() == "1", "the token to turn into the request id")
        event_id = store.sql.execute("SELECT event_id FROM events").fetchone()[0]
        assert city.requests.update(1, "open", "crew on the way")
        wait_for(lambda: store.reports(event_id), "the staff's notes as a report")
        assert city.requests.update(1, "closed", "bicycle moved")
        wait_for(lambda: len(store.reports(event_id)) == 2, "the close as a report")
        time.sleep(10 * FAST["poll_interval"])  # ten more polls see the same: nothing new is reported
        assert [(r["status"], r["note"], r["ticket_id"]) for r in store.reports(event_id)] == [
            ("in_progress", "crew on the way", "1"),
            ("handled", "bicycle moved", "1"),
        ]
        assert reported == ["cam", "cam"]
        # the wrong key: refused for good, in the spec's words, and only that target's messages wait
        wrong = wait_for(lambda: [m for m in store.outbox_listing() if m["status"] == "dead"], "the refusal")
        assert wrong[0]["target"] == "wrong" and wrong[0]["last_error"] == (
            f"refused for good: POST {city.url}/requests.json: HTTP 403: api_key is missing or not valid"
        )
        assert sender.feed(steady(4.5, 7, F, 0)) == ["close"]
        dispatcher.notify()
        wait_for(lambda: store.outbox_counts("city").delivered == 3, "the close, sent as nothing")
        assert len(city.all()) == 1 and store.outbox_counts("wrong").to_record()["blocked"] == 2
    finally:
        dispatcher.stop()
        store.close()
        city.stop()


def test_an_answer_that_does_not_say_what_it_filed_is_not_sent_again(tmp_path: Path) -> None:
    app = FastAPI()
    posts: list[bytes] = []

    @app.post("/v2/requests.json", status_code=201)
    async def filed(request: Request) -> list[dict[str, str]]:
        posts.append(await request.body())
        return [{"service_notice": "thank you"}]  # neither a service_request_id nor a token

    endpoint = Loopback(app).start()
    try:
        dead = dead_open({"odd": open311(f"{endpoint.base}/v2", API_KEY)}, CAMERAS, tmp_path)
    finally:
        endpoint.stop()
    assert dead["attempts"] == 1 and len(posts) == 1
    assert "HTTP 201 without a service_request_id or token" in dead["last_error"]
    assert API_KEY not in dead["last_error"]


def test_a_zone_without_a_place_is_dead_lettered_saying_what_to_set(tmp_path: Path) -> None:
    city = Open311Server(tmp_path / "open311.sqlite").start()
    try:
        dead = dead_open({"city": open311(city.url, API_KEY)}, {}, tmp_path)  # no camera placed
        assert dead["last_error"] == (
            "refused for good: zone square of camera cam has no location: set cameras.cam.location, then: "
            "street-vision outbox resend CONFIG"
        )
        assert city.all() == []
    finally:
        city.stop()


def dead_open(targets: dict[str, TargetConfig], cameras: dict[str, CameraConfig], tmp_path: Path) -> dict:
    """Open one event for ``targets`` and return its open's listing once it is dead-lettered."""
    sender = Sender(tmp_path / "data", TIMERS, router=Router(targets, {}))
    dispatcher = Dispatcher(sender.store.another, DispatchConfig(targets=targets), cameras)
    dispatcher.start()
    try:
        assert sender.feed(steady(0, 2, T)) == ["open"]
        dispatcher.notify()
        dead = wait_for(
            lambda: [m for m in sender.store.outbox_listing() if m["status"] == "dead"], "dead letter"
        )
        return dead[0]
    finally:
        dispatcher.stop()
        sender.store.close()
