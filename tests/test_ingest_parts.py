"""The ingest parts that need no video: stream clock, backoff, frame handoff, health, UNKNOWN rules."""

from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest
from pydantic import ValidationError

from vision.config import KEYFRAMES_READ_INTERVAL, StreamConfig
from vision.ingest.backoff import Backoff
from vision.ingest.clock import ANCHOR_CREEP, StreamClock
from vision.ingest.handoff import FrameQueue, LatestFrame
from vision.ingest.health import PASSED, CameraState, HealthMonitor
from vision.types import Frame

IMAGE = np.zeros((4, 4, 3), np.uint8)


def frame(pts: float) -> Frame:
    return Frame("cam", pts, IMAGE)


def test_file_clock_counts_from_the_first_frame_and_forces_it_monotonic() -> None:
    clock = StreamClock(live=False)  # a file whose timestamps start at 10 s (a recorder's export)
    stamped = [clock.stamp(p, 100.0) for p in (10.0, 10.1, 10.2, 10.2, 10.15, 17.0)]
    assert stamped == pytest.approx([0.0, 0.1, 0.2, 0.201, 0.202, 7.0])  # a file's gaps are real
    clock = StreamClock(live=False)  # B-frames: the first frame shown before 0
    assert [clock.stamp(p, 100.0) for p in (-0.05, 0.05, 0.15)] == pytest.approx([0.0, 0.1, 0.2])


def test_live_clock_starts_at_zero_and_bridges_reconnects_with_wall_time() -> None:
    clock = StreamClock(live=True)
    assert clock.stamp(5000.0, 10.0) == 0.0  # an RTSP/HLS stream's PTS origin is arbitrary
    assert clock.stamp(5000.5, 10.5) == pytest.approx(0.5)
    clock.new_segment()  # reconnected 30 s later; the new stream's PTS starts again near 0
    assert clock.stamp(0.1, 40.5) == pytest.approx(30.5)
    assert clock.stamp(0.6, 41.0) == pytest.approx(31.0)
    assert clock.stamp(0.2, 41.5) == pytest.approx(31.5)  # backwards: a glitch, bridged by wall time
    assert clock.stamp(900.0, 42.0) == pytest.approx(32.0)  # a forward jump far past the wall clock too
    assert clock.stamp(900.5, 42.5) == pytest.approx(32.5)  # and the new origin holds


def test_untimed_stream_is_stamped_by_arrival() -> None:
    clock = StreamClock(live=True)
    assert [clock.stamp(None, t) for t in (50.0, 50.2, 50.45)] == pytest.approx([0.0, 0.2, 0.45])


def test_wall_anchor_takes_the_fastest_frame_and_measures_lag() -> None:
    clock = StreamClock(live=True)
    for pts, arrival in ((0.0, 13.0), (0.5, 13.1), (1.0, 13.2), (1.5, 11.6)):  # a buffered burst, then live
        clock.arrived(clock.stamp(pts, arrival), arrival)
    assert clock.lag(1.5, 11.6) == pytest.approx(0.0)
    assert clock.lag(2.0, 14.6) == pytest.approx(2.5)  # a frame 2.5 s late against the live edge
    assert clock.now(12.6) == pytest.approx(2.5)  # stream time runs on with the wall clock
    epoch = time.time() - time.monotonic()
    assert clock.wall_time(1.5) == pytest.approx(11.6 + epoch, abs=0.05)


def test_anchor_creeps_for_a_slow_camera_clock_but_not_for_a_backlog() -> None:
    clock = StreamClock(live=True)
    clock.arrived(clock.stamp(0.0, 0.0), 0.0)
    t = 0.0
    for i in range(1, 3601):  # an hour of a camera whose clock runs 100 ppm slow
        t = i * 1.0001
        clock.arrived(clock.stamp(float(i), t), t)
    assert clock.lag(3600.0, t) < 0.05  # absorbed: no false backlog
    clock.arrived(clock.stamp(3601.0, t + 3.0), t + 3.0)  # a real 2 s backlog shows at once
    assert clock.lag(3601.0, t + 3.0) == pytest.approx(2.0 - ANCHOR_CREEP * 3)


def test_backoff_doubles_with_jitter_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(1.0, 10.0, random.Random(7))
    delays = [backoff.next() for _ in range(8)]
    for delay, base in zip(delays, [1, 2, 4, 8, 10, 10, 10, 10], strict=True):
        assert base / 2 <= delay <= base
    assert len({round(d, 6) for d in delays[4:]}) == 4  # jittered, not lockstep
    backoff.reset()
    assert backoff.next() <= 1.0
    backoff.failures = 10_000  # days of failures must not overflow
    assert backoff.next() <= 10.0


def test_latest_frame_keeps_only_the_newest_and_counts_drops() -> None:
    ready = threading.Event()
    slot = LatestFrame(ready)
    assert slot.take() is None
    assert slot.put(frame(1.0)) is False and ready.is_set()
    assert slot.put(frame(2.0)) is True  # the pipeline was busy: frame 1 dropped
    assert slot.take().pts == 2.0 and slot.take() is None
    slot.close()
    assert slot.done


def test_frame_queue_loses_nothing_and_waits_for_room() -> None:
    queue, stop = FrameQueue(capacity=2), threading.Event()
    taken: list[float] = []

    def consume() -> None:
        while (f := queue.take(timeout=5)) is not None:
            taken.append(f.pts)
            time.sleep(0.001)

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(50):
        assert queue.put(frame(float(i)), stop)
    queue.close()
    consumer.join(5)
    assert taken == [float(i) for i in range(50)]
    full = FrameQueue(capacity=1)
    full.put(frame(0.0), stop)
    stop.set()
    assert full.put(frame(1.0), stop) is False  # a stopped reader does not hang on a full queue


def test_health_watchdog_sees_a_stall_before_the_reader_does() -> None:
    monitor = HealthMonitor("cam", "rtsp://u:***@h/x", stall_timeout=0.2)
    assert monitor.state is CameraState.CONNECTING
    monitor.frame_in(0.0, None, time.monotonic())
    assert monitor.state is CameraState.LIVE
    time.sleep(0.3)
    snapshot = monitor.snapshot()
    assert snapshot.state is CameraState.STALLED and not snapshot.state.sees
    monitor.set_state(CameraState.OFFLINE, "camera cam: cannot open rtsp://u:***@h/x: refused")
    monitor.count(dropped=2, reconnects=1)
    for _ in range(5):
        monitor.skipped()
    record = monitor.snapshot().to_record()
    assert record["state"] == "offline" and record["frames_dropped"] == 2 and record["reconnects"] == 1
    assert record["frames_skipped"] == 5 and "refused" in record["last_error"]


def test_health_keeps_the_states_set_between_two_looks() -> None:
    """The pipeline looks at the state now and then: a stall, an error and a restart over between two
    looks are still there to report, in order, each once; a state hidden by an error is not."""
    monitor = HealthMonitor("cam", "rtsp://u:***@h/x", stall_timeout=5.0)
    assert monitor.passed(0) == (0, [])
    monitor.frame_in(0.0, None, time.monotonic())
    monitor.set_state(CameraState.STALLED, "camera cam: the stream ended")
    monitor.set_state(CameraState.STALLED)  # the same state again: no change
    monitor.frame_in(1.0, None, time.monotonic())
    seen, passed = monitor.passed(0)
    assert [state for state, _ in passed] == [CameraState.LIVE, CameraState.STALLED, CameraState.LIVE]
    assert seen == 3 and monitor.passed(seen) == (3, [])
    monitor.fail("RuntimeError: boom")
    monitor.fail("RuntimeError: boom")  # still failing: no change
    monitor.set_state(CameraState.STALLED)  # under the error: the camera is in error, whatever its stream
    monitor.recover()
    seen, passed = monitor.passed(seen)
    assert [state for state, _ in passed] == [CameraState.ERROR, CameraState.STALLED] and seen == 5
    for i in range(1, 41):  # a camera flapping faster than anyone looks: the newest are kept
        monitor.set_state(CameraState.OFFLINE if i % 2 else CameraState.STALLED)
    seen, passed = monitor.passed(seen)
    assert seen == 45 and len(passed) == PASSED and passed[-1][0] is CameraState.STALLED


def test_health_keeps_only_the_rate_window() -> None:
    monitor = HealthMonitor("cam", "x.mp4", stall_timeout=None)
    start = time.monotonic() - 3600
    for i in range(3600 * 25):  # an hour at 25 fps that nobody looked at
        monitor.frame_in(i / 25, None, start + i / 25)
    assert len(monitor._in) <= 5 * 25 + 1 and monitor.frames_in == 90_000


def test_unit_reports_unknown_for_its_open_episodes() -> None:
    from vision.camera.unit import CameraUnit
    from vision.config import EventsConfig, parse_config
    from vision.types import Detections, Frame

    camera = parse_config(
        "cameras: {cam: {url: x.mp4, zones: {z: {polygon: [[0, 0], [1, 0], [1, 1], [0, 1]], "
        "rules: {crowd: {enter_count: 2, exit_count: 1, window: 0.1, min_duration: 0}}}}}}",
    ).cameras["cam"]
    unit = CameraUnit("cam", camera, {0: "person"}, EventsConfig(close_after=1))
    image = np.zeros((100, 100, 3), np.uint8)
    people = Detections.from_arrays(np.array([[60, 10, 70, 90], [80, 10, 90, 90]]), [0.9, 0.9], [0, 0])
    _, opened = unit.process(Frame("cam", 0.0, image), people)
    assert [t.kind for t in opened] == ["open"]
    # dark for an hour: nothing closes, the episode is paused
    assert unit.unknown(1.0) == [] and unit.unknown(3600.0) == []
    (event,) = unit.open_events()
    assert event.state.value == "open"


def test_clock_peek_says_what_stamp_would_without_stamping() -> None:
    """The decoder judges a packet's lag before decoding it: the stream time it will get, or None
    where only stamping can tell (no frame yet, a new segment, a jump the clock re-bases)."""
    clock = StreamClock(live=True)
    assert clock.peek(5000.0, 10.0) is None  # no frame yet: the PTS origin is unknown
    clock.stamp(5000.0, 10.0)
    clock.arrived(0.0, 10.0)
    assert clock.peek(5003.0, 13.0) == pytest.approx(3.0)
    assert clock.peek(5003.0, 15.0) == pytest.approx(3.0) and clock.lag(3.0, 15.0) == pytest.approx(2.0)
    assert clock.peek(4999.0, 11.0) is None  # backwards: a glitch
    assert clock.peek(5020.0, 11.0) is None  # 20 s of stream in 1 s of wall time: a glitch
    assert clock.last == 0.0  # nothing was stamped
    assert clock.stamp(5003.0, 13.0) == pytest.approx(3.0)
    clock.new_segment()
    assert clock.peek(5003.5, 13.5) is None  # a reconnect's PTS start anywhere


def test_readers_rest_between_bursts_by_default_only_for_keyframes_and_well_within_the_stall_timeout() -> (
    None
):
    assert StreamConfig().rest(keyframes_only=True) == KEYFRAMES_READ_INTERVAL
    assert StreamConfig().rest(keyframes_only=False) == 0.0
    assert StreamConfig(stall_timeout=0.4).rest(keyframes_only=True) == pytest.approx(0.1)
    assert StreamConfig(read_interval=0.5).rest(keyframes_only=False) == 0.5
    with pytest.raises(ValidationError, match=r"read_interval \(1\) must be less than half of stall_timeout"):
        StreamConfig(read_interval=1, stall_timeout=1.5)
