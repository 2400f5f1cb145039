"""A camera killed in the middle of a survey round goes on with that round after the restart.

`street-vision run` on an empty 720p scene played in real time: the planner surveys it at the model's
scale a few tiles at a time, finds nobody, doubles its gap. SIGKILLed once the store holds a snapshot
of a round under way after a doubled gap, the restarted run must go on from there: the same gap (not
back to one survey in ``survey_every`` frames) and the round's tiles from where they were (not its
first tiles again), as 100 empty cameras restarted together would otherwise all survey at full rate.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

from .conftest import need, start_run
from .dispatch_support import wait_for

EVERY = 2  # survey_every: a round of the 15 tiles (2 per surveyed frame) takes 8 surveys, 16 frames


def empty_scene(path: Path) -> Path:
    """4 s of a grey 1280x720 scene with sensor noise, played in a loop: no one in it, so every survey
    finds nobody. (The camera's motion gate is off so that the rounds go by at the detection rate, not
    at the gate's one look a second on a scene this still.)"""
    need(None if shutil.which("ffmpeg") else "ffmpeg is missing: apt-get install ffmpeg")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=0x707478:s=1280x720:r=25:d=4",
         "-vf", "noise=alls=12:allf=t", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50",
         "-pix_fmt", "yuv420p", "-y", str(path)],
        check=True,
    )  # fmt: skip
    return path


def config(tmp_path: Path, clip: Path) -> Path:
    text = f"""
cameras:
  yard:
    url: {clip}
    realtime: true
    loop: true
    detect_fps: 5
    motion_gate: {{enabled: false}}
    detect_regions: {{survey_every: {EVERY}, survey_tiles: 2}}
    zones:
      yard:
        polygon: [[0, 0], [1, 0], [1, 1], [0, 1]]
        rules:
          crowd: {{enter_count: 7, exit_count: 5}}
storage:
  data_dir: {tmp_path / "data"}
  checkpoint_interval: 0.5
"""
    path = tmp_path / "yard.yaml"
    path.write_text(text)
    return path


def stored(tmp_path: Path) -> tuple[dict, float] | None:
    """The survey state of the camera's last stored snapshot and when it was saved."""
    database = tmp_path / "data" / "street-vision.sqlite"
    if not database.exists():
        return None
    try:
        with sqlite3.connect(database, timeout=1) as db:
            row = db.execute("SELECT state, saved_at FROM camera_state WHERE camera = 'yard'").fetchone()
    except sqlite3.OperationalError:  # the table is not there yet
        return None
    return None if row is None else (json.loads(row[0])["planner"]["survey"], row[1])


def test_a_run_killed_mid_survey_round_goes_on_with_that_round(tmp_path: Path) -> None:
    path, log = config(tmp_path, empty_scene(tmp_path / "yard.mp4")), tmp_path / "run.log"
    process = start_run(path, log, {})
    try:

        def mid_round() -> bool:  # a fruitless round done (gap doubled) and the next one under way
            state = stored(tmp_path)
            return state is not None and state[0]["gap"] == 2 * EVERY and state[0]["next"] >= 4

        wait_for(mid_round, "a snapshot in the middle of the second survey round", 90.0)
        assert process.poll() is None, log.read_text()[-3000:]
    finally:
        process.kill()
        process.wait(10)
    killed, killed_at = stored(tmp_path)  # what the store held when the process died
    restarted = start_run(path, log, {})
    try:
        wait_for(lambda: stored(tmp_path)[1] > killed_at, "the restarted run's first checkpoint", 60.0)
        first = stored(tmp_path)[0]
        wait_for(lambda: stored(tmp_path)[0] != first, "the restarted run's survey to move on", 60.0)
        after = stored(tmp_path)[0]
        assert restarted.poll() is None, log.read_text()[-3000:]
    finally:
        restarted.kill()
        restarted.wait(10)
    assert first["gap"] >= killed["gap"], (killed, first)  # not back to one survey in EVERY frames
    # the round goes on from its tiles not yet looked at (or is done and the gap doubled again)
    assert first["next"] >= killed["next"] or first["gap"] > killed["gap"], (killed, first)
    assert after["gap"] >= killed["gap"] and (after["next"] > killed["next"] or after["gap"] > killed["gap"])
