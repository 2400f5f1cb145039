"""The detection plan picks itself: whole frame where it suffices, tiles where people are small.

Real footage and the real detector: the plaza sample as a small camera (640x360, large
people) and as a distant one (scaled to a third inside a 1920x1080 frame, made by ffmpeg).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from vision.config import RegionsConfig, parse_config
from vision.detect.card import ModelError, load_card
from vision.detect.detector import Detector
from vision.detect.limits import BoxLimits
from vision.detect.planner import Planner
from vision.detect.plans import Area, ModelScale, joined
from vision.detect.regions import fit, greedy_merge, merge
from vision.detect.sizes import KEEP, LARGE, MIN_SAMPLES, SMALL, ObjectSizes, calibrated_heights, ring_put
from vision.evaluate.annotations import load_cvat
from vision.pipeline import Pipeline
from vision.scene.calibration import GroundPlane
from vision.scene.zones import Zone
from vision.store import Store
from vision.types import Detections

from .conftest import ROOT, SAMPLE

CROSSING = np.array(
    [[0.0, 0.33], [0.55, 0.33], [0.95, 0.25], [1.0, 0.45], [1.0, 0.85], [0.55, 0.62], [0.0, 0.5]]
)
THIRD = (256, 192, 832, 444)  # the plaza scaled to a third (width, height) at (x, y) in a 1920x1080 frame


def ffmpeg(*args: str) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is needed to make the test clips")
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=120)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The plaza sample at 640x360, and at a third inside a 1920x1080 frame (first 16 s)."""
    out = tmp_path_factory.mktemp("clips")
    w, h, x, y = THIRD
    made = {"small": out / "small.mp4", "distant": out / "distant.mp4"}
    ffmpeg("-i", str(SAMPLE), "-t", "16", "-vf", "scale=640:360", "-crf", "18", str(made["small"]))
    distant = f"scale={w}:{h}:flags=area,pad=1920:1080:{x}:{y}:color=0x646464"
    ffmpeg("-i", str(SAMPLE), "-t", "16", "-vf", distant, "-crf", "18", str(made["distant"]))
    return made


def frames(path: Path, every: int = 2) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    out, index = [], 0
    while (got := capture.read())[0]:
        if index % every == 0:
            out.append(got[1])
        index += 1
    return out


def distant_zone() -> np.ndarray:
    w, h, x, y = THIRD
    return (CROSSING * [w, h] + [x, y]) / [1920, 1080]


def distant_plaza() -> tuple[dict[str, Zone], np.ndarray]:
    """The plaza's zones and hand-checked people boxes (all annotated frames) at a third inside 1080p."""
    w, h, x, y = THIRD
    truth = yaml.safe_load((SAMPLE.parent / "plaza.truth.yaml").read_text())
    zones = {
        name: Zone(name, (np.array(zone["polygon"]) * [w, h] + [x, y]) / [1920, 1080])
        for name, zone in truth["camera"]["zones"].items()
    }
    return zones, load_cvat(SAMPLE.parent / "plaza.boxes.xml").xyxy * (w / 768) + [x, y, x, y]


def drive(planner: Planner, detector: Detector, images: list[np.ndarray]) -> tuple[list, list[Detections]]:
    """Plan, detect and learn frame by frame, as the pipeline does; the boxes and detections per frame."""
    plans, found = [], []
    for image in images:
        boxes = planner.boxes(image.shape[1], image.shape[0])
        detections = detector.detect([image], [boxes])[0]
        planner.observe(detections, image.shape[1], image.shape[0])
        plans.append(boxes)
        found.append(detections)
    return plans, found


def test_small_camera_with_large_people_runs_whole_frame(detector: Detector, clips: dict[str, Path]) -> None:
    planner = Planner.for_camera(
        RegionsConfig(), {"crossing": Zone("crossing", CROSSING)}, None, detector.card
    )
    assert planner.outlook(640, 360) == (
        "640x360: full, 1 inference(s) per frame; crossing: person size not known yet: whole frame"
    )  # the SSD shrinks a 360 px frame 1.2x: no survey, nothing to gain from tiles
    plans, _ = drive(planner, detector, frames(clips["small"], every=4))
    assert all(boxes is None for boxes in plans)  # every frame cost one inference
    reason = planner.plan.zones["crossing"]
    assert planner.plan.inferences == 1 and "people seen" in reason and "whole frame" in reason


def test_distant_plaza_tiles_itself_and_finds_the_small_people(
    detector: Detector, clips: dict[str, Path]
) -> None:
    zones = {"crossing": Zone("crossing", distant_zone())}
    planner = Planner.for_camera(RegionsConfig(), zones, None, detector.card)
    images = frames(clips["distant"])
    plans, found = drive(planner, detector, images)
    assert plans[0] is not None and len(plans[0]) > 1  # the first frame is surveyed at native scale
    settled = next(i for i, p in enumerate(plans) if planner.plan.mode == "tiles" and p is not None)
    assert settled <= 5 and planner.plan.mode == "tiles"
    assert 2 <= planner.plan.inferences <= RegionsConfig().max_inferences
    assert "tiles of" in planner.plan.zones["crossing"]
    whole = [detector.detect([img])[0] for img in images[settled:]]
    w, h, x, y = THIRD
    originals = [cv2.resize(img[y : y + h, x : x + w], (768, 576)) for img in images[settled:]]
    original = [detector.detect([img])[0] for img in originals]
    people = [int((d.class_id == 0).sum()) for d in found[settled:]]
    on_whole = sum(int((d.class_id == 0).sum()) for d in whole)
    on_original = sum(int((d.class_id == 0).sum()) for d in original)
    assert on_whole < 0.2 * on_original  # the whole 1080p frame shows the SSD next to nobody
    assert sum(people) >= 0.8 * on_original, (sum(people), on_original)
    # deterministic: the same detections replayed plan the same crops, frame by frame
    again = Planner.for_camera(
        RegionsConfig(), {"crossing": Zone("crossing", distant_zone())}, None, detector.card
    )
    for boxes, detections, image in zip(plans, found, images, strict=True):
        replanned = again.boxes(image.shape[1], image.shape[0])
        assert (boxes is None and replanned is None) or np.array_equal(boxes, replanned)
        again.observe(detections, image.shape[1], image.shape[0])
    # restarted from its snapshot (JSON), the camera knows the sizes it had learnt and plans tiles from its
    # first frame: no survey, no whole frame only
    restored = Planner.for_camera(
        RegionsConfig(), {"crossing": Zone("crossing", distant_zone())}, None, detector.card
    )
    restored.load(json.loads(json.dumps(planner.state())))
    learnt, known = (p.sizes.estimate("crossing", 1920, 1080) for p in (planner, restored))
    assert learnt is not None and known is not None and known[2] == learnt[2]  # "N people seen"
    assert known[:2] == pytest.approx(learnt[:2], abs=0.1)
    first = restored.boxes(1920, 1080)
    assert restored.plan.mode == "tiles" and np.array_equal(first, restored.plan.boxes)


def test_a_restarted_pipeline_keeps_the_sizes_its_cameras_learnt(
    detector: Detector, clips: dict[str, Path], tmp_path: Path
) -> None:
    short = tmp_path / "short.mp4"
    ffmpeg("-i", str(clips["distant"]), "-t", "2", "-c", "copy", str(short))
    polygon = distant_zone().tolist()
    config = parse_config(
        f"cameras:\n  far:\n    url: {short}\n    detect_fps: 5\n"
        f"    zones:\n      crossing:\n        polygon: {polygon}\n"
    )
    store = Store(tmp_path / "data")
    try:
        Pipeline(config, detector, store).run()
        first = store.snapshot("far")[0].state["planner"]["sizes"]["crossing"]
        assert first["seen"] >= MIN_SAMPLES  # surveys found the small people: the zone is sized
        second = Pipeline(config, detector, store)
        second.run()
        regions = second.workers["far"].regions
        # what the first run learnt was restored, then added to: not started over
        assert regions.sizes.seen(["crossing"]) > first["seen"]
        assert regions.plan.mode == "tiles"
    finally:
        store.close()


def test_calibrated_camera_plans_tiles_from_the_first_frame(detector: Detector) -> None:
    # 0.2 of a 1920 px frame is 40 m: 9.6 px per metre, a person 16 px tall
    square = np.array([[0.4, 0.4], [0.6, 0.4], [0.6, 0.6], [0.4, 0.6]])
    ground = GroundPlane(square, np.array([[0, 0], [40, 0], [40, 40], [0, 40]]))
    zones = {"far": Zone("far", square)}
    planner = Planner.for_camera(RegionsConfig(), zones, ground, detector.card)
    boxes = planner.boxes(1920, 1080)
    assert planner.plan.mode == "tiles" and np.array_equal(boxes, planner.plan.boxes)
    # the SSD's card asks two looks: a grid of 160 px tiles and one of 224 px (GROW larger) over the zone
    assert planner.plan.zones["far"] == "people 16-16 px (calibration): tiles of 160 and 224 px"
    assert boxes[0].tolist() == [0, 0, 1920, 1080]
    sides = boxes[1:, 2] - boxes[1:, 0]
    assert set(sides.tolist()) == {160, 224} and np.array_equal(sides, boxes[1:, 3] - boxes[1:, 1])
    for tiles in (boxes[1:][sides == 160], boxes[1:][sides == 224]):  # each look covers the whole zone
        assert tiles[:, 0].min() <= 0.4 * 1920 and tiles[:, 2].max() >= 0.6 * 1920
        assert tiles[:, 1].min() <= 0.4 * 1080 - 16 and tiles[:, 3].max() >= 0.6 * 1080
    assert np.array_equal(planner.boxes(1920, 1080), boxes)  # no survey: the size is known


def test_zones_side_by_side_share_their_tiles() -> None:
    frame = (1920, 1080)
    crossing = Area((0, 0, 300, 200), 160, 0.25, frame, ("crossing",))
    lawn = Area((200, 100, 400, 300), 160, 0.2, frame, ("lawn",))
    far = Area((1500, 800, 1700, 1000), 160, 0.25, frame, ("far",))
    sign = Area((100, 50, 250, 150), 192, 0.2, frame, ("sign",))  # larger people: one tile of 192 alone
    areas = joined([crossing, lawn, far, sign])
    assert sorted(sorted(a.names) for a in areas) == [["crossing", "lawn", "sign"], ["far"]]
    shared = next(a for a in areas if "far" not in a.names)
    assert shared.box == (0, 0, 400, 300) and shared.side == 160  # the smaller side serves both
    assert shared.overlap == 0.25  # the wider in pixels: the crossing's 40 px, not the sign's 38
    assert len(crossing.grid()) + len(lawn.grid()) + len(sign.grid()) == 6 + 4 + 1
    assert len(shared.grid()) == 9  # one 3x3 grid over all three


def test_an_area_smaller_than_a_tile_is_one_tile_wherever_it_lies() -> None:
    for x in (100.0, 100.5, 100.9):  # a box at fractional pixels grown to 160 stays 160 px, never 161
        assert fit(x, 50.5, x + 40, 99.2, 1920, 1080, 160) == [
            math.floor(x + 20) - 80,
            0,
            math.floor(x + 20) + 80,
            160,
        ]
        assert len(Area((int(x), 50, int(x) + 41, 100), 160, 0.25, (1920, 1080)).grid()) == 1


def test_the_distant_plazas_three_zones_cost_one_tile_with_a_640_px_model() -> None:
    # the plaza's zones and people (its boxes, hand-checked) at a third inside 1080p, for a model of 640 px
    # that finds people from 28 px (the YOLOv8n card): 23-34 px people want tiles of 480-576 px, and the
    # whole plaza is 256x192 px: one tile covers it, not one grid of four per zone (nine inferences)
    w, h, x, y = THIRD
    zones, people = distant_plaza()
    planner = Planner(
        RegionsConfig(),
        zones,
        ModelScale(640, 640, False, 28.0),
        ObjectSizes(zones, np.zeros(1, np.int32), None),
    )
    planner.observe(
        Detections.from_arrays(people, np.ones(len(people)), np.zeros(len(people), np.int32)), 1920, 1080
    )
    boxes = planner.boxes(1920, 1080)
    assert planner.plan.mode == "tiles" and len(boxes) == 2, (planner.plan.zones, boxes)
    (tx1, ty1, tx2, ty2) = boxes[1]
    assert tx1 <= x and ty1 <= y - 30 and tx2 >= x + w and ty2 >= y + h * 0.9  # the zones, and bodies above
    assert all(why.endswith("tiles of 320 px") for why in planner.plan.zones.values()), planner.plan.zones
    assert (tx2 - tx1, ty2 - ty1) == (320, 320)  # one tile magnifies as much as it may (2x) at no cost


def test_a_model_with_two_looks_sees_the_distant_plaza_in_two_grids_of_distinct_tiles() -> None:
    # the SSD's card (300 px, people from 36 px, two looks): one grid of 160 px tiles and one of 224 px over
    # the three zones together, 8 tiles and the whole frame (the one-pixel grids made 11); no tile repeats
    # another a few pixels off, and each look alone covers every zone with their people's bodies
    zones, people = distant_plaza()
    planner = Planner(
        RegionsConfig(), zones, ModelScale(300, 300, True, 36.0, 2), ObjectSizes(zones, np.zeros(1), None)
    )
    planner.observe(Detections.from_arrays(people, np.ones(len(people)), np.zeros(len(people))), 1920, 1080)
    boxes = planner.boxes(1920, 1080)
    assert planner.plan.mode == "tiles" and len(boxes) == 9, (planner.plan.zones, boxes)
    assert all(why.endswith("tiles of 160 and 224 px") for why in planner.plan.zones.values())
    tiles, sides = boxes[1:], boxes[1:, 2] - boxes[1:, 0]
    near = np.abs(tiles[:, None] - tiles[None]).max(axis=2) + np.eye(len(tiles), dtype=int) * 99
    assert near.min() >= 16, tiles  # distinct looks, not copies a pixel apart
    corners = np.concatenate([zone.polygon for zone in zones.values()]) * [1920, 1080]
    (x1, y1), (x2, y2) = corners.min(axis=0), corners.max(axis=0)
    for side in (160, 224):
        look = tiles[sides == side]
        assert look[:, 0].min() <= x1 and look[:, 2].max() >= x2 and look[:, 3].max() >= y2
        assert look[:, 1].min() <= y1 - 30  # the far people's heads, above the crossing's far edge


def test_check_shows_each_cameras_plan_and_cost(clips: dict[str, Path], tmp_path: Path) -> None:
    config = {
        "cameras": {
            "near": {"url": str(clips["small"]), "zones": {"crossing": {"polygon": CROSSING.tolist()}}},
            "far": {
                "url": str(clips["distant"]),
                "zones": {"crossing": {"polygon": distant_zone().tolist()}},
            },
            "live": {"url": "rtsp://127.0.0.1:9/x"},
        }
    }
    path = tmp_path / "cameras.yaml"
    path.write_text(yaml.safe_dump(config))
    out = subprocess.run(
        [sys.executable, "-m", "vision.cli", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    lines = {line.split(":")[0].strip(): line for line in out.stdout.splitlines()[1:]}
    assert "640x360: full, 1 inference(s) per frame" in lines["near"] and "surveyed" not in lines["near"]
    assert "1920x1080: full, 1 inference(s) per frame; until people are seen, 1 frame in 25" in lines["far"]
    assert "planned at the first frame" in lines["live"]


def test_a_box_cut_by_a_tile_edge_comes_back_whole() -> None:
    # tile A is x 0-320 and sees the whole person (x 240-300); tile B starts at x 256 and cuts it
    xyxy = np.array([[240, 10, 300, 80], [256, 12, 300, 80], [100, 10, 150, 80]], np.float32)
    for scores in ([0.8, 0.6, 0.7], [0.6, 0.8, 0.7]):  # whichever scores higher
        keep, boxes = greedy_merge(
            xyxy, np.array(scores), np.zeros(3, np.int32), np.array([0, 1, 0]), np.array([False, True, False])
        )
        assert len(keep) == 2 and boxes[keep.tolist().index(np.argmax(scores[:2]))].tolist() == [
            240,
            10,
            300,
            80,
        ]
    # two boxes of one tile, or of two classes, are two objects however they overlap
    same = greedy_merge(xyxy[:2], np.array([0.8, 0.6]), np.zeros(2, np.int32), np.zeros(2), np.ones(2, bool))
    classes = greedy_merge(xyxy[:2], np.array([0.8, 0.6]), np.array([0, 1]), np.arange(2), np.ones(2, bool))
    assert len(same[0]) == len(classes[0]) == 2
    # a box that nobody cut is kept as drawn: an overlapping look from another tile does not grow it
    keep, boxes = greedy_merge(
        xyxy[:2], np.array([0.6, 0.8]), np.zeros(2, np.int32), np.arange(2), np.zeros(2, bool)
    )
    assert boxes.tolist() == [[256, 12, 300, 80]]


def test_a_person_below_the_models_size_gives_way_to_a_tile_that_shows_them_larger() -> None:
    # the SSD (300 px, people from 36 px) on the distant plaza: the whole frame, a second-look tile of 224 px
    # and a first-look tile of 160 px; a 25 px "person" of the 224 px tile is 33 model px there, 47 in the
    # 160 px tile, whose verdict (nobody) stands; a 30 px one (40 model px) is kept, as are other classes
    crops = np.array([[0, 0, 0, 1920, 1080], [0, 800, 440, 1024, 664], [0, 816, 460, 976, 620]])
    scale = np.array([300 / 1080, 300 / 224, 300 / 160], np.float32)
    people = np.array([0], np.int32)

    def merged(boxes: list[list[float]], classes: list[int], where: np.ndarray = crops) -> list[list[float]]:
        second = Detections.from_arrays(np.array(boxes, np.float32), np.full(len(boxes), 0.6), classes)
        found = [Detections.empty(), second, Detections.empty()][: len(where)]
        out = merge(found, where, [(1920, 1080)], scale[: len(where)], 36.0, people)[0]
        return (out.xyxy - [800, 440, 800, 440]).tolist()

    assert merged([[100, 50, 110, 75], [40, 60, 52, 90]], [0, 0]) == [[40, 60, 52, 90]]
    assert merged([[100, 50, 110, 75]], [39]) == [[100, 50, 110, 75]]  # a bottle: the card says nothing
    assert merged([[100, 50, 110, 75]], [0], crops[:2]) == [[100, 50, 110, 75]]  # no crop shows it larger
    assert merged([[10, 50, 20, 75]], [0]) == [[10, 50, 20, 75]]  # the 160 px tile holds it only in part


def test_the_card_drops_boxes_that_cannot_be_real(tmp_path: Path) -> None:
    ssd = load_card("default")
    assert ssd.max_box_fraction == {"person": 0.5}
    limits = BoxLimits.of(ssd)
    assert limits is not None
    found = Detections.from_arrays(
        [[0, 0, 300, 290], [10, 10, 60, 200], [0, 0, 290, 290]], [0.7, 0.9, 0.8], [0, 0, 2]
    )
    kept = found[limits.fits(found, 300, 300)]  # the frame-sized person goes; a frame-sized car may stay
    assert kept.xyxy.tolist() == [[10, 10, 60, 200], [0, 0, 290, 290]]
    card = yaml.safe_load(Path(ssd.card_path).read_text())
    card |= {"file": str(ssd.model_path), "max_box_fraction": {"pedestrian": 0.5}}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(card))
    with pytest.raises(ModelError, match="max_box_fraction: no label pedestrian"):
        load_card(tmp_path / "bad.yaml")


def test_surveys_back_off_while_they_find_nobody_and_resume_when_people_come(detector: Detector) -> None:
    """An empty car park would pay a survey's inferences every 25 frames for ever: a survey rolls (here
    one of its tiles per surveyed frame) and each round of them that finds nobody doubles the gap, up
    to 16 times; tiles that find people survey the next frames whole."""
    planner = Planner.for_camera(
        RegionsConfig(survey_tiles=1), {"crossing": Zone("crossing", distant_zone())}, None, detector.card
    )
    nobody = Detections.empty()
    surveyed = []
    for frame in range(1, 1601):
        if planner.boxes(1920, 1080) is not None:
            surveyed.append(frame)
        planner.observe(nobody, 1920, 1080)
    # the zone's survey is 2 tiles: rounds of 2 frames, 25, 50, 100, 200 then 400 frames apart
    assert surveyed == [1, 26, 76, 126, 226, 326, 526, 726, 1126, 1526]
    w, h, x, y = THIRD
    person = Detections.from_arrays(  # a small person inside the zone, found by the next survey
        np.array([[x + 0.3 * w - 4, y + 0.45 * h - 24, x + 0.3 * w + 4, y + 0.45 * h]], np.float32),
        np.array([0.9], np.float32),
        np.array([0], np.int32),
    )
    sizes = {}
    for frame in range(1601, 2101):
        boxes = planner.boxes(1920, 1080)
        if boxes is not None:
            surveyed.append(frame)
            sizes[frame] = len(boxes)
        planner.observe(person if frame in (1926, 1927) else nobody, 1920, 1080)
    # due at 1926, finds someone: surveys on, whole (1927, 1928); then nobody again: a round 50 frames apart
    assert surveyed[10:] == [1926, 1927, 1928, 1978, 2028]
    assert [sizes[f] for f in surveyed[10:]] == [2, 3, 3, 2, 2]  # the whole frame and 1 or both tiles


def test_cameras_run_together_survey_on_staggered_frames(detector: Detector, tmp_path: Path) -> None:
    """Cameras that start together must not all survey their first frames in one inference round (a
    survey is 5-20 inferences: 48 cameras made a round of ~800, and none saw a result for 30 s):
    camera i surveys i frames (modulo survey_every) later, a function of the config only."""
    zone = {"crossing": Zone("crossing", distant_zone())}
    config = RegionsConfig(survey_every=4, survey_tiles=1)  # the zone's 2 tiles: a round of 2 surveys
    nobody, surveyed = Detections.empty(), {}
    for index in range(6):
        planner = Planner.for_camera(config, zone, None, detector.card, index)
        surveyed[index] = []
        for frame in range(1, 14):
            if frame == 10:
                planner.reconfigure(config, zone)  # new zones: surveyed again soon, still staggered
            if planner.boxes(1920, 1080) is not None and planner.plan.boxes is None:
                surveyed[index].append(frame)
            planner.observe(nobody, 1920, 1080)
    # the first survey at frame 1 + i % 4; finding nobody, the next 4 frames later; new zones at
    # frame 10: the next at 10 + i % 4
    assert surveyed == {i: [1 + i % 4, 5 + i % 4, 10 + i % 4] for i in range(6)}
    polygon = distant_zone().tolist()
    cameras = "".join(
        f"  cam{i}:\n    url: {SAMPLE}\n    zones:\n      crossing:\n        polygon: {polygon}\n"
        for i in range(3)
    )
    store = Store(tmp_path / "data")
    try:
        pipeline = Pipeline(parse_config(f"cameras:\n{cameras}"), detector, store)
        assert [w.regions.index for w in pipeline.workers.values()] == [0, 1, 2]  # the config's order
    finally:
        store.close()


def test_sizes_are_the_percentiles_of_the_last_people_seen_every_frame() -> None:
    """The planner asks every zone's size before every frame; ObjectSizes keeps each estimate until its
    source sees someone new and takes it from one sort: still np.percentile of the last KEEP heights
    seen there, to the bit, on every frame (people or none, the ring wrapped), and a calibrated zone's
    is the calibration's at each frame width."""
    rng = np.random.default_rng(16)
    sizes = ObjectSizes({"crossing": Zone("crossing", CROSSING)}, np.array([0]), None)
    width, height = 768, 576
    seen: list[np.float32] = []
    for frame in range(120):
        n = int(rng.integers(0, 9)) if frame % 4 else 0  # a frame in four shows nobody
        tops = rng.uniform(0.0, 200.0, n)
        xyxy = np.stack([np.full(n, 200.0), tops, np.full(n, 240.0), np.full(n, 0.45 * height)], 1)
        people = Detections.from_arrays(xyxy.astype(np.float32), np.full(n, 0.9), np.zeros(n))
        sizes.observe(people, width, height)
        seen += list((people.xyxy[:, 3] - people.xyxy[:, 1]) / height)
        estimate = sizes.estimate("crossing", width, height)
        if len(seen) < MIN_SAMPLES:
            assert estimate is None
            continue
        ring = np.array(seen[-KEEP:], np.float32)
        expected = np.percentile(ring, [SMALL, LARGE]) * height
        assert estimate == (*expected.tolist(), f"{len(ring)} people seen")
    assert len(seen) > KEEP  # the ring wrapped
    square = np.array([[0.4, 0.4], [0.6, 0.4], [0.6, 0.6], [0.4, 0.6]])
    ground = GroundPlane(square, np.array([[0, 0], [40, 0], [40, 40], [0, 40]]))
    calibrated = ObjectSizes({"far": Zone("far", square)}, np.array([0]), ground)
    for size in (1920, 1280, 1920):
        heights = calibrated_heights(ground, square, size)
        assert calibrated.estimate("far", size, 1080) == (heights.min(), heights.max(), "calibration")


def test_the_ring_written_as_slices_is_the_ring_written_item_by_item() -> None:
    """ObjectSizes writes a frame's heights into its ring as at most two slices: the same ring, to the
    bit, as writing each height at its place modulo the ring's length (the code before), for any
    count so far and any number of heights (none, a few, across the end, more than the ring holds)."""
    rng = np.random.default_rng(15)
    keep = 16
    sliced, itemwise = np.zeros(keep, np.float32), np.zeros(keep, np.float32)
    seen = 0
    for n in [0, 3, 13, 1, 15, 16, 17, 40, 0, *rng.integers(0, 20, 200).tolist()]:
        values = rng.random(n).astype(np.float32)
        new = values[-keep:]
        itemwise[(seen + np.arange(len(new))) % keep] = new
        after = ring_put(sliced, seen, values)
        assert after == seen + len(new)
        np.testing.assert_array_equal(sliced, itemwise)
        seen = after


WHOLE = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # the capacity farm's car park zone


def car_park(index: int = 0, **config: int) -> Planner:
    """A 720p camera's planner for the SSD, one zone over the whole picture (as the capacity farm's)."""
    card = load_card("default")
    return Planner.for_camera(RegionsConfig(**config), {"street": Zone("street", WHOLE)}, None, card, index)


def tiles_of(boxes: np.ndarray | None) -> set[tuple[int, ...]]:
    """The survey tiles among a frame's boxes (the whole frame left out)."""
    return set() if boxes is None else {tuple(b) for b in boxes.tolist() if b != [0, 0, 1280, 720]}


def test_a_survey_rolls_over_frames_a_few_tiles_at_a_time() -> None:
    """A whole survey put 16 inferences on one frame of every camera in turn (at capacity that frame's
    round made every camera late): rolled, a surveyed frame adds at most survey_tiles of the survey's
    tiles, one frame in survey_every, and a round of them covers what the whole survey covered, in a
    fixed order (a replay surveys alike)."""
    whole = tiles_of(car_park(survey_tiles=0).boxes(1280, 720))
    assert len(whole) == 15  # what a whole survey looked at on one frame
    runs = []
    for _ in range(2):
        planner, looked = car_park(), []
        for frame in range(1, 601):
            boxes = planner.boxes(1280, 720)
            if boxes is not None:
                looked.append((frame, tiles_of(boxes)))
                assert len(boxes) <= 1 + RegionsConfig().survey_tiles  # the whole frame and 2 tiles
            planner.observe(Detections.empty(), 1280, 720)
        runs.append(looked)
    assert runs[0] == runs[1]  # the same frames get the same tiles
    frames = [frame for frame, _ in runs[0]]
    # a round of 8 frames 25 apart (2 tiles each, 1 in the last) looks at every tile once; nobody
    # found, the next round's frames are 50 apart
    assert frames[:8] == [1 + 25 * i for i in range(8)] and frames[8:11] == [226, 276, 326]
    first = [tiles for _, tiles in runs[0][:8]]
    assert set().union(*first) == whole and sum(map(len, first)) == len(whole)
    assert [tiles for _, tiles in runs[0][8:16]] == first  # the next round: the same tiles, in order


def test_surveys_of_many_cameras_add_a_bounded_load_to_every_round() -> None:
    """40 cameras started together, a car park each that stays empty: no inference round gets more than
    survey_tiles per camera surveyed in it (staggered: 2 of 40 per round), where whole surveys put 15
    inferences per camera into those rounds."""
    rolled, whole = [], []
    for extra, config in ((rolled, {}), (whole, {"survey_tiles": 0})):
        planners = [car_park(i, **config) for i in range(40)]
        for _ in range(30):
            boxes = [planner.boxes(1280, 720) for planner in planners]
            extra.append(sum(len(b) - 1 for b in boxes if b is not None))
            for planner in planners:
                planner.observe(Detections.empty(), 1280, 720)
    assert max(rolled) == 2 * 2 and max(whole) == 2 * 15
    assert sum(rolled) < sum(whole) / 4


def test_a_restarted_camera_goes_on_with_its_surveys_where_they_were() -> None:
    """The gap and the round's progress are in the camera's snapshot: restarted, a car park that has
    backed off does not begin its rounds again at one survey in 25 frames, and the round goes on with
    the tiles not looked at yet, on the camera's staggered frame."""
    planner = car_park(3)
    for _ in range(300):  # a round of 8 frames 25 apart, then 2 of the next, 50 apart
        planner.boxes(1280, 720)
        planner.observe(Detections.empty(), 1280, 720)
    state = json.loads(json.dumps(planner.state()))
    assert state["survey"] == {"gap": 50, "next": 4}  # 4 of the round's 15 tiles looked at
    restored = car_park(3)
    restored.load(state)
    ahead, again = [], []
    for frame in range(1, 200):
        for planner_, out in ((planner, ahead), (restored, again)):
            boxes = planner_.boxes(1280, 720)
            if boxes is not None:
                out.append((frame, tiles_of(boxes)))
            planner_.observe(Detections.empty(), 1280, 720)
    assert [f for f, _ in again][:3] == [4, 54, 104]  # at its stagger (3 of 25), then 50 apart
    assert [t for _, t in again][:4] == [t for _, t in ahead][:4]  # the same tiles next, in the same order
