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
    # every frame of 40 s at 5 fps: detected, or held by the motion gate (nothing moved in the zones)
    assert all(v["error"] is None and v["frames"] + v["frames_held"] == 200 for v in record["videos"])
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


def plaza_crowd_suite(tmp_path: Path) -> Path:
    """The plaza clip at 1 frame/s with a crowd zone nobody crowds (30 people): seconds to replay. Its
    incident ends at 30 s (the real crowd of 7 goes on to 36.7 s: a ticket for it stays open)."""
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
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "plaza.truth.yaml").write_text(yaml.safe_dump(truth))
    return suite


def test_a_score_below_its_threshold_fails_the_command(tmp_path: Path) -> None:
    suite = plaza_crowd_suite(tmp_path)
    (tmp_path / "limits.yaml").write_text("events: {crowd: {min_recall: 1.0, max_false_tickets: 0}}\n")
    result = eval_cli(
        str(suite), "--out", str(tmp_path / "out"), "--thresholds", str(tmp_path / "limits.yaml")
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


def test_an_open_ticket_fails_only_if_its_rule_had_the_time_to_close_it_and_compare(tmp_path: Path) -> None:
    suite = plaza_crowd_suite(tmp_path)
    limits = tmp_path / "limits.yaml"
    limits.write_text("events: {crowd: {min_recall: 1.0, max_unclosed: 0, max_time_to_close_max: 10}}\n")
    a = eval_cli(str(suite), "--out", str(tmp_path / "a"), "--thresholds", str(limits))
    assert a.returncode == 1  # nobody crowds 30 people: no ticket
    assert "below threshold: events.crowd.recall: 0.000, needs >= 1.0" in a.stdout
    assert "events.crowd.time_to_close_max: no value" in a.stdout
    # the same suite, another model card (the default's, named) and settings: a crowd of 7 opens a
    # ticket, which stays open to the end of this 40 s clip (the crowd goes on past the incident's end).
    # The rule needs 5.5 s to close it (1 s to the next frame at 1 frame/s, the 3 s window's half,
    # close_after 3 s; and the tolerance, 1 s): the video went on 9 s, so the ticket is unclosed
    card = ROOT / "models" / "ssd_mobilenet_v2_coco.yaml"
    crowd = (
        "camera.zones.crossing.rules.crowd={enter_count: 7, min_duration: 2, coast: 0, untracked_score: 0}"
    )
    sets = ["--set", crowd, "--set", "events.close_after=3"]
    b = eval_cli(
        str(suite), "--out", str(tmp_path / "b"), "--thresholds", str(limits), "--model", str(card), *sets
    )
    assert b.returncode == 1, b.stdout + b.stderr
    assert "below threshold: events.crowd.unclosed: 1.000, needs <= 0.0" in b.stdout
    assert (
        "below threshold: events.crowd.time_to_close_max: no value (no incident that ended in the video "
        "had all its tickets closed), needs <= 10.0" in b.stdout
    )
    record = json.loads((tmp_path / "b" / "results.json").read_text())
    assert record["overrides"] == [
        f"--set {crowd}",
        "--set events.close_after=3",
        f"--model {card}",
    ]
    assert (
        record["events"]["crowd"]["recall"] == 1.0
        and record["videos"][0]["tickets"][0]["resolved_at"] is None
    )
    assert record["videos"][0]["incidents"][0]["close_due"] == 36.5
    # with 60 s of absence to close, the clip ends too soon after the incident (93.5 s) for any ticket
    # to close: the ticket still open is not unclosed, and the suite does not fail for it
    limits.write_text("events: {crowd: {min_recall: 1.0, max_unclosed: 0}}\n")
    sets[-1] = "events.close_after=60"
    c = eval_cli(str(suite), "--out", str(tmp_path / "c"), "--thresholds", str(limits), *sets)
    assert c.returncode == 0, c.stdout + c.stderr
    incident = json.loads((tmp_path / "c" / "results.json").read_text())["videos"][0]["incidents"][0]
    assert (incident["close_due"], incident["unclosed"], incident["time_to_close"]) == (93.5, False, None)

    out = tmp_path / "cmp"
    result = eval_cli(
        "compare",
        str(tmp_path / "a" / "results.json"),
        str(tmp_path / "b" / "results.json"),
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    side = json.loads((out / "compare.json").read_text())
    rows = {r["score"]: r for r in side["events"]["crowd"]}
    assert rows["recall"] == {"score": "recall", "a": 0.0, "b": 1.0, "delta": 1.0}
    assert rows["unclosed"] == {"score": "unclosed", "a": 0, "b": 1, "delta": 1}
    assert {r["score"]: r["b"] for r in side["run"]}["thresholds passed"] is False
    markdown = (out / "compare.md").read_text()
    assert "| recall | 0.000 | 1.000 | +1 |" in markdown and "`--set events.close_after=3`" in markdown


def test_a_wildcard_set_reaches_a_default_key_in_every_file_with_the_rule(tmp_path: Path) -> None:
    """docs/evaluation.md's ``--set 'camera.zones.*.rules.crowd.coast=...'`` on a suite whose files do
    not all have a crowd rule (it was refused for the one without): coast, left at its default in the
    plaza's file, is set there (with the crowd rule's other keys, as a user compares settings); the
    file without a crowd rule gets none and is replayed as it is."""
    suite = plaza_crowd_suite(tmp_path)
    clip = tmp_path / "short.mp4"  # the first 3 s: a second file costs a few frames at 1 frame/s
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(SAMPLE), "-t", "3", "-c", "copy", "-y", str(clip)],
        check=True,
        timeout=60,
    )
    lawn = {
        "polygon": [[0.0, 0.55], [1.0, 0.9], [1.0, 1.0], [0.0, 1.0]],
        "rules": {"litter": {"min_duration": 10}},
    }
    no_crowd = {"video": str(clip), "camera": {"detect_fps": 1, "zones": {"lawn": lawn}}}
    (suite / "lawn.truth.yaml").write_text(yaml.safe_dump(no_crowd))
    coast = "camera.zones.*.rules.crowd.coast=0.5"
    crowd = ["enter_count=7", "exit_count=5", "untracked_score=0"]  # a crowd of 7, the frame's boxes at 1/s
    sets = [coast, *(f"camera.zones.*.rules.crowd.{c}" for c in crowd), "events.close_after=3"]
    args = [a for s in sets for a in ("--set", s)]
    result = eval_cli(str(suite), "--out", str(tmp_path / "out"), *args)
    assert result.returncode == 0, result.stdout + result.stderr
    record = json.loads((tmp_path / "out" / "results.json").read_text())
    assert record["overrides"] == [f"--set {s}" for s in sets]
    videos = {v["name"]: v for v in record["videos"]}
    assert videos["lawn"]["error"] is None and videos["lawn"]["tickets"] == []
    # the rule's close time, as the run judged it: the incident's end (30 s), the next frame (1 s at
    # 1 frame/s), the window's half (1.5 s), coast 0.5 s (its default is 1 s), close_after 3 s, and
    # the tolerance (1 s)
    assert videos["plaza"]["incidents"][0]["close_due"] == 37.0


def test_a_bad_override_is_named_before_any_replay(tmp_path: Path) -> None:
    suite = plaza_crowd_suite(tmp_path)
    result = eval_cli(
        str(suite), "--out", str(tmp_path / "out"), "--set", "camera.zones.crossing.rules.crowd.entr=7"
    )
    assert result.returncode == 2 and not (tmp_path / "out").exists()
    assert (
        "--set camera.zones.crossing.rules.crowd.entr=7: camera.zones.crossing.rules.crowd has no key 'entr'"
        in result.stderr
    )
    result = eval_cli(str(suite), "--model", str(tmp_path / "none.yaml"))
    assert (
        result.returncode == 2 and f"--model: no such model card: {tmp_path / 'none.yaml'}" in result.stderr
    )
    result = eval_cli("compare", str(tmp_path / "a.json"))
    assert result.returncode == 2 and "give exactly two results.json files" in result.stderr
    (tmp_path / "x.json").write_text("{}")
    result = eval_cli("compare", str(tmp_path / "x.json"), str(tmp_path / "x.json"))
    assert result.returncode == 2 and "not a results.json of street-vision eval" in result.stderr


def test_the_plaza_crowd_is_ticketed_at_half_a_detection_per_second(tmp_path: Path) -> None:
    """A camera at 0.5 detections/s (static cameras, the capacity benchmarks): frames 2 s apart, people
    walk past their own boxes, the tracker confirms few of them, and counting tracks (coast 1 s,
    untracked_score 0.6) saw 4-6 of the 7 on the crossing: no ticket. After a gap over
    tracked_interval the rule counts the frame's boxes, and the crowd is ticketed (20 frames)."""
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"videos": [str(ROOT / "sample_videos" / "plaza.truth.yaml")]}))
    result = eval_cli(str(suite), "--out", str(tmp_path / "out"), "--set", "camera.detect_fps=0.5")
    assert result.returncode == 0, result.stdout + result.stderr
    (plaza,) = json.loads((tmp_path / "out" / "results.json").read_text())["videos"]
    assert plaza["error"] is None and plaza["frames"] + plaza["frames_held"] == 20
    crowd = [t for t in plaza["tickets"] if t["type"] == "crowd"]
    assert len(crowd) == 1 and crowd[0]["incident"] == 0 and 11.4 < crowd[0]["opened_at"] < 36.7


def test_a_parked_bicycle_half_hidden_for_a_frame_keeps_its_episode(tmp_path: Path) -> None:
    """The bicycle sample with every frame detected (motion gate off): at 20.4 s someone in front of the
    parked bicycle cuts its box to a third for one frame. Its track goes on (the tracker's word), so its
    subject does too: before subjects kept their track, that box matched no place and the bicycle's
    episode was seen gone and started again (its ticket opened at 28.6 s); with the episode dated from
    the track's rest, such a new place would open a second ticket at once (20.4 s). The one ticket
    opens as the tracker's stationary flag turns on (14.0 s, 10 s after the bicycle came to rest at
    4 s: more than its 8 s min_duration, all of it credited), as the gated run's does."""
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"videos": [str(ROOT / "sample_videos" / "bike_parking.truth.yaml")]}))
    args = ("--out", str(tmp_path / "out"), "--set", "camera.motion_gate.enabled=false")
    result = eval_cli(str(suite), *args)
    assert result.returncode == 0, result.stdout + result.stderr
    (bike,) = json.loads((tmp_path / "out" / "results.json").read_text())["videos"]
    assert bike["error"] is None and bike["frames"] == 200 and bike["frames_held"] == 0
    (ticket,) = bike["tickets"]
    assert ticket["role"] == "primary" and 14.0 <= ticket["opened_at"] <= 14.4, ticket
