"""Live streams' timeouts against real servers on 127.0.0.1 behind a proxy that is slow to answer
or goes silent (tests/ingest_servers.py): a slow open is waited for up to ``open_timeout``, while
a stream silent after the open is still reported stalled after ``stall_timeout``."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from vision.config import CameraConfig
from vision.ingest.health import CameraState
from vision.ingest.reader import CameraReader

from .conftest import SAMPLE, cli
from .ingest_servers import GstRtsp, MjpegServer, SlowProxy, free_port

STALL, OPEN = 1.0, 3.0  # seconds: the stall and open timeouts of these cameras
HOLD = 1.5  # seconds the proxy holds a server's first answer back: past STALL, within OPEN


def camera(url: str, **settings: float) -> CameraConfig:
    stream = {"transport": "tcp", "stall_timeout": STALL, "open_timeout": OPEN}
    stream |= {"reconnect_initial": 0.25, "reconnect_max": 0.5, **settings}
    return CameraConfig.model_validate({"url": url, "detect_fps": 5, "stream": stream})


@pytest.fixture(scope="module")
def rtsp() -> Iterator[GstRtsp]:
    server = GstRtsp()
    try:
        yield server.start()
    finally:
        server.close()


def states_until(readers: list[CameraReader], done: CameraState, timeout: float) -> list[list[CameraState]]:
    """The states each of ``readers`` went through (taking their frames) until all are ``done``; fails
    after ``timeout`` s."""
    seen = [[reader.state] for reader in readers]
    deadline = time.monotonic() + timeout
    while any(states[-1] is not done for states in seen):
        assert time.monotonic() < deadline, f"not all {done} after {timeout} s: {seen}"
        for reader, states in zip(readers, seen, strict=True):
            reader.take(timeout=0.01)
            if reader.state is not states[-1]:
                states.append(reader.state)
    return seen


def test_servers_slower_to_answer_than_the_stall_timeout_open_at_the_first_try(rtsp: GstRtsp) -> None:
    """RTSP (FFmpeg's socket timeout) and HTTP (rw_timeout) servers that hold their first answer back
    longer than the stall timeout, as a loaded camera or a hundred cameras opening at once do: the
    open waits up to the open timeout, so the first one succeeds (no reconnect, no offline flap)."""
    mjpeg = MjpegServer()
    proxies = [SlowProxy(rtsp.port, HOLD), SlowProxy(mjpeg.port, HOLD)]
    urls = [f"rtsp://127.0.0.1:{proxies[0].port}/cam", f"http://127.0.0.1:{proxies[1].port}/video.mjpg"]
    readers = [CameraReader(f"slow{i}", camera(url)).start() for i, url in enumerate(urls)]
    try:
        seen = states_until(readers, CameraState.LIVE, 15)
        for reader, states in zip(readers, seen, strict=True):
            health = reader.health()
            assert states == [CameraState.CONNECTING, CameraState.LIVE], (states, health)
            assert health.reconnects == 0 and health.last_error is None, health
    finally:
        for reader in readers:
            reader.stop()
        for reader in readers:
            reader.join(10)
        for proxy in proxies:
            proxy.close()
        mjpeg.close()


def test_a_stream_silent_after_the_open_is_stalled_at_the_stall_timeout_and_reopened(rtsp: GstRtsp) -> None:
    """The connection goes silent with its socket up: the camera is reported stalled after the stall
    timeout, while its read still waits (FFmpeg's socket timeout is the open timeout here, longer);
    when the read gives up (RTSP: at its second timeout, the first one only flushes the packets it
    held) the stream is reopened, and it is live again."""
    proxy = SlowProxy(rtsp.port)
    reader = CameraReader("silent", camera(f"rtsp://127.0.0.1:{proxy.port}/cam")).start()
    try:
        states_until([reader], CameraState.LIVE, 15)
        proxy.freeze()
        frozen = time.monotonic()
        states_until([reader], CameraState.STALLED, 10)
        stalled = time.monotonic() - frozen
        health = reader.health()
        assert health.reconnects == 0 and health.last_error is None, health  # the read still waits
        assert stalled + 0.05 >= STALL and stalled < OPEN, stalled  # the watchdog's, not the read's end
        deadline, states = frozen + 2 * OPEN + 5, set()
        while (health := reader.health()).reconnects == 0:
            assert time.monotonic() < deadline, f"not reopened: {health}"
            states.add(reader.state)
            reader.take(timeout=0.02)
        assert f"no data for {OPEN:g} s" in str(health.last_error), health
        assert states == {CameraState.STALLED}, states  # not live again on what FFmpeg held back
        frames = health.frames_in
        states_until([reader], CameraState.LIVE, 15)
        assert reader.health().frames_in > frames  # frames of the new connection
    finally:
        reader.stop()
        reader.join(10)
        proxy.close()


def test_a_reader_behind_the_live_edge_for_good_counts_every_packet_it_drops(rtsp: GstRtsp) -> None:
    """The link queues 1.5 s of stream and never drains it: every packet after is that far behind the
    live edge, past max_lag, so the reader drops them all unseen and hands over no frame. Its health
    counts them as they are dropped (it used to count them only when a frame was handed over: this
    camera showed 0 skipped while it skipped everything)."""
    proxy = SlowProxy(rtsp.port)
    reader = CameraReader("behind", camera(f"rtsp://127.0.0.1:{proxy.port}/cam", max_lag=0.5)).start()
    try:
        states_until([reader], CameraState.LIVE, 15)
        proxy.delay(1.5)
        deadline = time.monotonic() + 10
        while (health := reader.health()).frames_skipped == 0:  # what came before the delay is decoded
            assert time.monotonic() < deadline, f"nothing dropped: {health}"  # by the first packet it drops
            reader.take(timeout=0.05)  # (not a fixed wait: a reader short of CPU takes longer)
        decoded, deadline = health.frames_in, time.monotonic() + 10
        while (health := reader.health()).frames_skipped < 25:  # 1 s of the clip's packets
            assert time.monotonic() < deadline, f"the dropped packets are not counted: {health}"
            reader.take(timeout=0.05)
        assert health.frames_in == decoded and health.reconnects == 0, health  # all dropped, none seen
        reader.stop()
        assert reader.join(5), "a reader dropping every packet did not stop"  # no frame comes to tell it
    finally:
        reader.stop()
        reader.join(10)
        proxy.close()


def test_check_probe_reads_the_live_cameras_and_names_those_it_cannot(rtsp: GstRtsp, tmp_path: Path) -> None:
    """`check --probe`: a live camera's first frame sizes its plan; a closed port, a server that never
    answers and a missing file are each named with the reader's own reason, and check exits 1, all
    within the cameras' own timeouts. Without --probe the live cameras are not connected to."""
    silent = socket.socket()  # accepts connections (the kernel's backlog) and never says a word
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    closed = free_port()
    stream = {"transport": "tcp", "stall_timeout": STALL, "open_timeout": OPEN}
    cameras = {
        "live": rtsp.url(),
        "closed": f"rtsp://127.0.0.1:{closed}/x",
        "silent": f"rtsp://127.0.0.1:{silent.getsockname()[1]}/x",
        "gone": str(tmp_path / "gone.mp4"),
        "file": str(SAMPLE),
    }
    config = tmp_path / "cameras.yaml"
    config.write_text(
        yaml.safe_dump({"cameras": {k: {"url": url, "stream": stream} for k, url in cameras.items()}})
    )
    try:
        started = time.monotonic()
        probed = cli("check", config, "--probe", timeout=120)
        took = time.monotonic() - started
        plain = cli("check", config, timeout=120)
    finally:
        silent.close()
    lines = {line.split(":")[0].strip(): line for line in probed.stdout.splitlines()[2:]}
    assert probed.returncode == 1, probed.stdout + probed.stderr
    assert "detection 768x576: full, 1 inference(s) per frame" in lines["live"], lines["live"]
    assert "detection 768x576: full" in lines["file"]
    assert (
        f"not planned: camera closed: cannot open rtsp://127.0.0.1:{closed}/x: Connection refused"
        in (lines["closed"])
    )
    assert (
        f"not planned: camera silent: cannot open {cameras['silent']}: no answer in {OPEN:g} s"
        in (lines["silent"])
    ), lines["silent"]
    assert "not planned: camera gone: cannot open" in lines["gone"]
    assert took < OPEN + 60, took  # the probes at once, each bounded by its own timeouts (a loaded CI core)
    unprobed = {line.split(":")[0].strip(): line for line in plain.stdout.splitlines()[2:]}
    assert plain.returncode == 1  # the missing file
    for name in ("live", "closed", "silent"):
        assert "planned at the first frame (check --probe connects to it)" in unprobed[name], unprobed[name]
