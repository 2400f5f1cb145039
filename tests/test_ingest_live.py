"""Camera readers against real stream servers on 127.0.0.1: RTSP over UDP and TCP, MJPEG, HLS.

Every server is a real process or socket started here and killed in ``finally``; every
wait has a deadline. Timeouts and backoffs are shortened in the camera configs so that
stalls and recoveries happen within seconds.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from vision.config import CameraConfig, DecodeConfig, StreamConfig
from vision.ingest import decoder as decoder_module
from vision.ingest.decoder import HEARTBEAT_EVERY, VideoDecoder
from vision.ingest.health import CameraState
from vision.ingest.reader import CameraReader
from vision.secrets import SecretUrl
from vision.types import Frame

from .conftest import ROOT, SAMPLE
from .ingest_probe import ReaderProcess
from .ingest_servers import GstRtsp, MjpegServer, PerlRtsp, free_port, serve_directory

FAST_RECOVERY = {"stall_timeout": 2.0, "open_timeout": 5, "reconnect_initial": 0.25, "reconnect_max": 1.0}


def camera(url: str, transport: str = "udp", detect_fps: float = 5, **settings: object) -> CameraConfig:
    stream = {"transport": transport, **FAST_RECOVERY}
    return CameraConfig.model_validate({"url": url, "detect_fps": detect_fps, "stream": stream, **settings})


@pytest.fixture
def perl() -> Iterator[PerlRtsp]:
    server = PerlRtsp()
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture
def reader_of() -> Iterator[Callable[[CameraConfig], CameraReader]]:
    """Start readers; stop and join them all at the end."""
    readers: list[CameraReader] = []

    def start(config: CameraConfig) -> CameraReader:
        readers.append(CameraReader(f"cam{len(readers)}", config).start())
        return readers[-1]

    try:
        yield start
    finally:
        for reader in readers:
            reader.stop()
        for reader in readers:
            reader.join(10)


def wait_for(
    reader: CameraReader, state: CameraState, timeout: float, frames: list[Frame] | None = None
) -> float:
    """Consume frames until ``reader`` is in ``state``; the seconds it took."""
    start = time.monotonic()
    while reader.state is not state:
        assert time.monotonic() - start < timeout, f"not {state} after {timeout} s: {reader.health()}"
        frame = reader.take(timeout=0.05)
        if frame is not None and frames is not None:
            frames.append(frame)
    return time.monotonic() - start


def consume(reader: CameraReader, seconds: float, period: float = 0.0) -> list[Frame]:
    """Take frames for ``seconds``, sleeping ``period`` between takes (a slow pipeline)."""
    frames: list[Frame] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = reader.take(timeout=0.1)
        if frame is not None:
            frames.append(frame)
            time.sleep(period)
    return frames


def test_rtsp_udp_live_newest_frame_at_detect_fps(perl: PerlRtsp, reader_of: Callable) -> None:
    perl.publish("plaza")
    reader = reader_of(camera(perl.url("plaza"), detect_fps=5, decode={"width": 384}))
    wait_for(reader, CameraState.LIVE, 15)
    consume(reader, 1.0)  # let the start-up burst of buffered frames pass
    start = time.monotonic()
    frames = consume(reader, 3.0, period=0.45)  # a pipeline slower than detect_fps
    took = time.monotonic() - start
    health = reader.health()
    assert health.state is CameraState.LIVE and health.last_error is None
    assert 5 <= len(frames) <= 8 and frames[0].image.shape == (288, 384, 3)
    pts = np.array([f.pts for f in frames])
    assert np.all(np.diff(pts) > 0) and pts[-1] - pts[0] == pytest.approx(took, abs=1.0)
    assert health.lag is not None and health.lag < 0.5  # newest frame: no backlog
    assert health.frames_dropped >= 3  # due frames replaced while the pipeline was busy
    assert 7 <= health.fps_in <= 13  # the stream's 10 fps
    assert health.fps_out < health.fps_in / 2  # at most detect_fps, and only what the consumer took


def test_keyframes_only_camera_with_sparse_keyframes_is_not_stalled(
    perl: PerlRtsp, reader_of: Callable
) -> None:
    perl.publish("slow-gop", gop=40)  # a keyframe every 4 s, twice the stall timeout
    reader = reader_of(camera(perl.url("slow-gop"), decode={"keyframes_only": True}))
    wait_for(reader, CameraState.LIVE, 15)
    reconnects = reader.health().reconnects
    states = set()
    frames: list[Frame] = []
    deadline = time.monotonic() + 8.5
    while time.monotonic() < deadline:
        states.add(reader.state)
        if (frame := reader.take(timeout=0.05)) is not None:
            frames.append(frame)
    assert states == {CameraState.LIVE} and reader.health().reconnects == reconnects
    assert len(frames) >= 2 and np.diff([f.pts for f in frames]) == pytest.approx(4.0, abs=0.2)


def test_rtsp_tcp_transport(reader_of: Callable) -> None:
    server = GstRtsp()
    try:
        server.start()
        tcp = reader_of(camera(server.url(), transport="tcp"))
        udp = reader_of(camera(server.url(), transport="udp"))  # this server refuses UDP
        wait_for(tcp, CameraState.LIVE, 15)
        wait_for(udp, CameraState.OFFLINE, 15)
        frames = consume(tcp, 1.5)
        assert len(frames) >= 5 and np.all(np.diff([f.pts for f in frames]) > 0)
        assert "Protocol not supported" in udp.health().last_error
    finally:
        server.close()


def test_server_killed_and_restarted_recovers_within_backoff(perl: PerlRtsp, reader_of: Callable) -> None:
    perl.publish("plaza")
    reader = reader_of(camera(perl.url("plaza")))
    before: list[Frame] = []
    wait_for(reader, CameraState.LIVE, 15, before)
    before += consume(reader, 1.0)
    perl.kill()
    wait_for(reader, CameraState.OFFLINE, 10)  # stalled, reopening fails: connection refused
    assert "Connection refused" in reader.health().last_error
    time.sleep(1.5)  # a few reconnect attempts against the dead port
    perl.start()
    perl.publish("plaza")
    took = wait_for(reader, CameraState.LIVE, 15)
    after = consume(reader, 1.0)
    health = reader.health()
    assert took < 1.0 + 6.0  # within the backoff cap, plus the publisher's and the probe's start
    assert health.reconnects >= 3 and after
    assert after[0].pts > before[-1].pts + 2.5  # the outage is stream time too: no jump backwards


def test_publisher_stopped_goes_stalled_then_offline(perl: PerlRtsp, reader_of: Callable) -> None:
    perl.publish("plaza")
    # the read gives up at FFmpeg's read timeout, the larger of the open and stall timeouts: 2 s both
    stream = {**FAST_RECOVERY, "transport": "udp", "open_timeout": FAST_RECOVERY["stall_timeout"]}
    reader = reader_of(camera(perl.url("plaza"), stream=stream))
    wait_for(reader, CameraState.LIVE, 15)
    live, _ = reader.monitor.passed(0)
    perl.stop_publishing("plaza")
    wait_for(reader, CameraState.OFFLINE, 15)
    # what its reader set, each state however short (the stall lasts the reconnect delay, 0.125-0.25 s,
    # and a look now and then, the pipeline's or this test's, can miss it): not what its watchdog says
    # between (stalled once frames are overdue; a reader short of CPU may still hand over frames that
    # waited in its socket after that, which makes it live again for a moment)
    _, passed = reader.monitor.passed(live)
    assert [state for state, _ in passed] == [CameraState.STALLED, CameraState.OFFLINE], passed
    health = reader.health()
    assert health.reconnects >= 1 and "rtsp://127.0.0.1" in health.last_error


def test_bad_urls_and_a_port_with_nothing_listening(perl: PerlRtsp, reader_of: Callable) -> None:
    missing = reader_of(camera(perl.url("no-such-stream")))
    scheme = reader_of(camera(f"rtspx://127.0.0.1:{perl.client_port}/x"))
    silent_port = free_port()
    refused = reader_of(camera(f"rtsp://127.0.0.1:{silent_port}/cam", transport="tcp"))
    for reader in (missing, scheme, refused):
        wait_for(reader, CameraState.OFFLINE, 10)
    time.sleep(2.0)
    assert "404 Not Found" in missing.health().last_error
    assert "rtspx://127.0.0.1" in scheme.health().last_error
    health = refused.health()
    assert "Connection refused" in health.last_error and f"127.0.0.1:{silent_port}" in health.last_error
    assert 2 <= health.reconnects <= 12  # backing off (0.25 s doubling to 1 s, jittered), not spinning
    assert health.frames_in == 0 and refused.take() is None


def test_mjpeg_over_http_is_stamped_by_arrival(reader_of: Callable) -> None:
    server = MjpegServer()
    try:
        reader = reader_of(camera(server.url(), detect_fps=10))
        wait_for(reader, CameraState.LIVE, 10)
        frames = consume(reader, 1.5)
        pts = np.array([f.pts for f in frames])
        assert len(frames) >= 8 and frames[0].image.shape == (576, 768, 3)
        assert np.median(np.diff(pts)) == pytest.approx(0.1, abs=0.04)  # the server's real 10 fps
    finally:
        server.close()


def test_a_silent_http_camera_is_stalled_and_reopened(reader_of: Callable) -> None:
    """An MJPEG camera that stops sending with its connection open: stalled after the stall timeout,
    and the read ends after FFmpeg's rw_timeout (not a Python callback at each check; the larger of the
    open and stall timeouts, as it bounds the open's reads too), saying so, and the stream is reopened;
    a read without a timeout would wait for ever."""
    server = MjpegServer(silent_after=5)
    stream = {**FAST_RECOVERY, "open_timeout": FAST_RECOVERY["stall_timeout"]}  # rw_timeout 2 s
    try:
        reader = reader_of(camera(server.url(), detect_fps=10, stream=stream))
        wait_for(reader, CameraState.LIVE, 10)
        wait_for(reader, CameraState.STALLED, 10)
        deadline = time.monotonic() + 10
        while (health := reader.health()).reconnects == 0:
            assert time.monotonic() < deadline, f"not reopened: {health}"
            reader.take(timeout=0.05)
        assert health.last_error is not None and "no data for 2 s" in health.last_error
    finally:
        server.close()


def test_hls_over_http(tmp_path: Path, reader_of: Callable) -> None:
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-i", str(SAMPLE), "-t", "6", "-c", "copy"),
            *("-f", "hls", "-hls_time", "2", "-hls_list_size", "0", str(tmp_path / "cam.m3u8")),
        ],
        check=True,
        timeout=60,
    )
    with serve_directory(tmp_path) as port:
        reader = reader_of(camera(f"http://127.0.0.1:{port}/cam.m3u8", detect_fps=10))
        frames: list[Frame] = []
        wait_for(reader, CameraState.LIVE, 10, frames)
        frames += consume(reader, 1.0)
        assert len(frames) >= 5 and np.all(np.diff([f.pts for f in frames]) > 0)


def lags(frames: list[dict], edge: float) -> np.ndarray:
    """Seconds each frame was taken after its moment at the live edge (``edge``: taken - pts there)."""
    return np.array([f["taken"] - f["pts"] - edge for f in frames])


def test_readers_that_fell_behind_drop_the_backlog_unseen(perl: PerlRtsp) -> None:
    """A process stopped 3 s (as a reader short of CPU reads its socket late) finds 3 s of stream
    waiting in its UDP sockets. Both readers are back within max_lag at once: the full decoder skips
    to a keyframe once the frames already inside it are out, and stays no GOP behind (its frame
    threads hold keyframes back while it skips); the keyframes-only one decodes none of the late
    keyframes. What they skipped is counted."""
    perl.publish("plaza", gop=5, width=256)  # a keyframe every 0.5 s; 3 s of it fit a socket's buffer
    stream = {"transport": "udp", "stall_timeout": 10, "open_timeout": 5, "max_lag": 1.0}
    settings = {"url": perl.url("plaza"), "detect_fps": 10, "stream": stream}
    # two frame threads: a decoder holds one frame back, which comes out late after the pause
    cameras = {
        "full": {**settings, "decode": {"threads": 2}},
        "keys": {**settings, "decode": {"keyframes_only": True}},
    }
    probe = ReaderProcess(cameras, str(ROOT))
    try:
        probe.wait(lambda: len(probe.frames("full")) >= 10 and len(probe.frames("keys")) >= 4, 20, "frames")
        before = {c: probe.frames(c) for c in cameras}
        resumed = probe.pause(3.0)

        # three frames of each after resuming (1.5 s of keyframes; a keyframes-only reader's rests,
        # stream.read_interval, may hold one back 0.2 s past that on a loaded machine)
        def resumed_three() -> bool:
            return all(len([f for f in probe.frames(c) if f["taken"] > resumed]) >= 3 for c in cameras)

        probe.wait(resumed_three, 10, "three frames of each camera after resuming")
        for camera_id, late_frames in (("keys", 0), ("full", 2)):
            frames = probe.frames(camera_id)
            edge = min(lags(before[camera_id], 0.0))
            after = [f for f in frames if f["taken"] > resumed]
            lag = lags(after, edge)
            skipped = after[-1]["skipped"] - before[camera_id][-1]["skipped"]
            detail = f"{camera_id}: lags after resuming {np.round(lag, 2).tolist()}, skipped {skipped}"
            assert len(after) >= 3 and lag[-1] < 0.5, detail  # live again
            # late: the frame being handed over and the one held by frame threads when it stopped;
            # then at most max_lag, plus the time to decode and take a frame on a busy machine
            assert np.all(lag[late_frames:] < 1.0 + 0.6), detail
            expected = 2 if camera_id == "keys" else 15  # of 6 keyframes / 30 frames behind by 0-3 s
            assert skipped >= expected, detail
    finally:
        probe.close()


def test_a_reader_short_of_cpu_longer_than_the_stall_timeout_keeps_its_stream() -> None:
    """A reader stopped 4 s (short of CPU), with a stall timeout of 1.5 s, finds the stream waiting
    in its TCP socket: the camera did not stall, so the reader keeps its connection and goes on
    (it used to judge the first packet after the pause 4 s late, drop the connection and reopen it,
    which lost seconds of frames more, and with many cameras on a busy machine made storms of
    reconnects)."""
    server = GstRtsp().start()  # the sample clip: a keyframe every 2 s
    stream = {"transport": "tcp", "stall_timeout": 1.5, "open_timeout": 5}
    stream |= {"reconnect_initial": 0.25, "reconnect_max": 0.5}
    camera = {"url": server.url(), "detect_fps": 10, "stream": stream, "decode": {"keyframes_only": True}}
    probe = ReaderProcess({"keys": camera}, str(ROOT))
    try:
        probe.wait(lambda: len(probe.frames("keys")) >= 2, 20, "frames")
        resumed = probe.pause(4.0)
        probe.wait(lambda: any(f["taken"] > resumed + 1.5 for f in probe.frames("keys")), 10, "frames after")
        after = [f for f in probe.frames("keys") if f["taken"] > resumed]
        assert after[-1]["reconnects"] == 0, f"after resuming: {after}"
    finally:
        probe.close()
        server.close()


def test_a_reader_at_the_live_edge_rests_between_bursts_and_never_behind_it() -> None:
    """With ``read_interval``, a read that had to wait (the socket drained) of a packet at the live edge
    is followed by a rest that long, so that what comes meanwhile is read in one burst; behind the live
    edge the reader never rests (a backlog is read at full speed). Every frame still comes, in order."""
    server = GstRtsp().start()
    try:
        for behind, rests in ((0.0, True), (5.0, False)):
            stream = StreamConfig(transport="tcp", read_interval=0.3, max_lag=30)
            decoder = VideoDecoder("cam", SecretUrl(server.url()), DecodeConfig(threads=1), stream)
            pts: list[float | None] = []
            with decoder:
                decoder.follow_live_edge(lambda _pts, _now, lag=behind: lag, stream.max_lag)
                deadline = time.monotonic() + 1.2
                for _, at in decoder.frames():
                    pts.append(at)
                    if time.monotonic() > deadline:
                        break
            assert (decoder.rests > 0) is rests, f"{behind} s behind the live edge: {decoder.rests} rests"
            assert len(pts) >= 15 and np.all(np.diff(np.array(pts, float)) > 0)
    finally:
        server.close()


def test_a_keyframes_only_reader_rests_until_its_next_keyframe_is_due(
    reader_of: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once it has read two keyframes, a keyframes-only reader at the live edge rests until the next
    one is due (the sample: 2 s apart), at most half of max_lag at a time: a few wake-ups a GOP, not
    one every read_interval (0.2 s: 13 in two GOPs before), and no keyframe is read late for it (none
    skipped)."""
    rests: list[tuple[float, float]] = []

    class Clock:  # the decoder's time module, its rests recorded
        def __getattr__(self, name: str) -> object:
            return getattr(time, name)

        def sleep(self, seconds: float) -> None:
            rests.append((time.monotonic(), seconds))
            time.sleep(seconds)

    monkeypatch.setattr(decoder_module, "time", Clock())
    server = GstRtsp().start()
    try:
        stream = {"transport": "tcp", "max_lag": 1.0}
        config = {"url": server.url(), "detect_fps": 1, "stream": stream, "decode": {"keyframes_only": True}}
        reader = reader_of(CameraConfig.model_validate(config))
        taken: list[tuple[float, float]] = []  # when each keyframe was taken, and its lag then
        deadline = time.monotonic() + 20
        while len(taken) < 5 and time.monotonic() < deadline:
            if (frame := reader.take(timeout=0.05)) is not None:
                now = time.monotonic()
                taken.append((now, reader.clock.lag(frame.pts, now)))
        assert len(taken) == 5, taken
        last = [s for at, s in rests if taken[2][0] < at < taken[4][0]]  # the last two GOPs, 4 s
        detail = f"rests {np.round(last, 3).tolist()}, keyframes taken (at, lag) {taken}"
        assert len(last) <= 10, detail  # 0.5, 0.5, 0.5, the rest: four a GOP; 13 of 0.2 before
        assert max(last) > 0.3 and max(last) <= 0.5 + 1e-6, detail  # at most half of max_lag
        assert reader.health().frames_skipped == 0, detail
    finally:
        server.close()


def test_a_live_keyframes_only_stream_beats_its_heartbeat_often_enough_but_not_per_packet() -> None:
    """A keyframes-only reader skips 49 packets of every 50 (the sample: 25 fps, a keyframe every 2 s);
    each proved the stream alive, and was a call into the health monitor under its lock. On a live
    stream the beat comes at most every HEARTBEAT_EVERY s, and still between the keyframes: the stall
    watchdog sees the stream flowing a few times a second, whatever the GOP."""
    server = GstRtsp().start()
    try:
        beats: list[float] = []
        keyframes: list[float] = []
        stream = StreamConfig(transport="tcp", read_interval=0)  # every packet as it comes: 25 a second
        decoder = VideoDecoder(
            "cam", SecretUrl(server.url()), DecodeConfig(keyframes_only=True), stream, beats.append
        )
        with decoder:
            for _ in decoder.frames():
                keyframes.append(time.monotonic())
                if len(keyframes) == 3:  # two whole GOPs, 4 s
                    break
        between = [b for b in beats if keyframes[0] < b < keyframes[-1]]
        gaps = np.diff(between)
        assert len(between) >= 4, f"{len(between)} beats in 4 s"  # still at least one a second
        assert len(between) <= 4 / HEARTBEAT_EVERY + 2, f"{len(between)} beats in 4 s: one per packet"
        assert gaps.min() >= HEARTBEAT_EVERY * 0.99 and gaps.max() < 1.0, gaps  # stall_timeout: 5 s
    finally:
        server.close()
