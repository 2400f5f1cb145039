"""The rules end to end on synthetic detections: the same analysis code as the pipeline, no video."""

from __future__ import annotations

import numpy as np

from vision.camera.analysis import CameraAnalysis
from vision.camera.unit import CameraUnit
from vision.config import EventsConfig, parse_config
from vision.events.lifecycle import Lifecycle
from vision.rules.subjects import Places
from vision.types import Detections, Frame

NAMES = {0: "person", 1: "bicycle", 3: "motorcycle", 43: "bottle", 46: "cup"}
IMAGE = np.zeros((480, 640, 3), np.uint8)
FPS = 5.0


def box(cx: float, bottom: float, w: float, h: float) -> list[float]:
    return [cx - w / 2, bottom - h, cx + w / 2, bottom]


def run(
    zones_yaml: str,
    frames: list[list[tuple[int, float, list[float]]]],
    close_after: float = 5.0,
    image: np.ndarray = IMAGE,
):
    """Feed one list of (class, score, box) per frame at FPS on frames of ``image``'s size; return
    (kind, subject, pts) transitions."""
    camera = parse_config(f"cameras:\n  c:\n    url: x.mp4\n    zones:\n{zones_yaml}").cameras["c"]
    analysis = CameraAnalysis("c", camera, NAMES, EventsConfig(close_after=close_after, update_interval=1e9))
    lifecycle = Lifecycle(analysis.timers)
    rng = np.random.default_rng(1)
    out = []
    for i, rows in enumerate(frames):
        pts = i / FPS
        xyxy = np.array([r[2] for r in rows], np.float32).reshape(-1, 4)
        xyxy += rng.normal(0, 1.5, xyxy.shape).astype(np.float32)  # a real detector's jitter
        dets = Detections.from_arrays(xyxy, np.array([r[1] for r in rows]), np.array([r[0] for r in rows]))
        _, observations = analysis.process(Frame("c", pts, image), dets)
        for obs in observations:
            out += [(t.kind, t.event["subject"], round(t.pts, 1)) for t in lifecycle.update(obs)]
    return out


def seconds(s: float) -> int:
    return round(s * FPS)


BANK = """\
      bank:
        polygon: [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]
        rules:
          fishing: {min_duration: 20, close_after: 5}
"""


def test_walker_on_the_path_is_no_angler_but_one_who_stays_is() -> None:
    frames = []
    for i in range(seconds(60)):
        t = i / FPS
        rows = [(0, 0.9, box(20 + 10 * t, 200, 40, 100))]  # walks along the path above the bank
        if 5 <= t < 45 and not 20 <= t < 22:  # an angler on the bank, fidgeting, hidden for 2 s at 20 s
            rows.append((0, 0.85, box(300 + 8 * np.sin(t), 400, 40, 100)))
        frames.append(rows)
    events = run(BANK, frames)
    kinds = [(k, s) for k, s, _ in events]
    assert kinds == [("open", kinds[0][1]), ("close", kinds[0][1])]
    opened, closed = events[0][2], events[1][2]
    # tracked from 5 s (+ min_hits); 20 s of dwell, with the 2 s occlusion paused, not counted, not reset
    assert 25.0 <= opened <= 28.0, events
    assert 52.5 <= closed <= 53.5, events  # left at 45 s: unknown while lost (3 s), then 5 s of absence


def test_stationary_only_ignores_a_pacing_person() -> None:
    zones = BANK.replace("close_after: 5}", "close_after: 5, stationary_only: true}")
    pacing = [[(0, 0.9, box(100 + 15 * (i / FPS % 20), 400, 40, 100))] for i in range(seconds(40))]
    assert run(zones, pacing) == []
    sitting = [[(0, 0.9, box(300, 400, 40, 100))] for _ in range(seconds(40))]
    assert [k for k, _, _ in run(zones, sitting)] == ["open"]


PAVEMENT = """\
      pavement:
        polygon: [[0.0, 0.4], [1.0, 0.4], [1.0, 1.0], [0.0, 1.0]]
        rules:
          bike_parking: {min_duration: 15, close_after: 5, allowed_zones: [rack]}
      rack:
        polygon: [[0.7, 0.4], [1.0, 0.4], [1.0, 1.0], [0.7, 1.0]]
"""


def test_bicycle_parked_on_the_pavement_but_not_one_in_the_rack_or_riding() -> None:
    frames = []
    for i in range(seconds(70)):
        t = i / FPS
        rows = [(1, 0.8, box(560, 420, 60, 40))]  # parked in the rack all along
        if t < 30:
            rows.append((1, 0.8, box(10 + 20 * t, 300, 60, 40)))  # ridden across the pavement
        if 10 <= t < 50 and not 30 <= t < 31:  # parked in the way; missed by the detector for 1 s
            rows.append((1, 0.75, box(200, 450, 60, 40)))
        frames.append(rows)
    events = run(PAVEMENT, frames)
    assert [k for k, _, _ in events] == ["open", "close"], events
    assert len({s for _, s, _ in events}) == 1
    # parked at 10 s: stationary after the tracker's 10 s, its episode dated from its rest, so the ticket
    # opens 15 s (min_duration) after it stopped, not 15 s after the flag (35 s)
    assert 25.0 <= events[0][2] <= 26.0, events
    assert 57.0 <= events[1][2] <= 59.0, events  # gone at 50 s: unknown while lost, then 5 s


def test_a_bicycle_stopped_at_a_light_or_walked_slowly_is_not_parked() -> None:
    """The episode counts from when the track came to rest, and only that: a stop at a light longer
    than the tracker's 10 s but shorter than min_duration (15 s) and a bicycle walked at a crawl get no
    ticket (dated from their first box, both would); one left standing opens 15 s after it stopped."""
    frames = []
    for i in range(seconds(60)):
        t = i / FPS
        rows = [(1, 0.8, box(20 + 4 * t, 460, 60, 40))]  # walked along the kerb at 4 px/s all along
        if t < 30:  # ridden in at 20 px/s, waits 11 s at the light at 10 s, rides on at 21 s
            rows.append((1, 0.8, box(10 + 20 * (min(t, 10) + max(t - 21, 0)), 300, 60, 40)))
        if t >= 5:  # left standing at 5 s
            rows.append((1, 0.75, box(400, 380, 60, 40)))
        frames.append(rows)
    events = run(PAVEMENT, frames)
    assert [k for k, _, _ in events] == ["open"], events
    assert 20.0 <= events[0][2] <= 21.0, events


def test_time_the_camera_was_dark_is_not_credited_to_a_parked_bicycle() -> None:
    """Dark for 2.4 s (shorter than the tracker's max_lost: the bicycle's track and its rest time go
    on): its episode is dated from the frame the camera came back, so the ticket opens 15 s after
    that (31.4 s), not 15 s after it stopped (25 s)."""
    zones = PAVEMENT.replace(", allowed_zones: [rack]", "")
    camera = parse_config(f"cameras:\n  c:\n    url: x.mp4\n    zones:\n{zones}").cameras["c"]
    unit = CameraUnit("c", camera, NAMES, EventsConfig(close_after=5.0, update_interval=1e9))
    parked = Detections.from_arrays(np.array([box(200, 450, 60, 40)]), np.array([0.8]), np.array([1]))
    opened = []
    for i in range(seconds(40)):
        pts = i / FPS
        if 14.0 <= pts < 16.4:
            opened += [t.pts for t in unit.unknown(pts) if t.kind == "open"]
            continue
        frame = unit.stamp(Frame("c", pts, IMAGE))
        opened += [t.pts for t in unit.process(frame, parked if pts >= 10 else Detections.empty())[1]]
    assert len(opened) == 1 and 31.4 <= opened[0] <= 32.0, opened


def test_allowed_zones_must_exist() -> None:
    import pytest

    from vision.config import ConfigError

    with pytest.raises(ConfigError) as info:
        parse_config(
            "cameras:\n  c:\n    url: x.mp4\n    zones:\n"
            + PAVEMENT.replace("allowed_zones: [rack]", "allowed_zones: [racks]")
        )
    assert info.value.problems == [
        "cameras.c: zones.pavement.rules.bike_parking: "
        "allowed_zones names no zone of this camera: racks (line 2)"
    ]


def test_bicycle_whose_box_jitters_across_the_zone_edge_keeps_its_ticket() -> None:
    zones = """\
      pavement:
        polygon: [[0.0, 0.4], [1.0, 0.4], [1.0, 0.9], [0.0, 0.9]]
        rules:
          bike_parking: {min_duration: 15, close_after: 5}
"""
    # parked with its wheels on the zone's lower edge (y = 432 px): the box bottom jumps 16 px
    frames = [[(1, 0.8, box(300, 432 + (8 if i % 2 else -8), 120, 80))] for i in range(seconds(40))]
    assert [k for k, _, _ in run(zones, frames)] == ["open"]


def test_a_far_person_who_steps_out_of_the_zone_is_out_at_his_own_scale() -> None:
    # a distant camera (1920x1080): people 24 px tall, a signpost zone 90x40 px (y 520-560)
    zones = """\
      sign:
        polygon: [[0.48, 0.4815], [0.5269, 0.4815], [0.5269, 0.5185], [0.48, 0.5185]]
        rules:
          fishing: {min_duration: 8, close_after: 3}
"""
    far = np.zeros((1080, 1920, 3), np.uint8)
    # in for 5 s, walks to 20 px (almost a body height) below the zone and back, in for 5 s more: two
    # stays of 6 s, no ticket; a margin of 3% of the frame (58 px) made it one stay of 16 s
    walk = [np.clip(min(i / FPS - 5, 11 - i / FPS) / 2, 0, 1) for i in range(seconds(16))]  # 2 s each way
    bottoms = [540 + 40 * share for share in walk]  # 540: the zone's middle; 580: 20 px below it
    assert run(zones, [[(0, 0.9, box(960, b, 10, 24))] for b in bottoms], image=far) == []
    # the same person standing on the zone's edge, his box's bottom jittering 4 px across it: one ticket
    edge = [[(0, 0.9, box(960, 560 + (4 if i % 2 else -4), 10, 24))] for i in range(seconds(13))]
    assert [k for k, _, _ in run(zones, edge, image=far)] == ["open"]


def test_rule_timers_come_from_the_zone_config() -> None:
    zones = BANK.replace("close_after: 5}", "close_after: 5, cooldown: 120}")
    camera = parse_config(f"cameras:\n  c:\n    url: x.mp4\n    zones:\n{zones}").cameras["c"]
    analysis = CameraAnalysis("c", camera, NAMES, EventsConfig(reopen_window=30))
    timers = analysis.timers[("c", "bank", "fishing")]
    assert (timers.min_duration, timers.close_after, timers.reopen_window, timers.cooldown) == (
        20,
        5,
        30,
        120,
    )


def test_a_tracked_subject_keeps_its_track_through_a_partial_box_and_older_state_loads() -> None:
    """Places keyed by track, then by place: a track's box cut to a third (someone in front) stays its
    subject; the same box without a track, against a place it overlaps too little, is a new place;
    a snapshot written before subjects kept tracks loads with none."""
    places = Places("vehicle", 0.3, 60.0)
    whole, partial = (
        np.array([[300, 220, 650, 450]], np.float32),
        np.array([[310, 229, 422, 421]], np.float32),
    )
    assert places.assign(whole, 0.0, np.array([6])) == {"vehicle-1": [0]}
    assert places.assign(partial, 0.2, np.array([6])) == {"vehicle-1": [0]}
    assert places.assign(whole, 0.4, np.array([6])) == {"vehicle-1": [0]}
    assert places.assign(partial, 0.6) == {"vehicle-2": [0]}  # no track: by place alone
    older = {"counter": 1, "subjects": [["vehicle-1", [300.0, 220.0, 650.0, 450.0], 3.0]]}
    places.load(older)
    assert places.subjects[0].track == -1 and places.state()["subjects"][0][3] == -1
