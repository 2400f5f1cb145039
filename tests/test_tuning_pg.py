"""`dataset mine` on a config whose store is in PostgreSQL (storage.url): the same event and uncertain
frames as from SQLite, read through the EventStore interface."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from vision.secrets import SecretUrl
from vision.store.postgres import PostgresStore

from .conftest import ROOT, SAMPLE, cli
from .pg_support import PostgresServer


def test_mine_a_config_whose_store_is_postgres(tmp_path: Path, postgres: PostgresServer) -> None:
    database = postgres.database()
    config = tmp_path / "demo.yaml"
    demo = (ROOT / "configs" / "demo.yaml").read_text()
    config.write_text(
        demo.replace("../sample_videos/plaza.mp4", str(SAMPLE))
        .replace("data_dir: ../data", f"data_dir: {tmp_path / 'data'}\n  url: {postgres.url(database)}")
        .replace("detect_fps: 5", "detect_fps: 2")
    )
    run = cli("run", config)
    assert run.returncode == 0, run.stderr[-3000:]
    assert not (tmp_path / "data" / "street-vision.sqlite").exists()  # the rows are in PostgreSQL
    out = tmp_path / "mined"
    result = cli("dataset", "mine", config, "--out", out, "--every", "10", "--uncertain-band", "0.1")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    store = PostgresStore(SecretUrl(postgres.url(database)), run=False, migrate=False)
    try:
        transitions = store.sql.execute(
            "SELECT event_id, kind, pts, payload FROM transitions ORDER BY seq"
        ).fetchall()
        uncertain_rows = store.sql.execute(
            "SELECT pts, score FROM detections WHERE score >= 0.4 AND score < 0.5"
        ).fetchall()
    finally:
        store.close()
    events = [r for r in records if r["source"] == "event"]
    assert len(transitions) >= 2  # the crowd opened and closed
    assert [(e["event_id"], e["transition"], e["pts"]) for e in events] == [
        (t[0], t[1], round(t[2], 3)) for t in transitions
    ]
    for event, (*_, payload) in zip(events, transitions, strict=True):
        clean = (payload if isinstance(payload, dict) else json.loads(payload))["snapshots"]["clean"]
        snapshot = cv2.imread(str(tmp_path / "data" / clean)).astype(int)
        assert np.abs(cv2.imread(str(out / event["image"])).astype(int) - snapshot).mean() < 2
    uncertain = [r for r in records if r["source"] == "uncertain"]
    scores: dict[float, list[float]] = {}
    for pts, score in uncertain_rows:
        scores.setdefault(round(float(pts), 3), []).append(float(score))
    assert len(uncertain) >= 5
    for r in uncertain:  # the very frame the detector was unsure on, as PostgreSQL stored it
        assert r["pts"] in scores and r["uncertain"]["score"] == round(min(scores[r["pts"]]), 3)
