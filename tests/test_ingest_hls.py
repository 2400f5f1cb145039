"""A live HLS camera against a real one on 127.0.0.1: ffmpeg writes a live playlist (1 s segments,
three listed) from the sample clip in real time, a plain HTTP server serves it. Its frames come
in bursts, a segment's worth at once and then nothing for a segment's duration."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import numpy as np
import pytest

from vision.config import CameraConfig
from vision.ingest.health import CameraState
from vision.ingest.reader import CameraReader
from vision.types import Frame

from .conftest import SAMPLE, need
from .ingest_servers import serve_directory

SEGMENT = 2.0  # seconds of each segment (ffmpeg's -hls_time), shorter than the stall timeout
FPS = 10  # the sample clip's
QUIET = 0.3  # seconds without a frame: a burst is over (the gap between bursts is about a segment)


@pytest.fixture(scope="module")
def playlist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a live HLS playlist written in real time, once its first segments are listed."""
    folder = tmp_path_factory.mktemp("hls")
    args = [
        *("ffmpeg", "-v", "error", "-re", "-stream_loop", "-1", "-i", str(SAMPLE), "-an"),
        *("-vf", "scale=256:-2", "-c:v", "libx264", "-preset", "ultrafast", "-threads", "1"),
        *("-g", str(round(SEGMENT * FPS)), "-f", "hls", "-hls_time", str(SEGMENT), "-hls_list_size", "3"),
        *("-hls_flags", "delete_segments", str(folder / "cam.m3u8")),
    ]
    try:
        writer = subprocess.Popen(args, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except FileNotFoundError:
        need("ffmpeg is missing: apt-get install -y ffmpeg")
    try:
        deadline, listed = time.monotonic() + 15, folder / "cam.m3u8"
        while not listed.exists() or "#EXTINF" not in listed.read_text():
            assert writer.poll() is None, writer.stderr.read() if writer.stderr else ""
            assert time.monotonic() < deadline, "ffmpeg wrote no live playlist in 15 s"
            time.sleep(0.1)
        with serve_directory(folder) as port:
            yield f"http://127.0.0.1:{port}/cam.m3u8"
    finally:
        writer.kill()
        writer.wait(10)


def test_hls_bursts_are_live_newest_frame_and_stamped_by_the_stream(playlist: str) -> None:
    """Segments shorter than the stall timeout: no stall between bursts, and no frame of a burst
    dropped as behind the live edge (a burst's first frames are a segment old when they come: the
    source's pace, not a reader behind); frames within a burst, decoded in milliseconds, are a frame
    interval apart in stream time; and the pipeline gets the newest frame, no backlog."""
    stream = {"stall_timeout": 2 * SEGMENT, "open_timeout": 5, "reconnect_initial": 0.25, "reconnect_max": 1}
    config = CameraConfig.model_validate({"url": playlist, "detect_fps": FPS, "stream": stream})
    reader = CameraReader("hls", config).start()
    try:
        deadline = time.monotonic() + 15
        while reader.state is not CameraState.LIVE:
            assert time.monotonic() < deadline, f"not live after 15 s: {reader.health()}"
            reader.take(timeout=0.05)
        start = reader.health()
        frames: list[Frame] = []
        states: set[CameraState] = set()
        began = time.monotonic()
        while time.monotonic() - began < 2.5 * SEGMENT:
            states.add(reader.state)
            if (frame := reader.take(timeout=0.01)) is not None:
                frames.append(frame)
        took = time.monotonic() - began
        health = reader.health()
        # newest frame only: untaken through the next burst, its frames replace each other
        while reader.health().frames_in < health.frames_in + 5:
            assert time.monotonic() - began < took + 2 * SEGMENT, f"no burst: {reader.health()}"
            time.sleep(0.05)
        # the rest of the burst (milliseconds to decode, longer on a loaded machine): taken once no frame
        # came for QUIET seconds, in the segment-long gap before the next burst
        seen, calm = reader.health().frames_in, time.monotonic()
        while time.monotonic() - calm < QUIET:
            assert time.monotonic() - began < took + 3 * SEGMENT, f"no gap between bursts: {reader.health()}"
            time.sleep(0.02)
            if (now := reader.health().frames_in) != seen:
                seen, calm = now, time.monotonic()
        newest, after = reader.take(), reader.health()
    finally:
        reader.stop()
        reader.join(10)
    detail = f"{health}, states {states}"
    assert states == {CameraState.LIVE} and health.reconnects == start.reconnects, detail
    decoded = health.frames_in - start.frames_in
    assert health.frames_skipped == 0 and decoded >= (took - 2 * SEGMENT) * FPS, detail  # all decoded
    pts = np.array([f.pts for f in frames])
    captured = np.array([f.captured for f in frames])
    assert np.all(np.diff(pts) > 0) and pts[-1] - pts[0] == pytest.approx(took, abs=2 * SEGMENT), detail
    in_burst = np.diff(captured) < 0.2 / FPS  # taken one after another as they were decoded
    steps = np.diff(pts)[in_burst]
    assert len(steps) >= 3, f"no bursts: {np.round(np.diff(captured), 3).tolist()}"
    assert np.all(steps >= 0.9 / FPS), steps  # the stream's steps, not the milliseconds between decodes
    assert newest is not None and newest.pts == after.last_frame_pts and reader.take() is None, after
    assert after.frames_dropped >= health.frames_dropped + 4, after
