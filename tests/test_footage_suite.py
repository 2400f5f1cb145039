"""Real footage no one here made, and the distant camera: `street-vision eval` against truth written by eye.

The suite's videos live in ../shared/data/footage beside the repository (nothing of them is
committed): missing, these tests fail under CI=true and are skipped elsewhere. The distant
camera is the plaza sample scaled to a third inside a 1920x1080 frame by ffmpeg, its zones
and boxes scaled alike; its person AP@0.5 with the defaults must stay within 90% of the
original's, for the embedded SSD and for the YOLOv8n INT8 model of the shared data.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from vision.evaluate.annotations import load_cvat
from vision.evaluate.truth import TruthSettings

from .conftest import ROOT, SAMPLE, SHARED, cli, require

SUITE = ROOT / "tests" / "footage_suite"
COCO_INT8 = SHARED / "models" / "yolov8n_coco_int8.onnx"
THIRD = (256, 192, 832, 444)  # the plaza's 768x576 scaled to a third, at (x, y) in a 1920x1080 frame
STEP = 2  # the plaza's frames (10 a second) per frame its camera analyses (detect_fps 5)


def test_the_footage_suite_meets_its_thresholds(tmp_path: Path) -> None:
    for truth in yaml.safe_load((SUITE / "suite.yaml").read_text())["videos"]:
        require((SUITE / yaml.safe_load((SUITE / truth).read_text())["video"]).resolve())
    result = cli("eval", SUITE / "suite.yaml", "--out", tmp_path, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    scores = json.loads((tmp_path / "results.json").read_text())
    assert scores["events"]["crowd"]["f1"] == 1.0 and scores["events"]["litter"]["tickets"] == 0


def test_vtest_and_the_plaza_sample_share_their_first_40_s_of_truth() -> None:
    """The sample plaza is vtest's first 40 s: its zones and incidents are vtest's there, so a recount
    changes both files together (the crowd's edges, sample_videos/plaza.truth.yaml)."""
    plaza = yaml.safe_load((SAMPLE.parent / "plaza.truth.yaml").read_text())
    vtest = yaml.safe_load((SUITE / "vtest.truth.yaml").read_text())
    keys = ("type", "zone", "start", "end", "box", "ambiguous")
    first = [
        {k: i.get(k) for k in keys} for i in vtest["incidents"] if i.get("end") is not None and i["end"] <= 40
    ]
    assert first == [{k: i.get(k) for k in keys} for i in plaza["incidents"]]
    assert vtest["camera"]["zones"] == plaza["camera"]["zones"]


@pytest.fixture(scope="module")
def distant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plaza at a third inside 1920x1080, with its truth (zones, incident boxes, people boxes) scaled;
    made once for both models. The camera sends only the frames its detect_fps analyses (the same frames
    as the original's sampled ones, at the same times), so no 1080p frame is decoded for nothing: frame k
    of the original is frame k / STEP here."""
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is needed to make the distant camera")
    return make_distant(tmp_path_factory.mktemp("distant"), *THIRD[2:])


def make_distant(folder: Path, x: int, y: int) -> Path:
    """The distant clip, its truth and people boxes in ``folder``, the plaza's top left corner at (x, y);
    returns the truth file (benchmarks/distant_placement.py moves the plaza to other pixels)."""
    w, h = THIRD[:2]
    keep = rf"select=not(mod(n\,{STEP})),scale={w}:{h}:flags=area,pad=1920:1080:{x}:{y}:color=0x646464"
    command = ["ffmpeg", "-v", "error", "-y", "-i", str(SAMPLE), "-vf", keep, "-fps_mode", "passthrough"]
    command += ["-crf", "18"]
    subprocess.run([*command, str(folder / "distant.mp4")], check=True, timeout=300)
    truth = yaml.safe_load((SAMPLE.parent / "plaza.truth.yaml").read_text())
    for zone in truth["camera"]["zones"].values():
        zone["polygon"] = [[(x + px * w) / 1920, (y + py * h) / 1080] for px, py in zone["polygon"]]
    f = w / 768
    for incident in truth["incidents"]:
        if "box" in incident:
            x1, y1, x2, y2 = incident["box"]
            incident["box"] = [x + x1 * f, y + y1 * f, x + x2 * f, y + y2 * f]
    people = load_cvat(SAMPLE.parent / "plaza.boxes.xml")
    assert not (people.frames % STEP).any(), "an annotated frame is not one the distant camera sends"
    frames = (people.frames // STEP).tolist()
    images = [{"id": i + 1, "frame_id": k, "width": 1920, "height": 1080} for i, k in enumerate(frames)]
    annotations = [
        {
            "id": n + 1,
            "image_id": frames.index(int(k) // STEP) + 1,
            "category_id": 1,
            "bbox": [x + b[0] * f, y + b[1] * f, (b[2] - b[0]) * f, (b[3] - b[1]) * f],
            "iscrowd": int(ignore),
        }
        for n, (k, b, ignore) in enumerate(
            zip(people.frame, people.xyxy.tolist(), people.ignore, strict=True)
        )
    ]
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}
    (folder / "distant.boxes.json").write_text(json.dumps(coco))
    truth |= {"video": "distant.mp4", "boxes": {"file": "distant.boxes.json"}}
    (folder / "distant.truth.yaml").write_text(yaml.safe_dump(truth))
    return folder / "distant.truth.yaml"


def faults(video: dict) -> list[str]:
    """A video's false tickets, false closes and unclosed incidents, of every type (ambiguous stays aside)."""
    false = [
        f"false {t['type']} ticket at {t['opened_at']} s" for t in video["tickets"] if t["role"] == "false"
    ]
    real = [i for i in video["incidents"] if not i.get("ambiguous")]
    closes = [f"{i['type']} from {i['start']} s closed early" for i in real if i["false_closes"]]
    return false + closes + [f"{i['type']} from {i['start']} s never closed" for i in real if i["unclosed"]]


def crowd_of(video: dict) -> tuple[bool, int, tuple[float, float] | None]:
    """One video's crowd: every incident ticketed, false crowd tickets, the earliest and the slowest time
    to detect (negative: the ticket opened before the crowd formed)."""
    incidents = [i for i in video["incidents"] if i["type"] == "crowd"]
    false = [t for t in video["tickets"] if t["type"] == "crowd" and t["role"] == "false"]
    times = [i["time_to_detect"] for i in incidents]
    found = bool(incidents) and all(t is not None for t in times)
    return found, len(false), (min(times), max(times)) if found else None


@pytest.mark.parametrize("model", ["default", "yolov8n_int8"])
def test_the_distant_plaza_keeps_person_ap_and_the_crowd_ticket(
    model: str, distant: Path, tmp_path: Path
) -> None:
    card: tuple[str, ...] = ()
    if model != "default":
        onnx = tmp_path / COCO_INT8.name
        onnx.symlink_to(require(COCO_INT8))
        assert cli("models", "card", onnx).returncode == 0
        card = ("--model", str(onnx.with_suffix(".yaml")))
    suite = tmp_path / "near-far.suite.yaml"  # one run for both: one start, one model load
    suite.write_text(yaml.safe_dump({"videos": [str(SAMPLE.parent / "plaza.truth.yaml"), str(distant)]}))
    result = cli("eval", suite, "--out", tmp_path / "out", *card, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    scores = json.loads((tmp_path / "out" / "results.json").read_text())
    videos = {v["name"]: v for v in scores["videos"]}
    ap = {name: v["ap50"]["person"] for name, v in scores["detection"]["videos"].items()}
    near_found, _, near_times = crowd_of(videos["plaza"])
    far_found, far_false, far_times = crowd_of(videos["distant"])
    assert ap["distant"] >= 0.9 * ap["plaza"], ap
    assert near_found and far_found and far_false == 0, (videos["plaza"], videos["distant"])
    assert near_times is not None and far_times is not None
    assert far_times[1] <= near_times[1] + 2, (far_times, near_times)
    assert faults(videos["distant"]) == [], videos["distant"]  # lingering by the signpost included
    # the matcher takes a ticket that opens before the crowd formed as the crowd's (their times overlap),
    # but a crowd ticket while 6 people stand there is a false alarm for whoever gets it: no earlier than
    # the truth's own precision (its tolerance, the annotator's second) allows. The SSD's distant ticket
    # opened 2.0 s early while its 224 px tiles' people below min_object_px counted (docs/evaluation.md)
    truth = yaml.safe_load((SAMPLE.parent / "plaza.truth.yaml").read_text())
    early = -truth.get("tolerance", TruthSettings.model_fields["tolerance"].default)
    assert near_times[0] >= early and far_times[0] >= early, (near_times, far_times)
