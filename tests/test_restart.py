"""A restart never orphans or duplicates a ticket: `street-vision run` SIGKILLed at random moments while a
crowd ticket is open, then run to the end on the same store; the real receiver ends up with one ticket
for the crowd, opened once and closed once, as the camera saw it gone."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ROOT, start_run
from .dispatch_support import SECRET, Receiver, wait_for

SAMPLE = ROOT / "sample_videos" / "plaza.mp4"
KILLS = 5


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    server = Receiver(tmp_path / "receiver.sqlite").start()
    yield server
    server.stop()


def demo_config(tmp_path: Path, url: str, batch_wait: float = 0.0, backend: str = "onnx") -> Path:
    """The demo's crowd zone on the plaza clip played in real time, like a camera, with dispatch (and
    ``detector.batch_wait``: frames held back for a batch when killed must lose nothing either; and
    ``detector.backend``: an engine with threads of its own, OpenVINO's, killed with the rest)."""
    demo = (ROOT / "configs" / "demo.yaml").read_text()
    text = demo.replace("url: ../sample_videos/plaza.mp4", f"url: {SAMPLE}\n    realtime: true")
    assert "\ndetector:\n" in text
    text = text.replace("\ndetector:\n", f"\ndetector:\n  batch_wait: {batch_wait}\n  backend: {backend}\n")
    text = text.replace("../data", str(tmp_path / "data"))
    text += (
        f"\ndispatch:\n  webhook_url: {url}\n  secret: ${{HOOK_SECRET}}\n"
        "  backoff_initial: 0.05\n  backoff_max: 0.2\n  timeout: 2\n"
    )
    config = tmp_path / "demo.yaml"
    config.write_text(text)
    return config


def fast(config: Path) -> None:
    """The same config reading the clip as fast as it can (a file camera's other mode): a run that only
    has to see the crowd leave takes seconds instead of the clip's 40."""
    text = config.read_text()
    assert "\n    realtime: true" in text
    config.write_text(text.replace("\n    realtime: true", ""))


def restores(log: Path) -> int:
    return log.read_text().count("restored 1 open event(s) from the store")


def open_tickets(receiver: Receiver) -> list[tuple[str, str, str]]:
    return [t for t in receiver.tickets() if t[2] == "open"]


@pytest.mark.parametrize(("batch_wait", "backend"), [(0.0, "onnx"), (0.5, "onnx"), (0.0, "openvino")])
def test_sigkill_while_a_crowd_ticket_is_open_leaves_one_ticket_closed_once(
    tmp_path: Path, receiver: Receiver, batch_wait: float, backend: str
) -> None:
    config, log = demo_config(tmp_path, receiver.url, batch_wait, backend), tmp_path / "run.log"
    rng = random.Random(12)  # random moments, the same on every run of the test
    for i in range(KILLS):
        process = start_run(config, log, {"HOOK_SECRET": SECRET})
        try:
            if i == 0:  # the crowd forms about 15 s into the clip
                wait_for(lambda: open_tickets(receiver), "the crowd ticket to open", 90.0)
            else:  # killed once it has restored the camera and is watching again
                wait_for(lambda n=i: restores(log) == n, f"restart {i} to restore the camera", 60.0)
            time.sleep(rng.uniform(0.5, 6.0))
            assert process.poll() is None, log.read_text()[-3000:]
            assert len(open_tickets(receiver)) == 1
        finally:
            process.kill()
            process.wait(10)
    fast(config)  # the kills needed real time to land while the camera watched; the last run does not
    final = start_run(config, log, {"HOOK_SECRET": SECRET})
    assert final.wait(180) == 0, log.read_text()[-3000:]
    tickets = receiver.tickets()
    history = receiver.history()
    assert len(tickets) == 1 and tickets[0][2] == "closed", (tickets, history)
    kinds = [h[3] for h in history]
    assert kinds[0] == "open" and kinds[-1] == "close" and kinds.count("open") == 1, kinds
    assert kinds.count("close") == 1 and "reopen" not in kinds, kinds
    close = receiver.bodies()[-1]
    assert close["event"]["close_reason"] == "resolved" and close["event"]["resolved_at"] > close["pts"] - 1
    with sqlite3.connect(tmp_path / "data" / "street-vision.sqlite") as db:
        assert db.execute("SELECT COUNT(*), MIN(state) FROM events").fetchone() == (1, "resolved")
        assert db.execute("SELECT COUNT(*) FROM outbox WHERE status != 'delivered'").fetchone() == (0,)
    assert restores(log) == KILLS
