"""`street-vision serve` as a real process: health, a snapshot, a zone posted over HTTP lands in the
config file and in the running pipeline, SIGTERM stops everything cleanly, and no secret is logged."""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys

import cv2
import httpx
import numpy as np
import yaml

from .api_support import AS_ADMIN, AS_READER, ENV, SECRETS, serve, write_config
from .conftest import ROOT
from .dispatch_support import wait_for


def test_serve_runs_the_pipeline_behind_the_api(tmp_path) -> None:
    config = write_config(tmp_path)
    with serve(config) as served:
        api = httpx.Client(base_url=served.url, timeout=10)
        wait_for(
            lambda: api.get("/healthz").json()["cameras"]["plaza"] == "live", "the camera to be live", 60
        )
        camera = api.get("/api/cameras/plaza", headers=AS_READER).json()
        assert camera["health"]["state"] == "live" and camera["health"]["fps_in"] > 0
        snapshot = wait_for(
            lambda: (
                (r := api.get("/api/cameras/plaza/snapshot.jpg", headers=AS_READER)).status_code == 200 and r
            ),
            "a snapshot",
        )
        assert cv2.imdecode(np.frombuffer(snapshot.content, np.uint8), cv2.IMREAD_COLOR) is not None

        zone = {"name": "posted", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}
        zone["rules"] = {"crowd": {"enter_count": 1, "min_duration": 0}}
        assert api.post("/api/cameras/plaza/zones", headers=AS_ADMIN, json=zone).status_code == 201
        assert "posted" in yaml.safe_load(config.read_text())["cameras"]["plaza"]["zones"]
        wait_for(
            lambda: "posted" in api.get("/api/cameras/plaza", headers=AS_READER).json()["active_zones"],
            "the running pipeline to watch the posted zone",
        )
        event = wait_for(
            lambda: api.get("/api/events?zone=posted", headers=AS_READER).json(),
            "an event on the posted zone",
            60,
        )[0]
        assert event["type"] == "crowd"
        metrics = api.get("/metrics", headers=AS_READER).text
        assert 'street_vision_events{state="open",type="crowd"}' in metrics

        served.process.send_signal(signal.SIGTERM)
        served.process.wait(timeout=30)
    output = served.log.read_text()
    assert served.process.returncode == 0, output
    assert "stopped" in output
    assert output.count("start-up objects frozen") == 1  # vision/collector.py, before the pipeline ran
    assert (tmp_path / "data" / "heatmaps" / "plaza.png").exists()
    for secret in SECRETS:
        assert secret not in output


def test_sigterm_while_transitions_are_written_leaves_the_store_whole(tmp_path) -> None:
    """A crowd of one on the whole picture, an update whenever its count changes: SIGTERM lands while the
    pipeline writes transitions; the web server stops first, then the pipeline, then the store closes."""
    config = write_config(tmp_path)
    text = config.read_text().replace("enter_count: 30, min_duration: 2", "enter_count: 1, min_duration: 0")
    config.write_text(text + "events: {update_interval: 0}\n")
    with serve(config) as served:
        api = httpx.Client(base_url=served.url, timeout=10)

        def transitions() -> int:
            events = api.get("/api/events", headers=AS_READER).json()
            return sum(
                len(api.get(f"/api/events/{e['event_id']}", headers=AS_READER).json()["transitions"])
                for e in events
            )

        wait_for(lambda: transitions() >= 5, "transitions being written", 60)
        served.process.send_signal(signal.SIGTERM)
        served.process.wait(timeout=30)
    output = served.log.read_text()
    assert served.process.returncode == 0, output
    for bad in ("Traceback", "database is locked", "closed database", "pipeline failed", "did not stop"):
        assert bad not in output, output
    ended = re.search(r"pipeline ended: transitions (\{.*\})", output)
    assert ended, output
    assert output.index("Finished server process") < ended.start() < output.index("stopped", ended.end())
    db = sqlite3.connect(tmp_path / "data" / "street-vision.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    rows = db.execute(
        "SELECT t.kind, t.payload, e.event_id FROM transitions t LEFT JOIN events e USING (event_id)"
    )
    stored = [(kind, json.loads(payload), event) for kind, payload, event in rows]
    assert all(event is not None and payload["transition"] == kind for kind, payload, event in stored)
    emitted = ast.literal_eval(ended.group(1))  # what the pipeline emitted: every one is in the store
    assert len(stored) == sum(emitted.values()) >= 5
    assert {kind: sum(k == kind for k, _, _ in stored) for kind in emitted} == emitted


def test_serve_refuses_to_start_without_tokens(tmp_path) -> None:
    config = write_config(tmp_path)
    env = {k: v for k, v in {**os.environ, **ENV}.items() if not k.startswith("STREET_VISION_")}
    done = subprocess.run(
        [sys.executable, "-m", "vision.cli", "serve", str(config), "--port", "9"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "STREET_VISION_ADMIN_TOKEN" in done.stderr and "Traceback" not in done.stderr
    weak = subprocess.run(
        [sys.executable, "-m", "vision.cli", "serve", str(config), "--port", "9"],
        cwd=ROOT,
        env={**env, "STREET_VISION_ADMIN_TOKEN": "short"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert weak.returncode == 2 and "too short" in weak.stderr
