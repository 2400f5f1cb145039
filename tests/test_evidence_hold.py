"""A camera whose transition waits for its main stream's picture goes on analysing: only its commits
wait (vision/events/evidence.py). Real RTSP cameras on 127.0.0.1 (GStreamer's server): the substream
at once, the main stream held back seconds after PLAY (a main stream slow to open, as a loaded IP
camera's is); two zones whose crowd tickets open 1.5 s apart, both inside the first wait; a kill, and
a unit's failure and restart, during a wait."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vision.config import parse_config
from vision.detect.detector import Detector
from vision.pipeline import Pipeline
from vision.rules.crowd import CrowdRule
from vision.store import Store
from vision.types import Transition

from .conftest import ROOT, SAMPLE
from .ingest_servers import GstRtsp
from .test_substreams import analysed_per_window, events, run

CROWD = "crowd: {enter_count: 2, exit_count: 1, window: 1, min_duration: %g, close_after: 30}"
WHOLE = "polygon: [[0, 0], [1, 0], [1, 1], [0, 1]]"


@pytest.fixture(scope="module")
def substream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample at half size (384x288), its keyframes 1 s apart: the camera's detection stream."""
    clip = tmp_path_factory.mktemp("sub") / "sub.mp4"
    scale = ["-vf", "scale=384:-2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-an"]
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(SAMPLE), *scale, str(clip)], check=True)
    return clip


def config(tmp_path: Path, server: GstRtsp, timeout: float, checkpoint: float = 10.0) -> Path:
    """One camera of the two mounts: zone ``early`` opens its ticket after 1 s of crowd, ``late`` after
    2.5 s; streams may take ``timeout`` seconds to open (the main stream's picture too)."""
    path = tmp_path / "hold.yaml"
    path.write_text(
        f"cameras:\n  pair:\n    url: {server.url('main')}\n    detect_url: {server.url('sub')}\n"
        f"    detect_fps: 2\n    stream: {{transport: tcp, snapshot_timeout: {timeout:g}, "
        f"open_timeout: {timeout:g}}}\n"
        f"    zones:\n      early:\n        {WHOLE}\n        rules:\n          {CROWD % 1}\n"
        f"      late:\n        {WHOLE}\n        rules:\n          {CROWD % 2.5}\n"
        f"detector:\n  classes: [person]\n"
        f"storage:\n  data_dir: {tmp_path / 'data'}\n  checkpoint_interval: {checkpoint:g}\n"
    )
    return path


def test_transitions_wait_for_their_pictures_in_order_while_the_camera_goes_on(
    tmp_path: Path, substream: Path
) -> None:
    """Each main-stream fetch takes over 3 s; both tickets open inside the first, so the second waits
    behind the first (its own fetch after). Meanwhile the camera analyses every frame at its rate,
    and the second ticket opens 1.5 s of stream after the first, as the crowd did (a camera that
    stopped for the picture would see it ~4 s later, at its next frame)."""
    server = GstRtsp([("main", SAMPLE, 3.0), ("sub", substream, 0.0)]).start()
    try:
        lines, result = run(config(tmp_path, server, 12), "--max-seconds", "14", "--stats-every", "2")
    finally:
        server.close()
    opened = events(lines, "pair")
    assert [(e["transition"], e["event"]["zone"]) for e in opened] == [("open", "early"), ("open", "late")], (
        opened,
        result.stderr[-2000:],
    )
    early, late = opened
    for event in opened:
        shots = event["snapshots"]
        assert (shots["source"], shots["width"], shots["height"]) == ("main", 768, 576), shots
        boxes = np.array([b["box"] for b in event["boxes"]])
        assert boxes[:, [0, 2]].max() <= 384  # detected on the substream
    assert 1.0 <= late["pts"] - early["pts"] < 2.5, (early["pts"], late["pts"])
    # frames analysed in every 2 s window from the first one that had any to the run's end (the
    # windows that ended within its 14 s: its end waits for the second picture); a camera that
    # stopped for a picture (over 3 s each) would leave one empty
    seeing = analysed_per_window(lines, "pair", 14)
    assert len(seeing) >= 4 and min(seeing) >= 1, seeing


def test_a_kill_while_transitions_wait_leaves_no_checkpoint_ahead_of_them(
    tmp_path: Path, substream: Path
) -> None:
    """The main stream answers only after a minute: the tickets stay held. The camera keeps analysing
    (its detections are stored) but writes no checkpoint; killed then, the store has no event and a
    checkpoint from before the first ticket. The next run, with a main stream that answers, opens
    each ticket once, with the main stream's picture."""
    server = GstRtsp([("main", SAMPLE, 60.0), ("sub", substream, 0.0)]).start()
    try:
        path = config(tmp_path, server, 60, checkpoint=0.5)
        command = [sys.executable, "-m", "vision.cli", "run", str(path), "--jsonl", "--stats-every", "1"]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, text=True
        )
        try:
            analysed, deadline = 0, time.monotonic() + 60
            while analysed < 16 and time.monotonic() < deadline and (line := process.stdout.readline()):
                record = json.loads(line)
                if record["kind"] == "stats":
                    analysed += record["cameras"]["pair"]["frames_analysed"]
            assert analysed >= 16, process.stderr.read() if process.poll() is not None else analysed
        finally:
            process.kill()
            process.wait(10)
    finally:
        server.close()
    with sqlite3.connect(tmp_path / "data" / "street-vision.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM events").fetchone() == (0,)
        (state,) = db.execute("SELECT state FROM camera_state WHERE camera = 'pair'").fetchone()
        (seen,) = db.execute("SELECT MAX(pts) FROM detections WHERE camera = 'pair'").fetchone()
    state = json.loads(state)
    # analysed (and its boxes stored) for seconds past the last checkpoint: the hold, not a stop
    assert seen - state["pts"] >= 3, (seen, state["pts"])
    held = [t["event"]["state"] for t in state["lifecycle"]["tracks"]]
    assert "open" not in held, held  # the checkpoint is from before the tickets opened
    server = GstRtsp([("main", SAMPLE, 0.0), ("sub", substream, 0.0)]).start()
    try:
        lines, result = run(config(tmp_path, server, 12), "--max-seconds", "8")
    finally:
        server.close()
    opened = events(lines, "pair")
    assert sorted(e["event"]["zone"] for e in opened if e["transition"] == "open") == ["early", "late"], (
        opened,
        result.stderr[-2000:],
    )
    assert {e["snapshots"]["source"] for e in opened} == {"main"}


def test_a_unit_that_fails_while_its_transition_waits_restarts_with_it_committed(
    tmp_path: Path, substream: Path, detector: Detector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unit fails once (a test fault in zone ``late``'s rule, at its 5th frame: 2 s of stream) while
    ``early``'s ticket, opened at 1 s, waits for the main stream's picture (held back 3 s). Its restart,
    half a second of stream later, commits the held ticket before it reads the camera's state back, so
    the restored unit carries that ticket on: ``early`` is opened once, with the main stream's picture
    (read back first, the restored unit would open it a second time)."""
    observe, calls = CrowdRule.observe, []

    def faulty(rule: CrowdRule, *args: Any, **kwargs: Any) -> Any:
        if rule.zone.name == "late":
            calls.append(len(calls) + 1)
            if len(calls) == 5:
                raise RuntimeError("test fault")
        return observe(rule, *args, **kwargs)

    monkeypatch.setattr(CrowdRule, "observe", faulty)
    opened: list[tuple[str, str]] = []

    def transition(t: Transition, payload: dict[str, Any]) -> None:
        if t.kind == "open":
            opened.append((t.event["zone"], payload["snapshots"]["source"]))

    server = GstRtsp([("main", SAMPLE, 3.0), ("sub", substream, 0.0)]).start()
    try:
        text = config(tmp_path, server, 12).read_text() + "health: {restart_initial: 0.5, restart_max: 1}\n"
        store = Store(tmp_path / "data", "test")
        pipeline = Pipeline(parse_config(text), detector, store, on_transition=transition)
        try:
            summary = pipeline.run(max_seconds=12)
        finally:
            store.close()
    finally:
        server.close()
    assert len(calls) > 5 and pipeline.workers["pair"].generation == 1, (calls, summary)  # failed, restarted
    assert sorted(opened) == [("early", "main"), ("late", "main")], opened
    with sqlite3.connect(tmp_path / "data" / "street-vision.sqlite") as db:
        zones = [row[0] for row in db.execute("SELECT zone FROM events ORDER BY zone")]
    assert zones == ["early", "late"], zones
