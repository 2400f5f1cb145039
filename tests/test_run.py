"""`street-vision run` end to end on the bundled sample clip, and cameras that fail."""

from __future__ import annotations

import itertools
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np

from vision.pipeline import detections_due

from .conftest import ROOT, SAMPLE


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vision.cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def test_run_demo_prints_events_and_fills_the_store(tmp_path: Path) -> None:
    config = tmp_path / "demo.yaml"
    demo = (ROOT / "configs" / "demo.yaml").read_text()
    config.write_text(demo.replace("../sample_videos/plaza.mp4", str(SAMPLE)).replace("../data", "data"))
    result = run("run", str(config), "--jsonl")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    events = [line for line in lines if line["kind"] == "event"]
    summary = lines[-1]
    assert summary["kind"] == "summary"
    assert summary["cameras"]["plaza"]["frames_detected"] == 200  # 40 s at detect_fps 5
    assert summary["cameras"]["plaza"]["error"] is None
    kinds = [e["transition"] for e in events]
    assert kinds[0] == "open" and kinds[-1] == "close" and set(kinds) <= {"open", "update", "close"}
    assert len({e["event"]["event_id"] for e in events}) == 1
    opened = events[0]
    assert opened["event"]["type"] == "crowd" and opened["event"]["zone"] == "crossing"
    assert opened["event"]["count"] >= 7
    assert all(b["label"] == "person" for b in opened["boxes"]) and len(opened["boxes"]) >= 6
    assert events[-1]["event"]["resolved_at"] > opened["event"]["opened_at"]
    # README's quick start: the crowd (11.4-36.7 s by the truth) opens its ticket at about 16 s, which is
    # updated at most every 10 s (events.update_interval) and closes itself at about 39 s, before the end
    assert abs(opened["pts"] - 16) <= 1.5 and abs(events[-1]["pts"] - 39) <= 1.5, [e["pts"] for e in events]
    updates = [e["pts"] for e in events if e["transition"] == "update"]
    assert updates and all(b - a >= 10 - 1e-6 for a, b in itertools.pairwise([opened["pts"], *updates]))

    db = sqlite3.connect(tmp_path / "data" / "street-vision.sqlite")
    # boxes stored once a second of stream time (storage.detection_interval) and on each transition's frame
    stored = [
        pts for (pts,) in db.execute("SELECT DISTINCT pts FROM detections WHERE label='person' ORDER BY pts")
    ]
    moments = {pts for (pts,) in db.execute("SELECT pts FROM transitions")}
    assert moments <= set(stored) and 40 <= len(stored) <= 40 + len(moments)
    assert all(b - a >= 1 - 1e-6 for a, b in itertools.pairwise(stored) if b not in moments)
    assert db.execute("SELECT COUNT(*) FROM detections WHERE label='person'").fetchone()[0] > 5 * len(
        stored
    )  # people in every picture
    assert db.execute("SELECT state FROM events").fetchall() == [("resolved",)]
    stored = [r[0] for r in db.execute("SELECT kind FROM transitions ORDER BY seq")]
    assert stored == kinds


def test_a_reader_that_quits_ends_the_run_as_sigterm_does(tmp_path: Path) -> None:
    """`run --jsonl | head -1`: the first line read and the pipe closed, the next line printed (the crowd's
    open, from the store writer's thread) stops the run as SIGTERM would: exit 141 (a closed pipe's, as
    cat's), no traceback, no camera failed or restarted, the open committed. It was a BrokenPipeError in
    that thread: the camera unit failed and restarted, and an analysis lane died."""
    config = tmp_path / "demo.yaml"
    demo = (ROOT / "configs" / "demo.yaml").read_text()
    config.write_text(demo.replace("../sample_videos/plaza.mp4", str(SAMPLE)).replace("../data", "data"))
    with (tmp_path / "stderr").open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vision.cli", "run", str(config), "--jsonl", "--stats-every", "0"],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        first = json.loads(proc.stdout.readline())
        proc.stdout.close()
        code = proc.wait(timeout=300)
    stderr = (tmp_path / "stderr").read_text()
    assert first["kind"] == "health" and code == 141, stderr
    assert "standard output was closed (its reader quit): stopping the run" in stderr
    assert "Traceback" not in stderr and "failed at" not in stderr and "restart" not in stderr, stderr
    db = sqlite3.connect(tmp_path / "data" / "street-vision.sqlite")
    kinds = [k for (k,) in db.execute("SELECT kind FROM transitions ORDER BY seq")]
    assert kinds[0] == "open" and "close" not in kinds, kinds


def test_which_frames_keep_their_boxes() -> None:
    """storage.detection_interval: 0 keeps every frame, None none; a clock that went back starts over."""
    assert [detections_due(10.0, pts, 1.0, False) for pts in (10.4, 10.99, 11.0, 9.0)] == [0, 0, 1, 1]
    assert detections_due(10.0, 10.2, 1.0, True) and detections_due(None, 3.0, 1.0, False)
    assert detections_due(10.0, 10.0, 0.0, False) and not detections_due(None, 3.0, None, True)


def test_replay_gives_the_same_events(tmp_path: Path) -> None:
    """Two replays on fresh stores are identical (on one store, the second would carry on the first)."""
    demo = (ROOT / "configs" / "demo.yaml").read_text()
    outputs = []
    for i in range(2):
        config = tmp_path / f"demo{i}.yaml"
        text = demo.replace("../sample_videos/plaza.mp4", str(SAMPLE)).replace("../data", f"data{i}")
        config.write_text(text)
        result = run("run", str(config), "--jsonl")
        events = [json.loads(line) for line in result.stdout.splitlines() if '"kind": "event"' in line]
        outputs.append([(e["transition"], e["pts"], e["event"]["count"]) for e in events])
    assert outputs[0] == outputs[1] and outputs[0]


def test_bad_camera_does_not_stop_the_good_one(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.mp4"
    data = bytearray(SAMPLE.read_bytes())
    data[600_000:900_000] = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    corrupt.write_bytes(bytes(data))
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 500)
    cameras = "".join(
        f"  {name}:\n    url: {url}\n    detect_fps: 2\n"
        for name, url in [
            ("good", SAMPLE),
            ("damaged", corrupt),
            ("garbage", garbage),
            ("missing", tmp_path / "nope.mp4"),
            ("locked", "rtsp://admin:topsecret99@127.0.0.1:9/cam"),
        ]
    )
    config = tmp_path / "multi.yaml"
    config.write_text(f"cameras:\n{cameras}storage:\n  data_dir: data\n")
    result = run("run", str(config), "--jsonl", "--max-seconds", "3")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])["cameras"]
    assert summary["good"]["frames_detected"] == 80 and summary["good"]["error"] is None
    assert 60 <= summary["damaged"]["frames_detected"] < 80 and summary["damaged"]["error"] is None
    assert "corrupt packets, skipped" in result.stderr
    assert "cannot open" in summary["garbage"]["error"] and "garbage" in summary["garbage"]["error"]
    assert "No such file" in summary["missing"]["error"]
    assert "rtsp://admin:***@127.0.0.1:9/cam" in summary["locked"]["error"]
    assert "topsecret99" not in result.stdout + result.stderr


def test_run_with_broken_config_fails_cleanly(tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text("cameras:\n  a:\n    url: x.mp4\n    zones:\n      z:\n        polygon: [[0, 0]]\n")
    result = run("run", str(config))
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"error: {config}: cameras.a.zones.z.polygon: needs at least 3 points (line 6)"
    )


def test_rule_class_the_model_lacks_fails_cleanly(tmp_path: Path) -> None:
    config = tmp_path / "unicorn.yaml"
    config.write_text(
        f"cameras:\n  a:\n    url: {SAMPLE}\n    zones:\n      z:\n"
        "        polygon: [[0, 0], [1, 0], [1, 1]]\n        rules:\n          crowd: {classes: [unicorn]}\n"
    )
    result = run("run", str(config))
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        "error: cameras.a.zones.z.rules.crowd: the model has no class unicorn "
        "(set this rule's classes to labels it has)"
    ), result.stderr
