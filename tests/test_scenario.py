"""Scenario clips: passers-by in front of placed objects, and a generated clip with its ground truth."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import yaml

from vision.config import ConfigError
from vision.evaluate.annotations import load_coco
from vision.evaluate.scenario import (
    CutOut,
    Placement,
    Prepared,
    generate,
    load_spec,
    passers_by,
    place_object,
)
from vision.evaluate.truth import load_truth

from .conftest import IMAGES, ROOT, SAMPLE


def test_passers_by_nearer_the_camera_walk_in_front() -> None:
    background = np.full((100, 100, 3), 120, np.uint8)
    cut = CutOut(image=Path("x.jpg"), box=(0, 0, 1, 1))
    placement = Placement(name="o", object=cut, at=(0.5, 0.8), width=40, appear=0, behind_passers_by=True)
    # a 40x20 white object standing on row 80, columns 30-70
    obj = Prepared(
        placement,
        np.full((20, 40, 3), 250, np.uint8),
        np.ones((20, 40), np.float32),
        (0, 0, 40, 20),
        (100, 100),
    )
    near = background.copy()
    near[20:90, 40:50] = 20  # a person whose feet (row 90) are nearer the camera than the object's
    image = near.copy()
    place_object(image, obj, 1.0, passers_by(near, background))
    assert (image[60:80, 40:50] == 20).all()  # the person stays in front
    assert (image[60:80, 30:40] == 250).all() and (image[60:80, 50:70] == 250).all()
    far = background.copy()
    far[10:70, 40:50] = 20  # feet on row 70: behind the object
    image = far.copy()
    place_object(image, obj, 1.0, passers_by(far, background))
    assert (image[60:80, 30:70] == 250).all()  # the object hides the person's legs
    assert (image[10:60, 40:50] == 20).all()


SPEC = {
    "background": str(SAMPLE),
    "start": 10.0,
    "duration": 2.0,
    "fps": 5,
    "objects": [
        {
            "name": "bicycle",
            "object": {"image": str(IMAGES / "dog.jpg"), "box": [115, 132, 565, 429], "cut": "box"},
            "at": [0.5, 0.95],
            "width": 200,
            "appear": 0.4,
            "leave": 1.6,
            "behind_passers_by": True,
            "label": "bicycle",
            "incident": {"type": "bike_parking", "zone": "lawn"},
        },
        {
            "name": "walker",
            "object": {"image": str(IMAGES / "person.jpg"), "box": [182, 104, 268, 380], "cut": "box"},
            "at": [0.0, 1.0],
            "to": [1.0, 1.0],
            "width": 40,
            "appear": 0.0,
            "leave": 2.0,
        },
    ],
    "lighting": [{"at": 1.0, "gain": 0.5, "ramp": 0}],
    "truth": {
        "camera": {
            "detect_fps": 5,
            "zones": {
                "lawn": {
                    "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]],
                    "rules": {"bike_parking": {"min_duration": 1}},
                }
            },
        },
        "events": {"close_after": 2},
    },
}


def test_generate_writes_the_clip_its_truth_and_boxes(tmp_path: Path) -> None:
    spec = tmp_path / "bike.scenario.yaml"
    spec.write_text(yaml.safe_dump(SPEC, sort_keys=False))
    clip, truth_path = generate(spec)
    assert clip == tmp_path / "bike.mp4" and truth_path == tmp_path / "bike.truth.yaml"
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and float(stream.average_rate) == 5
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
    assert len(frames) == 10
    truth = load_truth(truth_path)
    assert truth.video == clip and truth.events.close_after == 2
    (incident,) = truth.incidents
    assert (incident.type, incident.zone, incident.start, incident.end) == ("bike_parking", "lawn", 0.4, 1.6)
    # 200 px wide, 297 * 200 / 450 = 132 px high, bottom-centre at (384, 547) of the 768x576 frame
    assert incident.box == (284.0, 415.0, 484.0, 547.0)
    boxes = load_coco(truth.boxes.file)
    assert boxes.frames.tolist() == list(range(10))
    assert boxes.frame.tolist() == [2, 3, 4, 5, 6, 7]  # 0.4 s to 1.4 s; the unlabelled walker has none
    assert (boxes.xyxy == np.array(incident.box, np.float32)).all()
    x1, y1, x2, y2 = map(int, incident.box)
    inside = frames[3][y1 + 10 : y2 - 10, x1 + 70 : x2 - 10].astype(float)  # away from the walker's path
    before = frames[0][y1 + 10 : y2 - 10, x1 + 70 : x2 - 10].astype(float)
    assert np.abs(inside - before).mean() > 20  # the bicycle is there
    assert frames[6].mean() < 0.7 * frames[3].mean()  # the light halved at 1 s


def test_spec_errors_name_the_spec_and_the_key(tmp_path: Path) -> None:
    bad = yaml.safe_load(yaml.safe_dump(SPEC))
    bad["objects"][0]["incident"]["zone"] = "road"
    bad["objects"][1].pop("leave")
    spec = tmp_path / "bad.scenario.yaml"
    spec.write_text(yaml.safe_dump(bad, sort_keys=False))
    with pytest.raises(ConfigError) as err:
        load_spec(spec)
    (problem,) = err.value.problems
    assert problem.startswith(f"{spec}: objects[1]: an object that moves ('to') needs 'leave'")
    bad["objects"][1]["leave"] = 2.0
    spec.write_text(yaml.safe_dump(bad, sort_keys=False))
    with pytest.raises(ConfigError, match=r"truth: incident \[0\]\.zone: the camera has no zone 'road'"):
        load_spec(spec)
    result = subprocess.run(
        [sys.executable, "-m", "vision.cli", "scenario", str(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "the camera has no zone 'road'" in result.stderr
    assert not (tmp_path / "bad.mp4").exists()
