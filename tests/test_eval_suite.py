"""The sample suite through `street-vision eval`: its scores must stay within its thresholds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import yaml

from .conftest import ROOT, SAMPLE

SUITE = ROOT / "sample_videos" / "suite.yaml"


def eval_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vision.cli", "eval", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_sample_suite_meets_its_thresholds(tmp_path: Path) -> None:
    result = eval_cli(str(SUITE), "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["thresholds"] == {"passed": True, "failures": []}
    assert [v["name"] for v in record["videos"]] == ["plaza", "bike_parking", "litter"]
    assert all(v["error"] is None and v["frames"] == 200 for v in record["videos"])
    assert set(record["events"]) == {"crowd", "fishing", "bike_parking", "litter"}
    detection = record["detection"]
    assert (
        detection["videos"]["bike_parking"]["gt_boxes"] == 130
        and detection["videos"]["plaza"]["gt_boxes"] == 65
    )
    # all videos together: people are scored on plaza only, the one video that annotates them
    assert detection["ap50"]["person"] == detection["videos"]["plaza"]["ap50"]["person"]
    # the report and every figure it shows
    report = (tmp_path / "report.md").read_text()
    for figure in ["metrics.png", "plaza.timeline.png", "bike_parking.timeline.png", "litter.timeline.png"]:
        assert f"({figure})" in report
        assert cv2.imread(str(tmp_path / figure)) is not None
    assert "All scores meet their thresholds." in report
    assert "plaza " in result.stderr and "200/200 frames" in result.stderr  # the progress lines


def test_a_score_below_its_threshold_fails_the_command(tmp_path: Path) -> None:
    truth = {
        "video": str(SAMPLE),
        "camera": {
            "detect_fps": 1,
            "zones": {
                "crossing": {
                    "polygon": [[0.0, 0.33], [1.0, 0.25], [1.0, 0.85], [0.0, 0.5]],
                    "rules": {"crowd": {"enter_count": 30, "min_duration": 2}},
                }
            },
        },
        "incidents": [{"type": "crowd", "zone": "crossing", "start": 10, "end": 30}],
    }
    (tmp_path / "plaza.truth.yaml").write_text(yaml.safe_dump(truth))
    (tmp_path / "limits.yaml").write_text("events: {crowd: {min_recall: 1.0, max_false_tickets: 0}}\n")
    result = eval_cli(
        str(tmp_path), "--out", str(tmp_path / "out"), "--thresholds", str(tmp_path / "limits.yaml")
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "below threshold: events.crowd.recall: 0.000, needs >= 1.0" in result.stdout
    record = json.loads((tmp_path / "out" / "results.json").read_text())
    assert record["thresholds"]["passed"] is False and record["events"]["crowd"]["detected"] == 0


def test_bad_input_is_named_before_any_replay(tmp_path: Path) -> None:
    (tmp_path / "a.truth.yaml").write_text("video: gone.mp4\ncamera: {zones: {}}\nincidents: []\n")
    result = eval_cli(str(tmp_path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert (
        f"error: {tmp_path / 'a.truth.yaml'}: video: no such file: {tmp_path / 'gone.mp4'}" in result.stderr
    )
    assert not (tmp_path / "out").exists()
