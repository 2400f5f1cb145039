"""A config change between two runs: the open tickets of a camera that left the config (or was disabled)
are closed on start with that reason, committed with a close transition, never left open."""

from __future__ import annotations

from pathlib import Path

import pytest

from vision.config import parse_config
from vision.pipeline import Pipeline
from vision.store import Store
from vision.types import Transition

from .conftest import SAMPLE


def opened(camera: str) -> dict:
    return {
        "event_id": f"event-of-{camera}",
        "type": "crowd",
        "camera": camera,
        "zone": "z",
        "subject": "zone",
        "state": "open",
        "first_seen": 1.0,
        "opened_at": 3.0,
        "resolved_at": None,
        "reopened_at": None,
        "reopens": 0,
        "confidence": 0.9,
        "count": 8,
        "peak_count": 8,
        "close_reason": None,
        "report": None,
        "verification": None,
        "failed_verifications": 0,
    }


@pytest.mark.parametrize(
    ("extra", "reason"),
    [("", "camera_removed"), ("  gate:\n    url: x.mp4\n    enabled: false\n", "camera_disabled")],
)
def test_open_tickets_of_a_camera_gone_from_the_config_close_on_start(
    detector, tmp_path: Path, extra: str, reason: str
) -> None:
    store = Store(tmp_path, "earlier run")
    store.record([(Transition("open", 3.0, opened("gate")), {"transition": "open"})])
    config = parse_config(f"cameras:\n  plaza:\n    url: {SAMPLE}\n    detect_fps: 1\n{extra}")
    closes: list[Transition] = []
    Pipeline(config, detector, store, on_transition=lambda t, _: closes.append(t)).run()
    assert [(t.kind, t.event["event_id"], t.event["close_reason"]) for t in closes] == [
        ("close", "event-of-gate", reason)
    ]
    assert store.open_events() == [] and store.snapshot("gate") is None
    store.close()
