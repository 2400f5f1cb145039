"""The tracker on synthetic scenes: numpy boxes and timestamps, no video and no clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields

import numpy as np
import pytest
from pydantic import ValidationError

from vision.config import ConfigError, parse_config
from vision.track import Tracker, TrackerConfig
from vision.types import Detections

PERSON, BICYCLE = 0, 1


def boxes(*rows: tuple[float, ...]) -> Detections:
    """Detections from (x1, y1, x2, y2[, score[, class_id]]) rows; score 0.9 and person by default."""
    full = [(*r[:4], r[4] if len(r) > 4 else 0.9, r[5] if len(r) > 5 else PERSON) for r in rows]
    if not full:
        return Detections.empty()
    arr = np.array(full, np.float64)
    return Detections.from_arrays(arr[:, :4], arr[:, 4], arr[:, 5])


def walker(x0: float, y: float, speed: float, t: float, w: float = 40, h: float = 100) -> tuple[float, ...]:
    x = x0 + speed * t
    return (x, y, x + w, y + h)


def test_new_boxes_get_ids_after_min_hits_and_keep_their_order() -> None:
    tracker = Tracker(TrackerConfig(min_hits=2))
    first = tracker.update(boxes((10, 10, 50, 110), (300, 40, 340, 140)), 0.0)
    assert first.track_id.tolist() == [-1, -1]  # tentative: one frame is not yet a track
    assert len(tracker.tracks()) == 0
    second = tracker.update(boxes((302, 41, 342, 141), (12, 10, 52, 110)), 0.2)
    assert sorted(second.track_id.tolist()) == [0, 1]
    assert second.xyxy[0, 0] == 302 and second.track_id.dtype == np.int64  # same order and boxes as given
    table = tracker.tracks()
    assert table.first_seen.tolist() == [0.0, 0.0] and table.hits.tolist() == [2, 2]


def test_a_one_frame_false_positive_never_becomes_a_track() -> None:
    tracker = Tracker(TrackerConfig())
    tracker.update(boxes((500, 500, 540, 600)), 0.0)
    out = tracker.update(boxes(), 0.2)
    assert len(out) == 0 and len(tracker.tracks()) == 0
    again = tracker.update(boxes((500, 500, 540, 600)), 0.4)  # a new tentative track, not a revived one
    assert again.track_id.tolist() == [-1]


def test_crossing_walkers_keep_their_ids() -> None:
    """Two people cross in opposite directions, one hidden by the other for two frames at the crossing."""
    rng = np.random.default_rng(1)
    tracker = Tracker(TrackerConfig())
    ids: dict[str, set[int]] = {"east": set(), "west": set()}
    for k in range(45):
        t = k * 0.2
        east = np.add(walker(50, 100, 60, t), rng.normal(0, 1.5, 4))
        west = np.add(walker(560, 125, -60, t), rng.normal(0, 1.5, 4))
        hidden = k in (21, 22)  # they overlap around t = 4.25 s
        out = tracker.update(boxes(tuple(east)) if hidden else boxes(tuple(east), tuple(west)), t)
        if k >= 1:
            ids["east"].add(int(out.track_id[0]))
            if not hidden:
                ids["west"].add(int(out.track_id[1]))
    assert len(ids["east"]) == 1 and len(ids["west"]) == 1
    assert ids["east"] != ids["west"] and -1 not in ids["east"] | ids["west"]


def test_occlusion_shorter_than_max_lost_keeps_id_first_seen_and_rest_time() -> None:
    tracker = Tracker(TrackerConfig(max_lost=3.0, stationary_time=2.0))
    for k in range(15):  # a person standing still for 3 s
        tracker.update(boxes((200, 100, 240, 200)), k * 0.2)
    before = tracker.tracks()
    assert before.stationary.tolist() == [True]
    for k in range(15, 27):  # hidden by a passing van for 2.4 s
        tracker.update(boxes(), k * 0.2)
        table = tracker.tracks()
        assert table.lost.tolist() == [True] and table.streak.tolist() == [0]
    out = tracker.update(boxes((201, 101, 241, 201)), 27 * 0.2)
    table = tracker.tracks()
    assert out.track_id.tolist() == before.track_id.tolist()
    assert table.first_seen.tolist() == [0.0] and table.stationary_since.tolist() == [0.0]
    assert table.stationary.tolist() == [True] and table.stationary_seconds[0] == pytest.approx(5.4)


def test_walker_hidden_while_walking_is_found_where_it_went() -> None:
    """The Kalman prediction carries a briefly lost walker on, so it is matched past the occluder."""
    tracker = Tracker(TrackerConfig(max_lost=3.0, match_iou=0.3, lost_motion=1.0))
    for k in range(10):
        tracker.update(boxes(walker(0, 100, 50, k * 0.2)), k * 0.2)
    track = tracker.tracks().track_id.tolist()
    for k in range(10, 14):  # 0.8 s behind a van: 50 px on, past half its last box
        tracker.update(boxes(), k * 0.2)
        assert tracker.tracks().predicted[0, 0] == pytest.approx(90 + 50 * (k * 0.2 - 1.8), abs=5)
    out = tracker.update(boxes(walker(0, 100, 50, 2.8)), 2.8)
    assert out.track_id.tolist() == track


def test_a_lost_track_stops_moving_lost_motion_after_it_was_last_seen() -> None:
    """A still person whose box drifted as something came to hide him (velocity from partial boxes),
    and a walker lost for long: their predictions move lost_motion seconds, then hold, instead of
    running on (on vtest a track lost 2.6 s was predicted 160 px from where it was last seen)."""
    for speed in (20.0, 60.0):
        tracker = Tracker(TrackerConfig(max_lost=3.0, lost_motion=1.0))
        for k in range(10):
            tracker.update(boxes(walker(0, 100, speed, k * 0.2)), k * 0.2)
        last = tracker.tracks().box[0, 0]
        moved = []
        for k in range(10, 23):  # lost for 2.6 s
            tracker.update(boxes(), k * 0.2)
            moved.append(float(tracker.tracks().predicted[0, 0] - last))
        assert moved[4] == pytest.approx(speed * 1.0, rel=0.1)  # 1 s lost: on at its speed
        assert moved[-1] == moved[4]  # 1-2.6 s lost: held where it was at 1 s
    held = Tracker(TrackerConfig(lost_motion=0.0))
    for k in range(10):
        held.update(boxes(walker(0, 100, 60, k * 0.2)), k * 0.2)
    held.update(boxes(), 2.0)  # the frame it is first missed on: predicted on (it was seen on the one before)
    first = held.tracks().predicted[0].copy()
    held.update(boxes(), 2.6)
    np.testing.assert_array_equal(held.tracks().predicted[0], first)  # 0: held from there


def test_walker_that_stops_while_hidden_is_found_where_it_stopped() -> None:
    """A lost track also matches at its last box: people often stop behind what hides them."""
    tracker = Tracker(TrackerConfig(max_lost=3.0, match_iou=0.3))
    for k in range(10):
        tracker.update(boxes(walker(0, 100, 50, k * 0.2)), k * 0.2)
    track = tracker.tracks().track_id.tolist()
    for k in range(10, 20):  # hidden for 2 s; its prediction walks on 100 px, but it stood still
        tracker.update(boxes(), k * 0.2)
    out = tracker.update(boxes(walker(0, 100, 50, 1.9)), 4.0)
    assert out.track_id.tolist() == track


def test_occlusion_longer_than_max_lost_gives_a_new_id() -> None:
    tracker = Tracker(TrackerConfig(max_lost=3.0))
    for k in range(5):
        tracker.update(boxes((200, 100, 240, 200)), k * 0.2)
    old = tracker.tracks().track_id.tolist()
    tracker.update(boxes(), 3.5)  # 2.7 s unseen: still kept
    assert tracker.tracks().track_id.tolist() == old
    tracker.update(boxes(), 3.9)  # 3.1 s unseen: expired
    assert len(tracker.tracks()) == 0
    assert tracker.update(boxes((200, 100, 240, 200)), 4.1).track_id.tolist() == [-1]
    new = tracker.update(boxes((200, 100, 240, 200)), 4.3).track_id.tolist()
    assert new != old and new[0] >= 0
    assert tracker.tracks().first_seen.tolist() == [pytest.approx(4.1)]


def parking(tracker: Tracker, jitter: float = 0.0, seed: int = 0) -> Iterator[tuple[float, Detections]]:
    """A bicycle rides in for 2 s at 5 fps, then stands for 20 s; yields (pts, output) per frame."""
    rng = np.random.default_rng(seed)
    for k in range(110):
        t = k * 0.2
        x = 100 + 80 * min(t, 2.0)
        box = np.array([x, 300, x + 60, 340]) + rng.uniform(-jitter, jitter, 4)
        yield t, tracker.update(boxes((*box, 0.8, BICYCLE)), t)


def test_parked_bicycle_turns_stationary_after_the_window() -> None:
    tracker = Tracker(TrackerConfig(stationary_time=10.0))
    flags = []
    for t, out in parking(tracker):
        table = tracker.tracks()
        rows = table.rows(out.track_id)
        if rows[0] >= 0:
            flags.append((t, bool(table.stationary[rows[0]]), float(table.stationary_seconds[rows[0]])))
    moving = [f for f in flags if f[0] < 2.0]
    assert not any(s for _, s, _ in moving)
    parked = tracker.tracks()
    assert parked.class_id.tolist() == [BICYCLE]
    assert 2.0 <= parked.stationary_since[0] <= 2.0 + 0.2 + 1.0  # at rest since it stopped (within move_time)
    on = [t for t, s, _ in flags if s]
    assert on[0] == pytest.approx(parked.stationary_since[0] + 10.0, abs=0.21)
    assert all(s for t, s, _ in flags if t >= on[0])
    seconds = [sec for t, s, sec in flags if s]
    assert seconds == sorted(seconds) and seconds[-1] == pytest.approx(21.8 - parked.stationary_since[0])


def test_jittery_boxes_on_a_still_bicycle_still_count_as_stationary() -> None:
    tracker = Tracker(TrackerConfig(stationary_time=10.0))
    list(parking(tracker, jitter=5.0))  # +-5 px on a 60 x 40 box: IoU with its resting box stays above 0.6
    table = tracker.tracks()
    assert len(table) == 1 and table.stationary.tolist() == [True]
    assert table.stationary_seconds[0] > 15.0


def test_bicycle_leaving_is_no_longer_stationary() -> None:
    tracker = Tracker(TrackerConfig(stationary_time=10.0, move_time=1.0))
    list(parking(tracker))
    track = tracker.tracks().track_id.tolist()
    states = []
    for k in range(110, 125):  # it rides away at 80 px/s
        t = k * 0.2
        x = 260 + 80 * (t - 21.8)
        tracker.update(boxes((x, 300, x + 60, 340, 0.8, BICYCLE)), t)
        table = tracker.tracks()
        states.append((t, bool(table.stationary[0])))
    assert tracker.tracks().track_id.tolist() == track  # the same bicycle, now moving
    leaving = [t for t, s in states if not s]
    assert leaving and leaving[0] <= 22.0 + 1.0 + 0.2 + 1e-6  # off once it left its spot for move_time
    assert tracker.tracks().stationary_seconds[0] < 2.0


def test_a_passer_by_hiding_part_of_a_parked_bicycle_does_not_restart_its_rest() -> None:
    tracker = Tracker(TrackerConfig(stationary_time=10.0, move_time=1.0))
    list(parking(tracker))
    since = tracker.tracks().stationary_since.tolist()
    for k in range(110, 113):  # 0.6 s of a half-hidden box
        tracker.update(boxes((260, 300, 290, 340, 0.8, BICYCLE)), k * 0.2)
    for k in range(113, 120):
        tracker.update(boxes((260, 300, 320, 340, 0.8, BICYCLE)), k * 0.2)
    table = tracker.tracks()
    assert table.stationary_since.tolist() == since and table.stationary.tolist() == [True]


def test_low_score_boxes_extend_tracks_but_never_start_them() -> None:
    tracker = Tracker(TrackerConfig(high_score=0.5, low_score=0.1))
    ids = []
    for k in range(12):
        t = k * 0.2
        score = 0.9 if k < 4 or k >= 8 else 0.3  # partly hidden: the detector is unsure for 0.8 s
        out = tracker.update(boxes((*walker(0, 100, 40, t), score), (600, 100, 640, 200, 0.3)), t)
        ids.append(out.track_id.tolist())
    assert all(i[1] == -1 for i in ids)  # a low-score box alone never starts a track
    walker_ids = {i[0] for i in ids[1:]}
    assert walker_ids == {0}
    table = tracker.tracks()
    assert table.hits.tolist() == [12] and table.median_score[0] == pytest.approx(0.9)
    assert len(table) == 1


def test_low_score_boxes_do_not_revive_lost_tracks() -> None:
    """ByteTrack's second stage only serves tracks seen on the previous frame."""
    tracker = Tracker(TrackerConfig())
    for k in range(3):
        tracker.update(boxes((100, 100, 140, 200)), k * 0.2)
    tracker.update(boxes(), 0.6)
    assert tracker.update(boxes((100, 100, 140, 200, 0.3)), 0.8).track_id.tolist() == [-1]
    assert tracker.update(boxes((100, 100, 140, 200, 0.9)), 1.0).track_id.tolist() == [0]


def test_prediction_uses_the_time_between_frames() -> None:
    """A fast object seen at irregular times: only a dt-aware prediction keeps matching it."""
    tracker = Tracker(TrackerConfig(match_iou=0.3))
    times = [0.0, 0.1, 0.2, 0.3, 0.9, 1.0, 1.6, 1.7, 2.5, 2.6, 3.0]
    ids = [tracker.update(boxes(walker(0, 100, 200, t)), t).track_id[0] for t in times]
    # a 0.6 s gap moves the box 120 px, three widths: the last box does not even touch the new one
    assert ids[0] == -1 and set(ids[1:]) == {0}
    predicted = Tracker(TrackerConfig(match_iou=0.3))
    steady = [predicted.update(boxes(walker(0, 100, 200, 0.1 * k)), 0.1 * k).track_id[0] for k in range(31)]
    assert set(steady[1:]) == {0}


def test_classes_are_matched_separately_unless_configured_otherwise() -> None:
    walking_a_bike = [((100, 100, 140, 200, 0.9, PERSON), (95, 150, 160, 205, 0.9, BICYCLE))]
    together = Tracker(TrackerConfig())
    for k in range(4):
        together.update(boxes(*walking_a_bike[0]), k * 0.2)
    assert sorted(together.tracks().class_id.tolist()) == [PERSON, BICYCLE]

    flipping = Tracker(TrackerConfig(same_class=False))
    for k in range(7):  # a detector unsure between bicycle and motorcycle (3)
        flipping.update(boxes((100, 100, 160, 150, 0.9, BICYCLE if k % 3 else 3)), k * 0.2)
    table = flipping.tracks()
    assert len(table) == 1 and table.class_id.tolist() == [BICYCLE]  # majority vote


def test_history_covers_the_window_and_rows_finds_tracks() -> None:
    tracker = Tracker(TrackerConfig(history=1.0, history_boxes=50))
    for k in range(20):
        tracker.update(boxes(walker(0, 100, 10, k * 0.2)), k * 0.2)
    table = tracker.tracks()
    history = table.history(0)
    assert history.times.tolist() == pytest.approx([2.8, 3.0, 3.2, 3.4, 3.6, 3.8])
    assert history.boxes[-1].tolist() == pytest.approx(list(walker(0, 100, 10, 3.8)))
    assert table.rows(np.array([0, -1, 7])).tolist() == [0, -1, -1]
    with pytest.raises(KeyError, match="track 7 is not in the table"):
        table.history(7)
    with pytest.raises(ValueError):
        table.box[0, 0] = 1.0  # a read-only snapshot


def test_history_ring_keeps_the_latest_boxes_and_median_score() -> None:
    tracker = Tracker(TrackerConfig(history=100.0, history_boxes=4))
    for k, score in enumerate([0.9, 0.9, 0.9, 0.6, 0.6, 0.7, 0.8]):
        tracker.update(boxes((100, 100, 140, 200, score)), k * 0.2)
    table = tracker.tracks()
    assert table.history(0).scores.tolist() == pytest.approx([0.6, 0.6, 0.7, 0.8])
    assert table.median_score[0] == pytest.approx(0.65)
    assert table.hits[0] == 7


def test_reset_forgets_tracks_and_restarts_ids() -> None:
    tracker = Tracker(TrackerConfig())
    for k in range(3):
        tracker.update(boxes((100, 100, 140, 200), (300, 100, 340, 200)), k * 0.2)
    assert len(tracker.tracks()) == 2
    tracker.reset()
    assert len(tracker.tracks()) == 0
    tracker.update(boxes((300, 100, 340, 200)), 0.0)  # pts may start over after a reset
    assert tracker.update(boxes((300, 100, 340, 200)), 0.2).track_id.tolist() == [0]


def test_bad_timestamps_are_refused_with_the_reason() -> None:
    tracker = Tracker(TrackerConfig())
    tracker.update(boxes((0, 0, 10, 10)), 5.0)
    tracker.update(boxes((0, 0, 10, 10)), 5.0)  # a repeated pts is fine: no time passed
    with pytest.raises(ValueError, match=r"pts went back from 5\.000s to 4\.000s"):
        tracker.update(boxes(), 4.0)
    with pytest.raises(ValueError, match="finite"):
        tracker.update(boxes(), float("nan"))


def test_config_checks_levels_and_names_bad_keys() -> None:
    with pytest.raises(ValidationError, match=r"low_score \(0\.6\) must not exceed high_score \(0\.5\)"):
        TrackerConfig(low_score=0.6)
    with pytest.raises(ValidationError, match="new_track_score"):
        TrackerConfig(high_score=0.7, new_track_score=0.6)
    yaml = "cameras:\n  a:\n    url: x.mp4\n    tracker:\n      max_lostt: 2\n"
    with pytest.raises(ConfigError) as err:
        parse_config(yaml)
    assert "cameras.a.tracker.max_lostt: unknown key" in str(err.value)
    assert "did you mean 'max_lost'?" in str(err.value) and "(line 5)" in str(err.value)
    config = parse_config("cameras:\n  a:\n    url: x.mp4\n    tracker: {max_lost: 5, min_hits: 3}\n")
    assert config.cameras["a"].tracker.max_lost == 5.0 and config.cameras["a"].tracker.min_hits == 3


def test_kalman_blocks_equal_the_textbook_8x8_filter() -> None:
    """The tracker keeps the covariance as four 2x2 blocks (kalman.py); the full 8x8 algebra
    (P' = F P F^T + Q, K = P H^T S^-1) on the same tracks must give the same states."""
    from vision.track import kalman

    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 600, (5, 2))
    mean, cov = kalman.initiate(np.hstack([xy, xy + rng.uniform(20, 120, (5, 2))]).astype(np.float32))
    full = np.zeros((5, 8, 8))
    for j in range(4):  # the blocks written out as 8x8 matrices
        full[:, j, j], full[:, j, j + 4], full[:, j + 4, j + 4] = cov[:, 0, j], cov[:, 1, j], cov[:, 2, j]
        full[:, j + 4, j] = cov[:, 1, j]
    mean[:, 4:] = rng.normal(0, 30, (5, 4))
    ref = mean.copy()
    for dt in (0.2, 0.7):
        lost = np.array([False, True, False, False, True])
        kalman.predict(mean, cov, dt, lost, np.full(5, dt))
        ref[lost, 6:8] = 0.0
        f = np.eye(8)
        f[:4, 4:] = dt * np.eye(4)
        ref = ref @ f.T
        size = np.tile(np.maximum(ref[:, 2:4], kalman.MIN_SIZE), 2)
        q = np.concatenate([kalman.POS_VAR * size**2, kalman.VEL_VAR * size**2], axis=1) * dt
        full = f @ full @ f.T + np.stack([np.diag(row) for row in q])
        boxes = kalman.to_xyxy(mean) + rng.normal(0, 3, (5, 4)).astype(np.float32)
        mean, cov = kalman.correct(mean, cov, boxes)
        h = np.eye(4, 8)
        s = h @ full @ h.T + np.stack([np.diag(row) for row in (kalman.MEAS_STD * size) ** 2])
        gain = full @ h.T @ np.linalg.inv(s)
        ref = ref + (gain @ (kalman.to_state(boxes) - ref[:, :4])[:, :, None])[:, :, 0]
        full = full - gain @ h @ full
        np.testing.assert_allclose(mean, ref, rtol=1e-9, atol=1e-9)
        parts = (full[:, :4, :4], full[:, :4, 4:], full[:, 4:, 4:])
        blocks = np.stack([np.diagonal(part, axis1=1, axis2=2) for part in parts], axis=1)
        np.testing.assert_allclose(cov, blocks, rtol=1e-9, atol=1e-9)
        off = full.copy()
        for j in range(4):
            off[:, [j, j, j + 4, j + 4], [j, j + 4, j, j + 4]] = 0.0
        assert np.abs(off).max() < 1e-9 * np.abs(full).max()  # nothing outside the blocks


def test_boxes_and_kalman_states_convert_both_ways() -> None:
    """A box becomes a state (centre, size) and back without a change of its float32 coordinates; a
    box under a pixel wide or high comes back a pixel wide or high around its centre (kalman.MIN_SIZE:
    a prediction never collapses); a state's box converts back to the state up to float32 rounding."""
    from vision.track import kalman

    rng = np.random.default_rng(5)
    xy = rng.uniform(-50, 1900, (200, 2))
    xyxy = np.hstack([xy, xy + rng.uniform(1, 600, (200, 2))]).astype(np.float32)
    z = kalman.to_state(xyxy)
    assert z.dtype == np.float64 and z.shape == (200, 4)
    np.testing.assert_array_equal(z[:, :2], (xyxy[:, :2].astype(np.float64) + xyxy[:, 2:]) / 2)
    np.testing.assert_array_equal(z[:, 2:], xyxy[:, 2:].astype(np.float64) - xyxy[:, :2])
    mean, _ = kalman.initiate(xyxy)
    back = kalman.to_xyxy(mean)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, xyxy)  # bit for bit
    thin = np.array([[10.0, 20.0, 10.5, 60.0], [5.0, 5.0, 5.0, 5.0]], np.float32)
    np.testing.assert_array_equal(
        kalman.to_xyxy(kalman.initiate(thin)[0]), [[9.75, 20.0, 10.75, 60.0], [4.5, 4.5, 5.5, 5.5]]
    )
    sizes, speeds = rng.uniform(2, 300, (50, 2)), rng.normal(0, 9, (50, 4))
    states = np.hstack([rng.uniform(0, 1000, (50, 2)), sizes, speeds])
    np.testing.assert_allclose(kalman.to_state(kalman.to_xyxy(states)), states[:, :4], rtol=0, atol=1e-4)
    assert kalman.to_state(np.zeros((0, 4), np.float32)).shape == (0, 4)
    assert kalman.to_xyxy(np.zeros((0, 8))).shape == (0, 4)


def test_frames_with_no_box_or_no_track_leave_empty_tables_of_the_same_layout() -> None:
    """No box and no track: nothing to do but note the time; the table is empty, with the columns'
    dtypes and widths of a full one, read-only; boxes then start tracks as on a first frame; tracks
    with no box are lost, then expire."""
    cfg = TrackerConfig(history_boxes=6, max_lost=1.0)
    tracker = Tracker(cfg)
    for k in range(3):
        out = tracker.update(boxes(), k * 0.2)
        assert len(out) == 0 and out.track_id.dtype == np.int64
        empty = tracker.tracks()
        assert len(empty) == 0 and empty.pts == pytest.approx(k * 0.2)
    with pytest.raises(ValueError, match="pts went back"):  # the time was noted
        tracker.update(boxes(), 0.3)
    walk = [walker(100, 100, 50, k * 0.2) for k in range(5)]
    for k, box in enumerate(walk):
        out = tracker.update(boxes(box), 0.4 + k * 0.2)
    assert out.track_id.tolist() == [0]
    full = tracker.tracks()
    columns = [f.name for f in fields(full) if isinstance(getattr(full, f.name), np.ndarray)]
    assert len(columns) == 13
    for name in columns:
        column, none = getattr(full, name), getattr(empty, name)
        assert none.dtype == column.dtype and none.shape == (0, *column.shape[1:]), name
        assert not none.flags.writeable, name
    assert full.first_seen.tolist() == [pytest.approx(0.4)]
    lost = tracker.update(boxes(), 1.6)
    assert len(lost) == 0 and tracker.tracks().streak.tolist() == [0]
    np.testing.assert_allclose(tracker.tracks().box[0], walk[-1], rtol=1e-6)
    tracker.update(boxes(), 2.3)  # last seen at 1.2: lost over max_lost
    assert len(tracker.tracks()) == 0
    again = tracker.update(boxes(walk[0]), 2.5)
    assert again.track_id.tolist() == [-1]  # a new tentative track: the old one is gone
    assert tracker.update(boxes(walk[0]), 2.7).track_id.tolist() == [1]


def test_a_tables_class_ids_are_int32_whatever_the_boxes_had() -> None:
    """Each track's class is kept as its boxes' votes change (not recounted per table): int32 as the
    table says, also from boxes built without from_arrays' dtypes."""
    tracker = Tracker(TrackerConfig(min_hits=1, same_class=False))
    for k, cls in enumerate([BICYCLE, BICYCLE, PERSON, PERSON, PERSON]):
        xyxy = np.array([[100, 100, 140, 200]], np.float32)
        dets = Detections(xyxy, np.array([0.9], np.float32), np.array([cls]), np.array([-1]))
        tracker.update(dets, k * 0.2)
        table = tracker.tracks()
        assert table.class_id.dtype == np.int32
        assert table.class_id.tolist() == [BICYCLE if k < 3 else PERSON]  # a tie: the lower class id
