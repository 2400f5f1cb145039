"""`models gate --suite`: the evaluation suites' event F1 and time to detect, beside the val split's AP.

One short clip (the shortest of the sample suite, at one frame a second) keeps it to seconds;
a model against itself must pass, a copy of it that sees nothing must be kept out.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
import yaml

from vision.detect.card import DEFAULT_CARD, load_card
from vision.evaluate.replay import video_rate

from .conftest import ROOT, cli

SAMPLES = ROOT / "sample_videos"


def shortest_truth() -> Path:
    """The sample suite's ground-truth file whose video is the shortest (by name among equals)."""
    files = sorted(SAMPLES.glob("*.truth.yaml"))

    def seconds(file: Path) -> float:
        return video_rate(SAMPLES / yaml.safe_load(file.read_text())["video"])[1]

    return min(files, key=lambda f: (seconds(f), f.name))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gate")
    truth = yaml.safe_load(shortest_truth().read_text())
    truth["video"] = str(SAMPLES / truth["video"])
    truth.pop("boxes", None)  # the event scores are what this gate adds
    truth["camera"]["detect_fps"] = 1.0  # 40 frames a replay: enough for a bicycle that stays 26 s
    (root / "clip.truth.yaml").write_text(yaml.safe_dump(truth))
    (root / "suite.yaml").write_text(yaml.safe_dump({"videos": ["clip.truth.yaml"]}))
    data = root / "data"
    mined = cli("dataset", "mine", truth["video"], "--out", data, "--every", "4")
    assert mined.returncode == 0, mined.stderr
    labelled = cli("dataset", "label", data, "--classes", "person,bicycle", "--val-fraction", "0.5")
    assert labelled.returncode == 0, labelled.stderr
    return {"root": root, "suite": root / "suite.yaml", "data": data}


def test_gate_on_a_suite_promotes_a_model_against_itself(setup: dict[str, Path]) -> None:
    out = setup["root"] / "same"
    result = cli(
        "models", "gate", "default", "--against", "default", "--data", setup["data"],
        "--suite", setup["suite"], "--out", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "gate.json").read_text())
    assert report["decision"] == "promote"
    rows = report["events"]["rows"]
    assert rows and not report["events"]["regressed"]
    for row in rows:
        assert row["f1"]["candidate"] == row["f1"]["current"] is not None and row["f1"]["current"] > 0
        assert row["time_to_detect"]["candidate"] == row["time_to_detect"]["current"] is not None
    assert "## Evaluation suites" in (out / "gate.md").read_text()
    assert cv2.imread(str(out / "events.png")) is not None


def test_gate_on_a_suite_keeps_a_model_that_loses_the_events(setup: dict[str, Path]) -> None:
    blind = load_card("default").model_dump(mode="json", exclude_none=True)
    blind |= {"file": str(DEFAULT_CARD.parent / blind["file"]), "max_box_fraction": {"all": 1e-4}}
    card = setup["root"] / "blind.yaml"
    card.write_text(yaml.safe_dump(blind))  # a copy of the SSD that drops every box: it sees nothing
    out = setup["root"] / "blind"
    result = cli(
        "models", "gate", card, "--against", "default", "--data", setup["data"],
        "--suite", setup["suite"], "--out", out,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads((out / "gate.json").read_text())
    assert report["decision"] == "keep" and "events regressed" in report["reason"]
    lost = [r for r in report["events"]["rows"] if "F1" in r["regressed"]]
    assert lost and all(r["f1"]["current"] > 0 and not r["f1"]["candidate"] for r in lost)
    assert "F1" in (out / "gate.md").read_text()


def test_gate_refuses_a_missing_suite(setup: dict[str, Path]) -> None:
    result = cli(
        "models", "gate", "default", "--against", "default", "--data", setup["data"],
        "--suite", setup["root"] / "nope.yaml",
    )  # fmt: skip
    assert result.returncode == 2 and "nope.yaml" in result.stderr and "Traceback" not in result.stderr
