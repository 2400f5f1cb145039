"""The motion gate on real footage: the plaza's walkers always get through, a still picture is detected
only once per max_skip, and a gate that is off lets every frame through. A frame it holds is still
analysed: the camera unit and the tracker keep what the last detection showed, and absence counts only
on frames really detected."""

from __future__ import annotations

import gc
import shutil
import subprocess
from collections.abc import Callable
from io import StringIO
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml
from av.sidedata.sidedata import SideDataContainer
from av.video.frame import PictureType

from vision.camera.unit import CameraUnit
from vision.config import EventsConfig, parse_config
from vision.detect.detector import Detector
from vision.evaluate.progress import Progress
from vision.evaluate.replay import Replay, replay
from vision.evaluate.truth import GroundTruth, load_truth
from vision.ingest.reader import CameraReader
from vision.ingest.vectors import VectorMotion, block_motion, export_vectors
from vision.pipeline import Pipeline
from vision.scene.motion import MotionGate, MotionGateConfig, bgr_picture
from vision.store import Store
from vision.track import Tracker
from vision.track.config import TrackerConfig
from vision.types import Detections, Frame

from .conftest import SAMPLE, need

CROSSING = np.array(
    [[0.0, 0.33], [0.55, 0.33], [0.95, 0.25], [1.0, 0.45], [1.0, 0.85], [0.55, 0.62], [0.0, 0.5]]
)
ON = MotionGateConfig(enabled=True, max_skip=1.0)


def frames(count: int, step: int = 2) -> list[tuple[float, np.ndarray]]:
    """``count`` frames of the sample at 5 fps (every ``step``-th of its 10), with their pts."""
    out = []
    with av.open(str(SAMPLE)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % step == 0:
                out.append((float(frame.time), frame.to_ndarray(format="bgr24")))
            if len(out) == count:
                break
    return out


def test_people_walking_in_the_zone_always_get_through() -> None:
    gate = MotionGate(ON, [CROSSING], 0.2)
    clip = frames(50)
    assert [pts for pts, image in clip if not gate.due(image, pts)] == []
    assert gate.skipped == 0


def test_a_still_picture_is_detected_once_per_max_skip() -> None:
    pts0, image = frames(1)[0]
    gate = MotionGate(ON, [CROSSING], 0.2)
    times = [pts0 + 0.2 * i for i in range(16)]  # 3 s of the same real frame at 5 fps
    detected = [t for t in times if gate.due(image.copy(), t)]
    assert np.allclose(detected, [pts0, pts0 + 1.0, pts0 + 2.0, pts0 + 3.0])
    assert gate.skipped == len(times) - len(detected)
    # a new zone is compared from its next frame on: that frame is detected
    gate.reconfigure([CROSSING * 0.5])
    assert gate.due(image, times[-1] + 0.2)


def test_keyframes_2_s_apart_are_held_up_to_two_in_a_row_by_default() -> None:
    """A keyframes-only camera at 0.5 detections/s hands the gate a frame every 2 s: max_skip unset is
    2.25 intervals there (4.5 s), so a still picture is detected every third keyframe; unset at 5/s it
    is 1 s; a max_skip set no longer than the interval holds nothing
    (benchmarks/motion_gate_keyframes.md)."""
    pts0, image = frames(1)[0]
    times = [pts0 + 2.0 * i for i in range(7)]
    default = MotionGate(MotionGateConfig(), [CROSSING], 2.0)
    assert default.max_skip == 4.5 and MotionGate(MotionGateConfig(), [CROSSING], 0.2).max_skip == 1.0
    assert [i for i, t in enumerate(times) if default.due(image.copy(), t)] == [0, 3, 6]
    short = MotionGate(MotionGateConfig(max_skip=2.0), [CROSSING], 2.0)
    assert all(short.due(image.copy(), t) for t in times) and short.skipped == 0


def test_a_grainy_still_picture_is_held_and_its_picture_is_block_means() -> None:
    """Sensor grain (independent noise of 12 grey levels a channel on every frame) does not count as
    motion: each pixel of the gate's picture is the mean of a 5x5 block of the 768 px frame, which
    averages it out (a bilinear shrink, sampling a few pixels of each block, would let it through)."""
    pts0, image = frames(1)[0]
    gate = MotionGate(ON, [CROSSING], 0.2)
    rng = np.random.default_rng(0)
    grainy = [np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8) for _ in range(10)]
    detected = [i for i, frame in enumerate(grainy) if gate.due(frame, pts0 + 0.2 * i)]
    assert detected == [0, 5]  # the first, then once per max_skip
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[: 115 * 5, : 153 * 5].astype(np.float64)
    means = grey.reshape(115, 5, 153, 5).mean(axis=(1, 3))
    assert np.abs(bgr_picture(image, ON.width) - means).max() <= 1.0  # rounding only


def test_a_gate_that_is_off_lets_every_frame_through() -> None:
    pts0, image = frames(1)[0]
    gate = MotionGate(MotionGateConfig(enabled=False), [CROSSING], 0.2)
    assert all(gate.due(image, pts0 + 0.2 * i) for i in range(10)) and gate.skipped == 0


# -- frames the gate holds: the unit and the tracker -------------------------------------------------

BIKE_NAMES = {0: "person", 1: "bicycle", 2: "motorcycle"}
LAWN = [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]
BIKE_BOX = [100.0, 150.0, 160.0, 190.0]  # bottom centre on the lawn of a 200x200 frame


def one_box(present: bool) -> Detections:
    """The one box of class 1 (a bicycle, or a bottle) on the lawn, or nothing."""
    if not present:
        return Detections.empty()
    return Detections.from_arrays(np.array([BIKE_BOX], np.float32), np.array([0.9]), np.array([1]))


def bike_unit() -> CameraUnit:
    rule = "bike_parking: {min_duration: 4, close_after: 3}"  # a track counts after 3 boxes (inertia)
    camera = parse_config(
        f"cameras: {{cam: {{url: x.mp4, tracker: {{stationary_time: 1}}, "
        f"zones: {{lawn: {{polygon: {LAWN}, rules: {{{rule}}}}}}}}}}}"
    ).cameras["cam"]
    return CameraUnit("cam", camera, BIKE_NAMES, EventsConfig(update_interval=1e9))


def parked(i: int) -> bool:
    """Frame ``i`` (5 a second) shows the bicycle: parked from 1 s to 25.2 s, but the detector misses it
    on the frame at 18 s."""
    return 5 <= i < 126 and i != 90


def looked(i: int) -> bool:
    """The gate sends frame ``i`` to the detector: once a second (its max_skip), and where the bicycle
    arrives and leaves (motion)."""
    return i % 5 == 0 or i in (5, 126)


def bike_run(found: Callable[[int], Detections | None]) -> list[tuple[str, float]]:
    """Frames 5 a second to 33 s through a camera unit, ``found(i)`` their detections (None: held)."""
    unit, out = bike_unit(), []
    image = np.zeros((200, 200, 3), np.uint8)
    for i in range(165):
        _, transitions = unit.process(Frame("cam", round(i * 0.2, 1), image), found(i))
        out += [(t.kind, round(t.pts, 1)) for t in transitions]
    return out


def test_a_held_frame_carries_the_last_detected_verdict_as_if_its_detection_were_repeated() -> None:
    """Held frames (None) give exactly the tickets of every frame detected by a detector that finds on
    a still frame what it found on the last one looked at: presence and absence both go on over them.
    The bicycle arrives at 1 s: its track has the rule's 3 boxes (inertia) on held frames and is flagged
    at rest 1 s later (stationary_time); its episode is dated from when it came to rest, so the ticket
    opens 4 s (min_duration) after it arrived, at 5 s; its miss at 18 s is carried until 18.8 s (too short
    to close anything); it leaves at 25.2 s, its lost track is dropped 3 s later (max_lost) and 3 s of
    absence (close_after) close the ticket at 31.2 s, on a held frame, not at the next detection (32 s)."""
    last = [max(j for j in range(i + 1) if looked(j)) for i in range(165)]
    repeated = bike_run(lambda i: one_box(parked(last[i])))
    gated = bike_run(lambda i: one_box(parked(i)) if looked(i) else None)
    assert gated == repeated == [("open", 5.0), ("close", 31.2)]
    # against a detector looking at every frame: the same tickets within one detection interval (1 s)
    every = bike_run(lambda i: one_box(parked(i)))
    assert [kind for kind, _ in every] == ["open", "close"]
    assert all(abs(a[1] - b[1]) <= 1.0 for a, b in zip(every, gated, strict=True))


def test_a_track_at_rest_keeps_its_detection_against_a_track_born_of_a_partial_box() -> None:
    """A passer-by splits a parked bicycle's box: a second track starts on its left half while the
    bicycle's own track follows the right half for a moment; when the whole box comes back it
    belongs to the bicycle at rest, not to the newcomer whose half it overlaps more."""
    tracker = Tracker(TrackerConfig(stationary_time=2.0))
    whole, shifted = [100, 100, 200, 160], [97, 100, 197, 160]
    left, right = [100, 100, 150, 160], [150, 100, 200, 160]
    pts = 0.0

    def update(boxes: list[list[int]], scores: list[float]) -> np.ndarray:
        nonlocal pts
        found = Detections.from_arrays(np.array(boxes, np.float32), np.array(scores), np.ones(len(boxes)))
        pts += 0.2
        return tracker.update(found, pts).track_id

    for _ in range(15):  # 3 s at rest
        parked = update([whole], [0.9])[0]
    for boxes in [[shifted, left]] * 2 + [[right, left]] * 3:
        update(boxes, [0.9, 0.7])
    assert len(tracker.tracks()) == 2
    assert update([whole], [0.9])[0] == parked


# -- motion from the codec's motion vectors ------------------------------------------------------------


@pytest.fixture(scope="module")
def box_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s of a real still frame of the plaza, H.264 at 10 fps with a keyframe every 2 s (and B-frames),
    a white box crossing the zone from 2 s on."""
    if shutil.which("ffmpeg") is None:
        need("the ffmpeg CLI is missing (apt-get install ffmpeg)")
    folder = tmp_path_factory.mktemp("vectors")
    still, clip = folder / "still.png", folder / "clip.mp4"
    cv2.imwrite(str(still), frames(1)[0][1])
    overlay = "[0][1]overlay=x='if(gte(t,2),150+(t-2)*150,-100)':y=250,trim=duration=4"
    command = ["ffmpeg", "-v", "error", "-loop", "1", "-i", str(still), "-f", "lavfi", "-i"]
    command += ["color=white:s=60x120", "-filter_complex", overlay, "-t", "4", "-r", "10", "-c:v", "libx264"]
    subprocess.run([*command, "-g", "20", "-pix_fmt", "yuv420p", "-y", str(clip)], check=True, timeout=60)
    return clip


def read(clip: Path, gate: dict[str, object], threads: int | None = None) -> list[Frame]:
    """Every frame the real reader hands over at 5 fps, with the gate's settings (and decoder threads)."""
    entry: dict[str, object] = {"url": str(clip), "detect_fps": 5, "motion_gate": gate}
    if threads is not None:
        entry["decode"] = {"threads": threads}
    camera = parse_config(yaml.safe_dump({"cameras": {"cam": entry}})).cameras["cam"]
    reader = CameraReader("cam", camera).start()
    out = []
    while not reader.done:
        frame = reader.take(5.0)
        if frame is not None:
            out.append(frame)
    return out


def test_the_reader_hands_over_what_the_codec_says_moved_between_its_frames(box_clip: Path) -> None:
    clip = read(box_clip, {"enabled": True})
    assert len(clip) == 20
    known = [frame for frame in clip if frame.motion is not None]
    # the first frame has none before it, and every 2 s a keyframe has no vectors: the rest have sums
    assert [round(f.pts, 1) for f in clip if f.motion is None] == [0.0, 2.0]
    assert all(f.motion.since == clip[i - 1].pts for i, f in enumerate(clip) if f.motion is not None)
    rows, cols = known[0].motion.grid.shape
    assert (rows, cols) == (36, 48)  # 16-pixel blocks of 768x576
    still = [f for f in known if f.pts < 2.0]
    assert max(float(np.mean(f.motion.grid >= 2.0)) for f in still) < 0.002  # nothing moves
    moving = [f for f in known if f.pts > 2.1]
    assert all((f.motion.grid >= 2.0).sum() >= 4 for f in moving)  # the box's blocks, every frame
    # a gate that is off asks for no vectors at all
    assert all(frame.motion is None for frame in read(box_clip, {"enabled": False}))


def test_a_frame_is_freed_when_dropped_not_left_to_the_collector(box_clip: Path) -> None:
    """PyAV's ``frame.side_data`` ties the frame into a reference cycle: a frame whose vectors were read
    that way was freed, with its picture, only by the cyclic collector (keyframes-only cameras and
    cameras decoding every frame left hundreds of MB to it). No frame, key or not, is left to it now,
    and the vectors read are the ones ``frame.side_data`` gives."""
    motion, keys, grids = VectorMotion(), 0, []
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds unreachable stays in gc.garbage to look at
    try:
        with av.open(str(box_clip)) as container:
            stream = container.streams.video[0]
            export_vectors(stream)
            for frame in container.decode(stream):
                keys += frame.pict_type == PictureType.I
                motion.add(frame, 0)
                grids.append(motion.take(float(frame.pts)))
        gc.collect()
        cycled = [o for o in gc.garbage if isinstance(o, av.VideoFrame)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert keys == 2  # at 0 s and 2 s
    assert not cycled
    with av.open(str(box_clip)) as container:  # the vectors as PyAV's own frame.side_data gives them
        stream = container.streams.video[0]
        export_vectors(stream)
        frames = list(container.decode(stream))
    sides = [f.side_data.get("MOTION_VECTORS") if f.pict_type != PictureType.I else None for f in frames]
    assert sum(side is not None for side in sides) == len(frames) - keys
    for grid, frame, side in zip(grids[1:], frames[1:], sides[1:], strict=True):
        expected = None if side is None else block_motion(side.to_ndarray(), frame.width, frame.height)
        assert (grid is None) == (expected is None)
        if grid is not None:
            np.testing.assert_array_equal(grid.grid, expected)


def numpy_block_motion(vectors: np.ndarray, width: int, height: int) -> np.ndarray:
    """The numpy version of block_motion, before its compiled pass (vision/ingest/motion_kernel.py):
    what the kernel must give, block for block."""
    rows, cols = -(-height // 16), -(-width // 16)
    x = np.clip(vectors["dst_x"], 0, width - 1) // 16
    y = np.clip(vectors["dst_y"], 0, height - 1) // 16
    index = y.astype(np.intp) * cols + x
    area = vectors["w"].astype(np.float32) * vectors["h"]
    moved = np.hypot(vectors["motion_x"], vectors["motion_y"]).astype(np.float32) / np.maximum(
        vectors["motion_scale"], 1
    )
    cover = np.bincount(index, area, rows * cols)
    grid = np.bincount(index, area * moved, rows * cols) / np.maximum(cover, 1.0)
    grid[cover < 0.5 * 16 * 16] = np.inf
    return grid.astype(np.float32).reshape(rows, cols)


def test_the_compiled_block_motion_gives_the_numpy_grid_block_for_block() -> None:
    """On the sample's real vectors (people walking) and on vectors a decoder should not give but a stream
    may carry (landing outside the picture, a scale of 0, none at all; a picture that is not whole
    blocks), every block's value is the numpy version's, bit for bit."""
    compared = moving = 0
    with av.open(str(SAMPLE)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"
        export_vectors(stream)
        for frame in container.decode(stream):
            # not frame.side_data: a reference cycle, frames left to the collector (the test above)
            side = (
                SideDataContainer(frame).get("MOTION_VECTORS") if frame.pict_type != PictureType.I else None
            )
            if side is None:
                continue
            vectors = side.to_ndarray()
            grid = block_motion(vectors, frame.width, frame.height)
            np.testing.assert_array_equal(grid, numpy_block_motion(vectors, frame.width, frame.height))
            compared += 1
            moving += bool(np.any(np.isfinite(grid) & (grid > 1)))
            if compared == 60:
                break
    assert compared == 60 and moving > 30  # real motion compared, not only still blocks
    rng = np.random.default_rng(7)
    odd = np.zeros(500, vectors.dtype)
    odd["dst_x"] = rng.integers(-200, 900, 500)  # past both edges of a 650x370 picture
    odd["dst_y"] = rng.integers(-200, 600, 500)
    odd["w"], odd["h"] = rng.choice([4, 8, 16], 500), rng.choice([4, 8, 16], 500)
    odd["motion_x"], odd["motion_y"] = rng.integers(-300, 300, 500), rng.integers(-300, 300, 500)
    odd["motion_scale"] = rng.choice([0, 1, 2, 4], 500)
    for width, height, part in ((650, 370, odd), (650, 370, odd[:0]), (16, 16, odd[:3])):
        np.testing.assert_array_equal(
            block_motion(part, width, height), numpy_block_motion(part, width, height)
        )


def test_vectors_cover_their_own_frame_whatever_the_decoder_threads(box_clip: Path) -> None:
    """With frame threads FFmpeg sometimes exported vectors that did not cover their frame: a still
    frame showed 28-94% of its blocks moving at 8 threads (1-2 of 9 still frames, most reads), and at
    the default 2 under load. A decoder that exports vectors decodes with slice threads."""
    for _ in range(3):
        clip = read(box_clip, {"enabled": True}, threads=8)
        still = [f for f in clip if f.motion is not None and f.pts < 2.0]
        assert len(still) == 9
        assert max(float(np.mean(f.motion.grid >= 2.0)) for f in still) < 0.002


def test_the_gate_skips_a_still_zone_on_the_vectors_word_and_sees_the_box_cross_it(box_clip: Path) -> None:
    clip = read(box_clip, {"enabled": True})
    by_vectors, by_pixels = MotionGate(ON, [CROSSING], 0.2), MotionGate(ON, [CROSSING], 0.2)
    due = [round(f.pts, 1) for f in clip if by_vectors.due(f.image, f.pts, f.motion, f.picture)]
    assert due == [round(f.pts, 1) for f in clip if by_pixels.due(f.image, f.pts)]  # the same verdicts
    assert [t for t in due if t < 2.0] == [0.0, 1.0]  # the still half: detected once per max_skip
    assert [t for t in due if t >= 2.2] == [round(f.pts, 1) for f in clip if f.pts >= 2.2]  # the box
    # most still frames are skipped on the vectors' word alone; the pixels settle the few where
    # encoder noise moved a block or two
    assert by_vectors.skipped == by_pixels.skipped and by_vectors.by_vectors > by_vectors.skipped / 2
    assert by_pixels.by_vectors == 0


def test_the_reader_builds_the_gates_picture_from_the_luma_as_the_gate_would_from_bgr(box_clip: Path) -> None:
    """The picture the reader hands over with each frame (from the decoder's limited-range luma plane,
    off the inference thread) is the one the gate makes of the frame's BGR pixels, within rounding
    of the colour conversions; a camera whose gate is off gets none, and a gate whose width is set
    gets pictures of that width."""
    clip = read(box_clip, {"enabled": True})
    for frame in clip:
        assert frame.picture is not None and frame.picture.shape == (115, 153)
        difference = np.abs(frame.picture.astype(int) - bgr_picture(frame.image, ON.width))
        assert difference.max() <= 4 and difference.mean() < 1.5
    assert all(frame.picture is None for frame in read(box_clip, {"enabled": False}))
    assert read(box_clip, {"enabled": True, "width": 80})[0].picture.shape == (57, 76)


def test_frames_held_or_not_stored_open_no_store_transaction(
    box_clip: Path, detector: Detector, tmp_path: Path
) -> None:
    """The whole pipeline on the clip, its gate on, no boxes kept (detection_interval null): every frame
    is analysed and reported done, held ones included, yet the store takes one transaction in the run,
    its first checkpoint, not one per batch of frames that have nothing to write."""
    camera = {"url": str(box_clip), "detect_fps": 5, "motion_gate": {"enabled": True, "max_skip": 1.0}}
    camera["zones"] = {"crossing": {"polygon": CROSSING.tolist()}}
    storage = {"data_dir": str(tmp_path), "detection_interval": None}
    config = parse_config(yaml.safe_dump({"cameras": {"cam": camera}, "storage": storage}))
    done: list[float] = []
    store = Store(tmp_path)
    try:
        pipeline = Pipeline(config, detector, store, on_detections=lambda frame, _: done.append(frame.pts))
        stats = pipeline.run().cameras["cam"]
    finally:
        store.close()
    assert stats.frames_held >= 5 and stats.frames_detected + stats.frames_held == len(done) == 20
    assert pipeline.writer.transactions == 1


# -- a keyframes-only rate on real video: the sample's bicycle ---------------------------------------


@pytest.fixture(scope="module")
def bike_parking() -> tuple[GroundTruth, Detector]:
    """The sample suite's bicycle on the lawn and its own detector (the suite's settings)."""
    truth = load_truth(SAMPLE.parent / "bike_parking.truth.yaml")
    return truth, Detector.from_config(truth.detector, cameras=1)


def sparse(bike_parking: tuple[GroundTruth, Detector], gate: MotionGateConfig) -> Replay:
    """The bicycle clip at 0.5 detections/s (a frame every 2 s, as a keyframes-only camera gets them)."""
    truth, detector = bike_parking
    camera = truth.camera.model_copy(update={"detect_fps": 0.5, "motion_gate": gate})
    return replay(
        "bike_parking", truth.model_copy(update={"camera": camera}), detector, None, Progress(StringIO())
    )


def test_at_half_a_detection_a_second_the_gate_holds_still_lawns_and_keeps_the_tickets(
    bike_parking: tuple[GroundTruth, Detector],
) -> None:
    """Gate on at its defaults (max_skip unset: 4.5 s at frames 2 s apart): it holds about half of the
    frames (the lawn is still between the passer-by's visits) and the ticket opens and closes within
    one detection interval of the gate off's (before held frames carried the last verdict, it opened
    2 s later and did not close within the clip)."""
    off = sparse(bike_parking, MotionGateConfig(enabled=False))
    gated = sparse(bike_parking, MotionGateConfig())
    assert off.held == 0 and gated.held >= 5 and gated.frames + gated.held == off.frames
    assert [(t.type, t.zone) for t in off.tickets] == [("bike_parking", "lawn")]
    assert [(t.type, t.zone) for t in gated.tickets] == [("bike_parking", "lawn")]
    (a,), (b,) = off.tickets, gated.tickets
    assert a.resolved_at is not None and b.resolved_at is not None
    assert abs(a.opened_at - b.opened_at) <= 2.0 and abs(a.resolved_at - b.resolved_at) <= 2.0
