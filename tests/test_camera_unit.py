"""The camera unit: snapshot and restore carry tickets across processes; outages and config edits
never orphan one; every close says why. Arrays and timestamps only: no video, no server."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from vision.camera.packing import pack, unpack
from vision.camera.unit import CameraUnit, Snapshot
from vision.config import CameraConfig, EventsConfig, parse_config
from vision.types import CloseReason, Detections, Event, EventState, Frame, Transition

NAMES = {0: "person"}
IMAGE = np.zeros((100, 200, 3), np.uint8)
SQUARE = [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]  # the left half


def camera(zones: str) -> CameraConfig:
    return parse_config(f"cameras: {{cam: {{url: x.mp4, zones: {{{zones}}}}}}}").cameras["cam"]


CROWD_RULE = "crowd: {enter_count: 3, exit_count: 1, window: 0.1, min_duration: 1}"
CROWD = f"plaza: {{polygon: {SQUARE}, rules: {{{CROWD_RULE}}}}}"
FISHING = f"bank: {{polygon: {SQUARE}, rules: {{fishing: {{min_duration: 2, inertia: 1, threshold: 0.3}}}}}}"


def people(n: int, x: float = 10.0) -> Detections:
    xs = x + np.arange(n) * 15.0
    return Detections.from_arrays(
        np.stack([xs, np.full(n, 20), xs + 10, np.full(n, 90)], 1), np.full(n, 0.9), np.zeros(n)
    )


def run(unit: CameraUnit, start: float, end: float, n: int, step: float = 0.5) -> list[Transition]:
    out: list[Transition] = []
    for i in range(round((end - start) / step) + 1):
        frame = unit.stamp(Frame("cam", start + i * step, IMAGE))
        out += unit.process(frame, people(n))[1]
    return out


def through_json(snapshot: Snapshot) -> Snapshot:
    """What the store keeps: the state as JSON text."""
    return Snapshot(json.loads(json.dumps(snapshot.state)), snapshot.arrays)


def stored(transitions: list[Transition]) -> list[Event]:
    """The store's open events after these transitions (the last record of each event)."""
    last = {t.event["event_id"]: t.event for t in transitions}
    return [Event.from_record(e) for e in last.values() if e["state"] != "resolved"]


def events(**kw: float) -> EventsConfig:
    return EventsConfig(close_after=2.0, update_interval=1e9, **kw)


def test_a_restored_unit_carries_on_the_same_ticket_on_a_new_stream_clock() -> None:
    first = CameraUnit("cam", camera(CROWD), NAMES, events(restart_grace=3.0))
    opened = run(first, 0.0, 5.0, 4)
    assert [t.kind for t in opened] == ["open"]
    snapshot = through_json(first.snapshot())
    # a new process: the stream starts again at 0, and the crowd is still there at first
    second = CameraUnit("cam", camera(CROWD), NAMES, events(restart_grace=3.0))
    assert second.restore(snapshot, stored(opened), gap=0.0) == []
    frame = second.stamp(Frame("cam", 0.0, IMAGE))
    assert frame.pts == 5.0  # the camera clock continues where the snapshot left it
    assert second.process(frame, people(4))[1] == []  # the same ticket: no second open
    (event,) = second.open_events()
    assert event.event_id == opened[0].event["event_id"]
    # the crowd leaves right away: within the grace nothing can be seen gone, after it the ticket closes
    closes = run(second, 0.5, 10.0, 0)
    (close,) = closes
    assert close.event["event_id"] == event.event_id and close.event["close_reason"] == "resolved"
    assert close.pts >= 5.0 + 3.0 + 2.0  # grace, then close_after of seen absence
    assert second.open_events() == []


def test_the_gap_of_a_restart_ages_reopen_windows_but_never_counts_as_seen() -> None:
    first = CameraUnit("cam", camera(CROWD), NAMES, events(reopen_window=30.0, restart_grace=0.0))
    transitions = run(first, 0.0, 3.0, 4) + run(first, 3.5, 7.0, 0)
    assert [t.kind for t in transitions] == ["open", "close"]
    snapshot = through_json(first.snapshot())
    late = CameraUnit("cam", camera(CROWD), NAMES, events(reopen_window=30.0, restart_grace=0.0))
    late.restore(snapshot, [], gap=60.0)  # down for a minute: past the reopen window
    assert [t.kind for t in run(late, 0.0, 2.0, 4)] == ["open"]
    soon = CameraUnit("cam", camera(CROWD), NAMES, events(reopen_window=30.0, restart_grace=0.0))
    soon.restore(snapshot, [], gap=5.0)
    (reopen,) = run(soon, 0.0, 2.0, 4)
    assert reopen.kind == "reopen" and reopen.event["event_id"] == transitions[0].event["event_id"]


def test_a_long_outage_never_makes_a_rule_forget_an_open_ticket() -> None:
    unit = CameraUnit("cam", camera(FISHING), NAMES, events())
    opened = run(unit, 0.0, 4.0, 1)
    assert [t.kind for t in opened] == ["open"]
    subject = opened[0].event["subject"]
    for pts in (5.0, 60.0, 200.0, 305.0):  # dark for five minutes: 2 * close_after + 60 s many times over
        assert unit.unknown(pts) == []
    back = run(unit, 305.5, 312.0, 0)  # back, and the bank is empty
    (close,) = back
    assert (close.event["subject"], close.event["close_reason"]) == (subject, "resolved")
    assert close.pts >= 305.5 + 2.0


def test_an_event_unseen_for_expire_after_expires() -> None:
    unit = CameraUnit("cam", camera(CROWD), NAMES, events(expire_after=100.0))
    run(unit, 0.0, 3.0, 4)
    assert unit.unknown(50.0) == []
    (close,) = unit.unknown(103.5)
    assert close.event["close_reason"] == "expired" and close.event["state"] == "resolved"


def test_zone_edits_close_what_no_longer_exists_and_keep_the_rest() -> None:
    unit = CameraUnit("cam", camera(f"{CROWD}, {FISHING}"), NAMES, events())
    opened = run(unit, 0.0, 4.0, 4)
    kinds = [t.event["type"] for t in opened if t.kind == "open"]
    assert kinds.count("crowd") == 1 and kinds.count("fishing") >= 1
    # the crowd zone nudged by a few percent: the same place, its ticket and rule memory stay
    nudged = CROWD.replace("[0.5, 0]", "[0.52, 0]")
    assert [t for t in unit.reconfigure(camera(f"{nudged}, {FISHING}")) if t.event["type"] == "crowd"] == []
    # the fishing rule removed from its zone, the crowd zone moved to the right half
    moved = CROWD.replace(str(SQUARE), "[[0.5, 0], [1, 0], [1, 1], [0.5, 1]]")
    no_rule = "bank: {polygon: " + str(SQUARE) + ", rules: {crowd: {enter_count: 50}}}"
    closes = unit.reconfigure(camera(f"{moved}, {no_rule}"))
    reasons = {(t.event["type"], t.event["close_reason"]) for t in closes}
    assert reasons == {("crowd", "zone_changed"), ("fishing", "rule_removed")}
    assert len(closes) == len([t for t in opened if t.kind == "open"])
    assert unit.reconfigure(camera(no_rule)) == []  # nothing open is left in the removed zone
    assert unit.open_events() == []


def test_a_zone_removed_while_the_process_was_down_closes_on_restore() -> None:
    unit = CameraUnit("cam", camera(CROWD), NAMES, events())
    opened = run(unit, 0.0, 3.0, 4)
    other = f"elsewhere: {{polygon: {SQUARE}, rules: {{crowd: {{}}}}}}"
    restored = CameraUnit("cam", camera(other), NAMES, events())
    (close,) = restored.restore(through_json(unit.snapshot()), stored(opened), gap=0.0)
    assert close.event["event_id"] == opened[0].event["event_id"]
    assert close.event["close_reason"] == CloseReason.ZONE_REMOVED.value and close.pts == 3.0


def test_an_open_event_known_only_from_the_store_is_carried_on_and_closed_when_seen_gone() -> None:
    event = Event("e1", "fishing", "cam", "bank", "person-7", EventState.OPEN, 1.0, opened_at=3.0, count=1)
    unit = CameraUnit("cam", camera(FISHING), NAMES, events(restart_grace=1.0))
    assert unit.restore(None, [event], gap=0.0) == []
    assert [e.event_id for e in unit.open_events()] == ["e1"]
    (close,) = run(unit, 0.0, 6.0, 0)  # the rule never heard of person-7: seen gone all the same
    assert (close.event["event_id"], close.event["close_reason"]) == ("e1", "resolved")


def litter_unit() -> CameraUnit:
    """A unit whose litter rule has a background model, after 5 frames of noise."""
    litter = f"ground: {{polygon: {SQUARE}, rules: {{litter: {{classes: [person]}}}}}}"
    unit = CameraUnit("cam", camera(litter), NAMES, events())
    rng = np.random.default_rng(1)
    for i in range(5):
        image = rng.integers(0, 255, (100, 200, 3), np.uint8)
        unit.process(unit.stamp(Frame("cam", i * 0.5, image)), people(2))
    return unit


def assert_same_models(unit: CameraUnit, restored: CameraUnit) -> None:
    before, after = unit.analysis.scene.static["ground"], restored.analysis.scene.static["ground"]
    for name in ("fast", "slow", "timer", "arrived", "seen"):
        np.testing.assert_array_equal(getattr(before, name), getattr(after, name))
    np.testing.assert_array_equal(unit.analysis.scene.heatmap.grid, restored.analysis.scene.heatmap.grid)


def test_tracker_ids_and_the_background_model_survive_a_restore(tmp_path: Path) -> None:
    unit = litter_unit()
    snapshot = unit.snapshot()
    assert snapshot.arrays
    restored = CameraUnit("cam", unit.camera, NAMES, events())
    restored.restore(through_json(snapshot), [], gap=0.0)
    assert_same_models(unit, restored)
    assert restored.analysis.tracker.state() == unit.analysis.tracker.state() != {"next_id": 0}


def test_a_checkpoint_written_by_np_savez_compressed_still_restores() -> None:
    """Checkpoints stored before vision/camera/packing.py (np.savez_compressed, as main wrote them)."""
    unit = litter_unit()
    snapshot = unit.snapshot()
    assert snapshot.arrays
    old = io.BytesIO()
    np.savez_compressed(old, **unpack(snapshot.arrays))
    assert old.getvalue() != snapshot.arrays
    restored = CameraUnit("cam", unit.camera, NAMES, events())
    restored.restore(Snapshot(through_json(snapshot).state, old.getvalue()), [], gap=0.0)
    assert_same_models(unit, restored)


def test_checkpoint_arrays_come_back_exactly_and_a_damaged_checkpoint_is_refused() -> None:
    rng = np.random.default_rng(2)
    background = rng.normal(120, 30, (200, 300)).astype(np.float32)  # pixels
    arrived = np.array([12.25, np.nan, 3.5])  # arrival times where something changed
    arrays = {
        "static.g:fast": background,
        "static.g:at": np.array([5, 9, 70], np.int32),
        "static.g:arrived_at": arrived,
        "static.g:seen_at": np.array([True, False, True]),
        "static.g:last_pts": np.array(31.5),
        "heatmap.grid": np.asfortranarray(rng.random((72, 96)).astype(np.float32)),  # not C-ordered
    }
    data = pack(arrays)
    back = unpack(data)
    assert list(back) == list(arrays)
    for name, array in arrays.items():
        assert back[name].dtype == array.dtype and back[name].shape == array.shape
        np.testing.assert_array_equal(back[name], array)
        assert back[name].flags.writeable
    assert pack(arrays) == data  # the same arrays, the same bytes
    assert len(data) < sum(a.nbytes for a in arrays.values()) + 1000  # raw bytes and a short header
    with pytest.raises(ValueError, match=r"heatmap\.grid"):
        unpack(data[:-1])
    with pytest.raises(ValueError, match="bytes after the last array"):
        unpack(data + b"\0")
    with pytest.raises(ValueError, match=r"'static\.g:names'"):
        pack({"static.g:names": np.array(["a", None], object)})


def test_a_reported_fix_is_verified_by_the_camera() -> None:
    from vision.types import Report

    unit = CameraUnit("cam", camera(CROWD), NAMES, events(verify_within=5.0))
    (opened,) = run(unit, 0.0, 3.0, 4)
    event_id = opened.event["event_id"]
    assert unit.report("no-such-event", Report.HANDLED) is None
    assert unit.report(event_id, Report.ACKNOWLEDGED) == []
    assert unit.report(event_id, Report.HANDLED) == []  # the camera now checks the fix
    (event,) = unit.open_events()
    assert (event.report, event.verification) == (Report.HANDLED, "pending")
    # the crowd is gone: after close_after of seen absence it closes as a verified fix
    (close,) = run(unit, 3.5, 7.0, 0)
    assert close.event["close_reason"] == "verified_fixed" and close.event["verification"] == "passed"
    assert close.event["report"] == "handled"


def test_a_fix_the_camera_does_not_see_sends_the_ticket_back() -> None:
    from vision.types import Report

    unit = CameraUnit("cam", camera(CROWD), NAMES, events(verify_within=5.0))
    (opened,) = run(unit, 0.0, 3.0, 4)
    assert unit.report(opened.event["event_id"], Report.HANDLED) == []
    assert unit.unknown(100.0) == []  # dark time does not count towards the verification
    still = run(unit, 100.5, 110.0, 4)  # the crowd is still there
    (back,) = still
    assert back.kind == "reopen" and back.event["event_id"] == opened.event["event_id"]
    assert back.event["verification"] == "failed" and back.event["failed_verifications"] == 1
    assert back.pts >= 100.5 + 5.0  # five seconds of watching after the report, the outage not counted
    # a snapshot keeps a verification under way
    assert unit.report(opened.event["event_id"], Report.HANDLED) == []
    restored = CameraUnit("cam", camera(CROWD), NAMES, events(verify_within=5.0, restart_grace=0.0))
    restored.restore(through_json(unit.snapshot()), stored([opened, *still]), gap=0.0)
    (again,) = run(restored, 0.0, 8.0, 4)
    assert again.event["verification"] == "failed" and again.event["failed_verifications"] == 2


def test_rejected_and_cancelled_close_at_once_with_that_reason() -> None:
    from vision.types import Report

    for report, reason in ((Report.REJECTED, "rejected"), (Report.CANCELLED, "cancelled")):
        unit = CameraUnit("cam", camera(CROWD), NAMES, events(reopen_window=60.0))
        (opened,) = run(unit, 0.0, 3.0, 4)
        (close,) = unit.report(opened.event["event_id"], report)
        assert close.kind == "close" and close.event["close_reason"] == reason and close.pts == 3.0
        assert unit.open_events() == []
        later = run(unit, 3.5, 6.0, 4)  # a false alarm never reopens: a new event if it comes back
        assert [t.kind for t in later] == ["open"] and later[0].event["event_id"] != opened.event["event_id"]
