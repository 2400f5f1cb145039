"""A long outage never orphans a ticket: an RTSP camera (a real rtsp-server-perl fed by ffmpeg) opens a
ticket for a person lingering, its server dies, and when it comes back showing the place empty the
ticket closes, as the real receiver records; nothing closes while it is dark.

The dark time outlasts every timer that could close or forget the ticket (close_after 2 s; rules used
to forget a subject after 2 * close_after + 60 s = 64 s); STREET_VISION_OUTAGE_SECONDS=300 runs the
durable-loop issue's full five minutes (CI's budget runs 70 s, past the 64 s horizon)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vision.config import parse_config
from vision.ingest.health import CameraHealth, CameraState
from vision.runtime import Runtime

from .dispatch_support import Receiver, dispatch_config, wait_for
from .ingest_servers import PerlRtsp, _need

DARK_SECONDS = float(os.environ.get("STREET_VISION_OUTAGE_SECONDS", "70"))
FORGET_HORIZON = 2 * 2 + 60  # when rules used to forget the subject: the darkness must outlast it
STREAM = "{transport: udp, stall_timeout: 2, open_timeout: 5, reconnect_initial: 0.25, reconnect_max: 2}"


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    server = Receiver(tmp_path / "receiver.sqlite").start()
    yield server
    server.stop()


def empty_scene(folder: Path) -> Path:
    """A few seconds of an empty grey picture: the same camera, nobody there any more."""
    path = folder / "empty.mp4"
    subprocess.run(
        [
            *(_need("ffmpeg"), "-v", "error", "-f", "lavfi", "-i", "color=c=0x808080:s=384x288:r=10"),
            *("-t", "4", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)),
        ],
        check=True,
        timeout=60,
    )
    return path


def test_five_minutes_dark_then_seen_gone_closes_the_ticket(tmp_path: Path, receiver: Receiver) -> None:
    server = PerlRtsp()
    config = parse_config(
        f"cameras:\n  bank:\n    url: {server.url('bank')}\n    detect_fps: 5\n    stream: {STREAM}\n"
        "    zones:\n      quay:\n        polygon: [[0, 0], [1, 0], [1, 1], [0, 1]]\n        rules:\n"
        "          fishing: {min_duration: 2, close_after: 2, inertia: 2, threshold: 0.4}\n"
        f"storage: {{data_dir: {tmp_path / 'data'}}}\n"
    )
    config = config.model_copy(update={"dispatch": dispatch_config(receiver.url)})
    assert DARK_SECONDS > FORGET_HORIZON, "STREET_VISION_OUTAGE_SECONDS must outlast the rules' timers"
    states: list[tuple[float, CameraState]] = []

    def on_health(health: CameraHealth) -> None:
        states.append((time.monotonic(), health.state))

    runtime = Runtime.build(config, tmp_path / "config.yaml", on_health=on_health)
    assert runtime.dispatcher is not None
    runtime.dispatcher.start()
    runner = threading.Thread(target=runtime.pipeline.run, kwargs={"max_seconds": DARK_SECONDS + 240})
    empty = empty_scene(tmp_path)
    try:
        server.start().publish("bank")
        runner.start()
        wait_for(lambda: receiver.tickets(), "a lingering ticket to open", 90.0)
        server.kill()
        wait_for(lambda: states and states[-1][1] is CameraState.OFFLINE, "the camera to go offline", 30.0)
        dark_since = time.monotonic()
        time.sleep(2.0)  # deliveries under way land
        opened = {event for _, event, state in receiver.tickets() if state == "open"}
        assert opened
        while time.monotonic() - dark_since < DARK_SECONDS:
            closed = [event for _, event, state in receiver.tickets() if state == "closed"]
            assert not opened & set(closed), "a ticket closed while the camera was dark"
            time.sleep(5.0)
        server.start()
        server.publish("bank", video=empty)
        wait_for(
            lambda: all(state == "closed" for _, event, state in receiver.tickets() if event in opened),
            "the tickets to close once the camera sees the quay empty",
            90.0,
        )
    finally:
        runtime.pipeline.stop()
        runner.join(30)
        runtime.close()
        server.close()
    bodies = receiver.bodies()
    closes = [b for b in bodies if b["transition"] == "close" and b["event"]["event_id"] in opened]
    assert {b["event"]["close_reason"] for b in closes} == {"resolved"}
    assert len(closes) == len(opened)
    back = next(t for t, s in states if t > dark_since and s is CameraState.LIVE)
    assert back - dark_since >= DARK_SECONDS  # it was dark all that time, and nothing closed then
