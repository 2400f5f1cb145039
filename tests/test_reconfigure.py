"""Zones and rules swapped into a running camera (the API's zone editor), with arrays and timestamps
only: the new zone is watched from the next frame, and what the camera has learnt is kept."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vision.camera.analysis import CameraAnalysis
from vision.config import parse_config
from vision.types import Condition, Detections, Frame

from .conftest import ROOT

NAMES = {0: "person"}
TEXT = """
cameras:
  cam:
    url: clip.mp4
    zones:
      left:
        polygon: [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]
        rules: {crowd: {enter_count: 1, min_duration: 0}}
"""
RIGHT = {"polygon": [[0.5, 0], [1, 0], [1, 1], [0.5, 1]], "rules": {"crowd": {"enter_count": 1}}}


def camera(zones: dict[str, object] | None = None):
    config = parse_config(TEXT)
    if zones is None:
        return config, config.cameras["cam"]
    data = config.model_dump(mode="python")
    data["cameras"]["cam"]["url"] = "clip.mp4"
    data["cameras"]["cam"]["zones"] = zones
    return config, type(config).model_validate(data).cameras["cam"]


def person_at(x: float) -> Detections:
    return Detections.from_arrays(
        np.array([[x - 10, 50, x + 10, 90]], np.float32), np.array([0.9], np.float32), np.array([0], np.int32)
    )


def frame(pts: float) -> Frame:
    return Frame("cam", pts, np.zeros((100, 200, 3), np.uint8))


def crowded(observations, zone: str) -> bool:
    return any(o.zone == zone and o.condition is Condition.TRUE for o in observations)


def test_a_new_zone_is_watched_from_the_next_frame_and_the_camera_keeps_what_it_learnt() -> None:
    config, cam = camera()
    analysis = CameraAnalysis("cam", cam, NAMES, config.events)
    for i in range(5):
        _, observations = analysis.process(frame(i * 0.2), person_at(150))  # a person on the right
    assert not crowded(observations, "right")
    tracker, heatmap = analysis.tracker, analysis.scene.heatmap
    heat = heatmap.grid.sum()
    assert heat > 0

    _, new = camera({"left": cam.zones["left"].model_dump(), "right": RIGHT})
    analysis.reconfigure(new)
    assert set(analysis.scene.zones) == {"left", "right"}
    assert set(analysis.timers) == {("cam", "left", "crowd"), ("cam", "right", "crowd")}
    assert analysis.tracker is tracker and analysis.scene.heatmap is heatmap
    assert len(tracker.tracks()) == 1
    _, observations = analysis.process(frame(1.0), person_at(150))
    assert crowded(observations, "right")
    assert heatmap.grid.sum() > heat * 0.99

    _, only_right = camera({"right": RIGHT})
    analysis.reconfigure(only_right)
    _, observations = analysis.process(frame(1.2), person_at(50))
    assert {o.zone for o in observations} == {"right"}


def test_a_rule_the_model_cannot_serve_is_refused_before_the_swap(detector, tmp_path) -> None:
    from vision.pipeline import Pipeline
    from vision.store import Store

    config, _ = camera()
    unicorn = {"polygon": RIGHT["polygon"], "rules": {"crowd": {"classes": ["unicorn"]}}}
    _, bad = camera({"right": unicorn})
    config.storage.data_dir = tmp_path
    pipeline = Pipeline(config, detector, Store(tmp_path))
    with pytest.raises(ValueError, match="no class unicorn"):
        pipeline.update_camera("cam", bad)
    with pytest.raises(KeyError):
        pipeline.update_camera("elsewhere", config.cameras["cam"])
    assert set(pipeline.workers["cam"].unit.analysis.scene.zones) == {"left"}


def test_a_pipeline_loads_the_litter_kernels_as_it_is_set_up_not_in_an_edit_that_adds_litter(
    tmp_path: Path,
) -> None:
    """Numba's import and a machine's first compile of the litter look's kernels (seconds, the GIL held)
    happen as a pipeline is set up, with no litter rule yet: an edit that adds one later (the API's zone
    editor, a cluster shard's camera) would otherwise make every camera of the process wait on them (the
    likely cause of a fresh clone's cluster test timing out on its edit). The motion vectors' kernel is
    loaded then too, not by a reader's first frame. Reading a config does not import Numba. In a fresh
    interpreter: this one has the kernels already."""
    litter = {"polygon": RIGHT["polygon"], "rules": {"litter": {"min_duration": 5}}}
    script = f"""
import sys
from pathlib import Path
from vision.config import parse_config
from vision.detect.card import load_card
from vision.detect.detector import Detector
from vision.pipeline import Pipeline
from vision.store import Store

config = parse_config({TEXT!r})
config.storage.data_dir = Path({str(tmp_path)!r})
assert "numba" not in sys.modules, "reading a config imported Numba"
detector = Detector(load_card("default"), threads=1, parallel=1)
pipeline = Pipeline(config, detector, Store(config.storage.data_dir))
assert "vision.scene.static_kernels" in sys.modules, "set up without the litter look's kernels"
assert "vision.ingest.motion_kernel" in sys.modules, "set up without the motion vectors' kernel"
before = set(sys.modules)
data = config.model_dump(mode="python")
data["cameras"]["cam"]["url"] = "clip.mp4"
data["cameras"]["cam"]["zones"]["verge"] = {litter!r}
pipeline.update_camera("cam", type(config).model_validate(data).cameras["cam"])
assert "verge" in pipeline.workers["cam"].unit.analysis.scene.zones
late = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in ("numba", "llvmlite"))
assert not late, f"the edit imported {{late[:5]}}"
print("ok")
"""
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
