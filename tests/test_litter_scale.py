"""Litter on time at any resolution and distance, and one ticket per place, through `street-vision eval`
and `run`.

The litter scenario clip (a bundle dropped on the plaza's walkway at 5 s, min_duration 10 s)
at its own 768x576, upscaled by ffmpeg to 1280x720 and 1920x1080, and made distant: scaled
to a third inside a 1920x1080 frame (the bundle 12x20 pixels of it), its zone and box scaled
alike; a scenario made here where a second bag is dropped beside the first after its ticket
opened, and a third bag across the walkway.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT, cli

SAMPLES = ROOT / "sample_videos"
THIRD = (256, 192, 832, 444)  # the clip's 768x576 scaled to a third, at (x, y) in a 1920x1080 frame
ON_TIME = {"min_precision": 1.0, "min_recall": 1.0, "max_false_closes": 0, "max_unclosed": 0}


def scaled_truth(folder: Path, width: int, height: int) -> str:
    """The litter clip at ``width`` x ``height`` beside a copy of its truth, the box scaled alike."""
    clip = folder / f"litter_{width}x{height}.mp4"
    if (width, height) == (768, 576):
        shutil.copy(SAMPLES / "litter.mp4", clip)
    else:
        if shutil.which("ffmpeg") is None:
            pytest.fail("ffmpeg is needed to upscale the litter clip")
        command = ["ffmpeg", "-v", "error", "-y", "-i", str(SAMPLES / "litter.mp4")]
        subprocess.run([*command, "-vf", f"scale={width}:{height}", "-crf", "18", str(clip)], check=True)
    truth = yaml.safe_load((SAMPLES / "litter.truth.yaml").read_text())
    fx, fy = width / 768, height / 576
    for incident in truth["incidents"]:
        x1, y1, x2, y2 = incident["box"]
        incident["box"] = [x1 * fx, y1 * fy, x2 * fx, y2 * fy]
    name = f"{clip.stem}.truth.yaml"
    (folder / name).write_text(yaml.safe_dump({**truth, "video": clip.name}))
    return name


def distant_truth(folder: Path) -> str:
    """The litter clip at a third inside 1920x1080 beside its truth, zone and box scaled alike. Only the
    frames its camera analyses are kept (every second one: detect_fps 5 of 10), at their own times, so
    no 1080p frame is decoded for nothing."""
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is needed to make the distant litter clip")
    w, h, x, y = THIRD
    keep = rf"select=not(mod(n\,2)),scale={w}:{h}:flags=area,pad=1920:1080:{x}:{y}:color=0x646464"
    command = ["ffmpeg", "-v", "error", "-y", "-i", str(SAMPLES / "litter.mp4"), "-vf", keep]
    subprocess.run(
        [*command, "-fps_mode", "passthrough", "-crf", "18", str(folder / "distant.mp4")], check=True
    )
    truth = yaml.safe_load((SAMPLES / "litter.truth.yaml").read_text())
    for zone in truth["camera"]["zones"].values():
        zone["polygon"] = [[(x + px * w) / 1920, (y + py * h) / 1080] for px, py in zone["polygon"]]
    f = w / 768
    for incident in truth["incidents"]:
        x1, y1, x2, y2 = incident["box"]
        incident["box"] = [x + x1 * f, y + y1 * f, x + x2 * f, y + y2 * f]
    (folder / "distant.truth.yaml").write_text(yaml.safe_dump({**truth, "video": "distant.mp4"}))
    return "distant.truth.yaml"


def test_a_dropped_object_is_ticketed_min_duration_after_it_lands_at_any_size_and_distance(
    tmp_path: Path,
) -> None:
    videos = [scaled_truth(tmp_path, w, h) for w, h in ((768, 576), (1280, 720), (1920, 1080))]
    videos.append(distant_truth(tmp_path))
    min_duration = yaml.safe_load((SAMPLES / "litter.truth.yaml").read_text())["camera"]["zones"]["walkway"]
    min_duration = min_duration["rules"]["litter"]["min_duration"]
    thresholds = {"events": {"litter": {**ON_TIME, "max_time_to_detect_max": min_duration + 2}}}
    (tmp_path / "thresholds.yaml").write_text(yaml.safe_dump(thresholds))
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump({"videos": videos, "thresholds": "thresholds.yaml"}))
    result = cli("eval", tmp_path / "suite.yaml", "--out", tmp_path / "out", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    runs = json.loads((tmp_path / "out" / "results.json").read_text())["videos"]
    delays = [run["incidents"][0]["time_to_detect"] for run in runs]
    assert all(min_duration <= d <= min_duration + 2 for d in delays), delays
    sizes = delays[:3]
    assert max(sizes) - min(sizes) <= 0.4, delays  # the same at every size, to two frames at 5 fps


SCENARIO = """
background: {background}
duration: 30
objects:
  - name: first bag
    object: {{image: {dog}, box: [128, 226, 320, 546]}}
    at: [0.72, 0.62]
    width: 36
    appear: 4
    leave: 24
    behind_passers_by: true
    incident: {{type: litter, zone: walkway, note: two bags left one after another by the same spot}}
  - name: second bag, dropped beside the first after its ticket opened
    object: {{image: {dog}, box: [128, 226, 320, 546]}}
    at: [0.8, 0.625]
    width: 32
    appear: 16
    leave: 24
    behind_passers_by: true
  - name: a bag across the walkway
    object: {{image: {dog}, box: [128, 226, 320, 546]}}
    at: [0.3, 0.45]
    width: 34
    appear: 6
    leave: 24
    behind_passers_by: true
    incident: {{type: litter, zone: walkway, note: a bag across the walkway}}
truth:
  camera:
    detect_fps: 5
    zones:
      walkway:
        polygon: [[0.0, 0.30], [0.55, 0.30], [0.95, 0.22], [1.0, 0.22], [1.0, 0.86], [0.0, 0.51]]
        rules:
          litter: {{min_duration: 10, close_after: 5}}
  detector: {{min_score: 0.4, classes: [person, bicycle, motorcycle, bottle, cup]}}
  events: {{update_interval: 1}}
"""


def test_bags_dropped_in_one_place_are_one_ticket_updated_and_elsewhere_another(tmp_path: Path) -> None:
    spec = tmp_path / "heaps.scenario.yaml"
    spec.write_text(SCENARIO.format(background=SAMPLES / "plaza.mp4", dog=SAMPLES / "dog.jpg"))
    made = cli("scenario", spec, "--out", tmp_path / "heaps.mp4")
    assert made.returncode == 0, made.stderr
    thresholds = {
        "events": {"litter": {**ON_TIME, "max_duplicates_per_incident": 0, "max_time_to_detect_max": 12}}
    }
    (tmp_path / "thresholds.yaml").write_text(yaml.safe_dump(thresholds))
    suite = {"videos": ["heaps.truth.yaml"], "thresholds": "thresholds.yaml"}
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite))
    result = cli("eval", tmp_path / "suite.yaml", "--out", tmp_path / "out", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    # the same clip run as a camera: what the ticketing system receives
    truth = yaml.safe_load((tmp_path / "heaps.truth.yaml").read_text())
    camera = {**truth["camera"], "url": "heaps.mp4"}
    config = {"cameras": {"cam": camera}, "detector": truth["detector"], "events": truth["events"]}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({**config, "storage": {"data_dir": "data"}}))
    ran = cli("run", tmp_path / "run.yaml", "--jsonl", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    events = [r for r in map(json.loads, ran.stdout.splitlines()) if r["kind"] == "event"]
    by_ticket: dict[str, list[dict]] = {}
    for record in events:
        by_ticket.setdefault(record["event"]["event_id"], []).append(record)
    assert len(by_ticket) == 2  # one per place
    heap = next(t for t in by_ticket.values() if t[0]["boxes"][0]["box"][0] > 500)
    kinds = [(r["transition"], r["event"]["count"]) for r in heap]
    assert kinds[0] == ("open", 1) and ("update", 2) in kinds and kinds[-1][0] == "close"
    assert [k for k, _ in kinds].count("open") == 1 and heap[0]["event"]["first_seen"] == pytest.approx(
        4.0, abs=0.2
    )
