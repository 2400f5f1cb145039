"""Real footage no one here made, and the distant camera: `street-vision eval` against truth written by eye.

The suite's videos live in ../shared/data/footage beside the repository (nothing of them is
committed): missing, these tests fail under CI=true and are skipped elsewhere. The distant
camera is the plaza sample scaled to a third inside a 1920x1080 frame by ffmpeg, its zones
and boxes scaled alike; its person AP@0.5 with the defaults must stay within 90% of the
original's, for the embedded SSD and for the YOLOv8n INT8 model of the shared data.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from vision.evaluate.annotations import load_cvat
from vision.evaluate.truth import TruthSettings
from vision.rules.crowd import CrowdConfig

from .conftest import ROOT, SAMPLE, SHARED, cli, require

SUITE = ROOT / "tests" / "footage_suite"
COCO_INT8 = SHARED / "models" / "yolov8n_coco_int8.onnx"
THIRD = (256, 192, 832, 444)  # the plaza's 768x576 scaled to a third, at (x, y) in a 1920x1080 frame
FPS = 10  # the plaza's frames a second
STEP = 2  # the plaza's frames per frame its camera analyses (detect_fps 5)


def test_the_footage_suite_meets_its_thresholds(tmp_path: Path) -> None:
    for truth in yaml.safe_load((SUITE / "suite.yaml").read_text())["videos"]:
        require((SUITE / yaml.safe_load((SUITE / truth).read_text())["video"]).resolve())
    result = cli("eval", SUITE / "suite.yaml", "--out", tmp_path, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    scores = json.loads((tmp_path / "results.json").read_text())
    assert scores["events"]["crowd"]["f1"] == 1.0 and scores["events"]["litter"]["tickets"] == 0
    (vtest,) = [v for v in scores["videos"] if v["name"] == "vtest"]
    assert late_closes(vtest, "fishing") == [], vtest["tickets"]


def late_closes(video: dict, kind: str) -> list[str]:
    """Incidents of ``kind`` that ended in the video whose tickets did not all close by their close due
    (the end + the rule's close time + the truth's tolerance; docs/evaluation.md). On vtest the man right
    of the signpost left at 14.8 s and his lingering ticket, due to close by 22.0 s, closed at 23.2 s
    while the tracker gave his lost track to a passer-by who crossed the zone to 20.2 s."""
    real = [i for i in video["incidents"] if i["type"] == kind and not i.get("ambiguous") and i["end"]]
    assert real, f"no {kind} incident that ended in {video['name']}"
    return [
        f"{kind} {i['start']}-{i['end']} s: closed {i['time_to_close']} s after its end, due within "
        f"{i['close_due'] - i['end']:.1f} s"
        for i in real
        if i["time_to_close"] is None or i["end"] + i["time_to_close"] > i["close_due"] + 1e-6
    ]


@pytest.mark.parametrize("gate", ["true", "false"])
def test_the_parking_lane_at_half_a_detection_per_second_gets_no_litter_ticket(
    gate: str, tmp_path: Path
) -> None:
    """The car park lane at 0.5 detections/s (a keyframes-only camera), motion gate on and off: the camera
    drifts, so the painted line's edges, a pixel off the background's, lie changed and still from 8 s
    on, too thin for a blob. At 24 s they joined one blob (98 analysis pixels), and with the age of
    pixels that had never been an object (12 s) the litter rule's ticket opened at once, for a blob
    gone at the next look. A change in no blob now starts its clock again (vision/scene/static_blobs.py)."""
    truth = SUITE / "parking_lane.truth.yaml"
    require((SUITE / yaml.safe_load(truth.read_text())["video"]).resolve())
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"videos": [str(truth)]}))
    sets = ("--set", "camera.detect_fps=0.5", "--set", f"camera.motion_gate.enabled={gate}")
    result = cli("eval", suite, "--out", tmp_path / "out", *sets)
    assert result.returncode == 0, result.stdout + result.stderr
    (lane,) = json.loads((tmp_path / "out" / "results.json").read_text())["videos"]
    assert lane["error"] is None and lane["frames"] + lane["frames_held"] == 15
    assert lane["tickets"] == [], lane["tickets"]


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


# pixels from THIRD's place: the test's own and three of benchmarks/distant_placement.md's, where the
# plaza falls a few pixels off against the frame's pixels and the encoder's blocks, so the detector sees
# other pixels, the planner learns other sizes and the test does not pass by one placement's luck.
# +21,+13 (the SSD's only): its first 24 s, encoded alone, once got a false fishing ticket (the lingering
# man's track swapped with a lost passer-by's) until the tracker's appearance check (docs/evaluation.md)
PLACES = {"distant": (0, 0), "distant_a": (-17, 7), "distant_b": (9, -15), "distant_c": (21, 13)}
SHORT = 24.0  # seconds of the clip at the other places: the crowd formed (11.4 s), its ticket open, 12 s on,
# and the lingering tickets of incidents that ended by 16 s closed (at 20 s they were still open)


@pytest.fixture(scope="module")
def distant(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The plaza at a third inside 1920x1080 at three places, with its truth (zones, incident boxes, people
    boxes) placed and scaled alike; made once for both models. At the test's place the whole clip; at the
    others its first SHORT seconds (the crowd ticket's open and the seconds after it), so four places
    cost 2.8 times one place's frames. The camera sends only the
    frames its detect_fps analyses (the same frames as the original's sampled ones, at the same times),
    so no 1080p frame is decoded for nothing: frame k of the original is frame k / STEP here."""
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is needed to make the distant camera")
    folder = tmp_path_factory.mktemp("distant")
    return {
        name: make_distant(folder, THIRD[2] + dx, THIRD[3] + dy, name, None if (dx, dy) == (0, 0) else SHORT)
        for name, (dx, dy) in PLACES.items()
    }


def make_distant(folder: Path, x: int, y: int, name: str = "distant", seconds: float | None = None) -> Path:
    """The distant clip ``name``, its truth and people boxes in ``folder``, the plaza's top left corner at
    (x, y), of the first ``seconds`` of the plaza (None: all of it; an incident going on at the cut lasts to
    the clip's end); returns the truth file (benchmarks/distant_placement.py moves the plaza to other
    pixels)."""
    w, h = THIRD[:2]
    keep = rf"select=not(mod(n\,{STEP})),scale={w}:{h}:flags=area,pad=1920:1080:{x}:{y}:color=0x646464"
    command = ["ffmpeg", "-v", "error", "-y", *(["-t", str(seconds)] if seconds else []), "-i", str(SAMPLE)]
    command += ["-vf", keep, "-fps_mode", "passthrough", "-crf", "18"]
    subprocess.run([*command, str(folder / f"{name}.mp4")], check=True, timeout=300)
    truth = yaml.safe_load((SAMPLE.parent / "plaza.truth.yaml").read_text())
    for zone in truth["camera"]["zones"].values():
        zone["polygon"] = [[(x + px * w) / 1920, (y + py * h) / 1080] for px, py in zone["polygon"]]
    f = w / 768
    incidents = [i for i in truth["incidents"] if seconds is None or i["start"] < seconds]
    for incident in incidents:
        if seconds is not None and (incident.get("end") is None or incident["end"] >= seconds):
            incident["end"] = None
        if "box" in incident:
            x1, y1, x2, y2 = incident["box"]
            incident["box"] = [x + x1 * f, y + y1 * f, x + x2 * f, y + y2 * f]
    people = load_cvat(SAMPLE.parent / "plaza.boxes.xml")
    assert not (people.frames % STEP).any(), "an annotated frame is not one the distant camera sends"
    kept = people.frames if seconds is None else people.frames[people.frames < seconds * FPS]
    frames = (kept // STEP).tolist()
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
        if int(k) // STEP in frames
    ]
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}
    (folder / f"{name}.boxes.json").write_text(json.dumps(coco))
    truth |= {"video": f"{name}.mp4", "boxes": {"file": f"{name}.boxes.json"}, "incidents": incidents}
    (folder / f"{name}.truth.yaml").write_text(yaml.safe_dump(truth))
    return folder / f"{name}.truth.yaml"


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


def crowd_bounds(truth_file: Path) -> tuple[float, float]:
    """How early and how late after the crowd formed (seconds) a crowd ticket may open: no earlier than the
    truth's own precision (its tolerance, the annotator's second) before it, and, as the issue asks, no
    later than the rule's window + 2 s, where the rule's window is the time its settings take to decide:
    the median's ``window``, then ``min_duration`` crowded (4 s on the plaza: a count right on every
    frame opens it about 3 s after the crowd formed). The matcher takes a ticket that opens before the
    crowd formed as the crowd's (their times overlap), but a crowd ticket while 6 people stand there is
    a false alarm for whoever gets it."""
    truth = yaml.safe_load(truth_file.read_text())
    (rule,) = [
        z["rules"]["crowd"] for z in truth["camera"]["zones"].values() if "crowd" in z.get("rules", {})
    ]
    crowd = CrowdConfig.model_validate(rule)
    early = -truth.get("tolerance", TruthSettings.model_fields["tolerance"].default)
    return early, crowd.window + crowd.min_duration + 2


@pytest.mark.parametrize("model", ["default", "yolov8n_int8"])
def test_the_distant_plaza_keeps_person_ap_and_the_crowd_ticket(
    model: str, distant: dict[str, Path], tmp_path: Path
) -> None:
    """At each of the distant clip's places the crowd ticket within its bounds (as on the original), no
    false ticket, none closed early, none left open; on the whole distant clip, person AP@0.5 at least 90%
    of the original's (a short clip's AP is of its first annotated frames only: YOLOv8n INT8's AP on the
    first 24 s at two places was 0.81-0.82, against 0.92 on the whole original and 0.85-0.87 on the whole
    distant clip at the same places, benchmarks/distant_placement.md). YOLOv8n INT8 runs two of the
    places: its tile follows the plaza and its ticket opened 5.0-5.2 s after the crowd formed at all
    four of the benchmark's."""
    card: tuple[str, ...] = ()
    if model != "default":
        onnx = tmp_path / COCO_INT8.name
        onnx.symlink_to(require(COCO_INT8))
        assert cli("models", "card", onnx).returncode == 0
        card = ("--model", str(onnx.with_suffix(".yaml")))
    original = SAMPLE.parent / "plaza.truth.yaml"
    suite = tmp_path / "near-far.suite.yaml"  # one run for all: one start, one model load
    places = dict(itertools.islice(distant.items(), 4 if model == "default" else 2))
    suite.write_text(yaml.safe_dump({"videos": [str(original), *map(str, places.values())]}))
    result = cli("eval", suite, "--out", tmp_path / "out", *card, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    scores = json.loads((tmp_path / "out" / "results.json").read_text())
    videos = {v["name"]: v for v in scores["videos"]}
    ap = {name: v["ap50"]["person"] for name, v in scores["detection"]["videos"].items()}
    early, late = crowd_bounds(original)
    opened = {name: crowd_of(videos[name]) for name in ["plaza", *places]}
    for name, (found, false, times) in opened.items():
        assert found and false == 0 and times is not None, (name, videos[name])
        assert early <= times[0] and times[1] <= late, (name, times, (early, late), opened)
    assert ap["distant"] >= 0.9 * ap["plaza"], ap
    for name in places:
        assert faults(videos[name]) == [], videos[name]  # lingering by the signpost included
