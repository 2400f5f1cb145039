"""Camera readers on files: as fast as possible without drops, paced like a camera, looped, broken."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from vision.config import CameraConfig
from vision.ingest.health import CameraState
from vision.ingest.reader import CameraReader
from vision.types import Frame

from .conftest import SAMPLE


def camera(url: Path | str, **settings: object) -> CameraConfig:
    return CameraConfig.model_validate({"url": str(url), **settings})


def read_all(reader: CameraReader, limit: float = 60.0) -> list[Frame]:
    """Every frame of a fast reader, bounded in time."""
    frames: list[Frame] = []
    deadline = time.monotonic() + limit
    while not reader.done and time.monotonic() < deadline:
        frame = reader.take(timeout=1.0)
        if frame is not None:
            frames.append(frame)
    assert reader.done, "the reader did not finish in time"
    return frames


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 3 s of the sample clip (keyframes at 0 and 2 s)."""
    out = tmp_path_factory.mktemp("clips") / "short.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(SAMPLE), "-t", "3", "-c", "copy", "-y", str(out)],
        check=True,
        timeout=60,
    )
    return out


def test_fast_file_gives_every_due_frame_in_order_and_the_same_each_time() -> None:
    runs = []
    for _ in range(2):
        reader = CameraReader("plaza", camera(SAMPLE, detect_fps=5)).start()
        frames = read_all(reader)
        runs.append([f.pts for f in frames])
        health = reader.health()
        assert health.state is CameraState.ENDED and health.last_error is None
        assert (health.frames_in, health.frames_out, health.frames_dropped) == (400, 200, 0)
    assert runs[0] == runs[1] and len(runs[0]) == 200
    assert np.all(np.diff(runs[0]) == pytest.approx(0.2))
    assert frames[0].image.shape == (576, 768, 3)


def test_scaled_output_and_keyframes_only() -> None:
    reader = CameraReader("plaza", camera(SAMPLE, detect_fps=5, decode={"width": 320})).start()
    frames = read_all(reader)
    assert len(frames) == 200 and frames[0].image.shape == (240, 320, 3)
    keys = CameraReader("plaza", camera(SAMPLE, detect_fps=5, decode={"keyframes_only": True})).start()
    frames = read_all(keys)
    assert [f.pts for f in frames] == pytest.approx([2.0 * i for i in range(20)])  # one keyframe per 2 s
    assert keys.health().frames_in == 20


def test_realtime_file_is_paced_by_its_clock_and_a_slow_consumer_gets_the_newest_frame() -> None:
    reader = CameraReader("plaza", camera(SAMPLE, detect_fps=10, realtime=True)).start()
    try:
        start = time.monotonic()
        first = reader.take(timeout=5.0)
        assert first is not None and first.pts == 0.0
        late = []
        for _ in range(3):
            time.sleep(0.7)  # a consumer far slower than 10 fps
            frame = reader.take(timeout=1.0)
            late.append(frame.pts - (time.monotonic() - start))
        assert all(abs(lag) < 0.35 for lag in late), late  # always the newest: the lag does not grow
        health = reader.health()
        assert health.state is CameraState.LIVE and health.frames_dropped >= 10
        assert health.lag is not None and health.lag < 0.35
        assert health.last_frame_time == pytest.approx(time.time(), abs=1.0)
    finally:
        reader.stop()
        assert reader.join(5.0)


def test_realtime_file_ends_or_loops_with_the_clock_running_on(short_clip: Path) -> None:
    once = CameraReader("a", camera(short_clip, detect_fps=5, realtime=True)).start()
    looped = CameraReader("b", camera(short_clip, detect_fps=5, realtime=True, loop=True)).start()
    try:
        loop_pts: list[float] = []
        deadline = time.monotonic() + 10
        while not once.done and time.monotonic() < deadline:
            once.take(timeout=0.1)
            if (frame := looped.take(timeout=0.0)) is not None:
                loop_pts.append(frame.pts)
        assert once.done and once.health().state is CameraState.ENDED
        time.sleep(1.0)
        tail = looped.take(timeout=1.0)
        assert tail is not None and tail.pts > 3.5  # past the end of the 3-s clip
        assert np.all(np.diff([*loop_pts, tail.pts]) > 0)  # monotonic across the restart
        assert looped.health().state is CameraState.LIVE
    finally:
        looped.stop()
        assert looped.join(5.0)


def test_broken_and_missing_files_fail_clearly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 500)
    damaged = tmp_path / "damaged.mp4"
    data = bytearray(SAMPLE.read_bytes())
    data[600_000:900_000] = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    damaged.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        readers = {
            name: CameraReader(name, camera(path, detect_fps=2)).start()
            for name, path in (("garbage", garbage), ("damaged", damaged), ("missing", tmp_path / "no.mp4"))
        }
        frames = {name: read_all(reader) for name, reader in readers.items()}
    health = {name: reader.health() for name, reader in readers.items()}
    assert frames["garbage"] == [] and health["garbage"].state is CameraState.OFFLINE
    assert "cannot open" in health["garbage"].last_error and "garbage.mp4" in health["garbage"].last_error
    assert "No such file" in health["missing"].last_error
    assert 60 <= len(frames["damaged"]) < 80 and health["damaged"].state is CameraState.ENDED
    assert "corrupt packets, skipped" in caplog.text


def test_a_looping_file_resumes_where_a_camera_would_be() -> None:
    """A restarted camera stand-in (a looping file in real time) starts where it would have got to: the
    picture at that point of its content, wrapped around its length; a file played once starts over."""
    import av

    with av.open(str(SAMPLE)) as container:  # the reference: the clip's frame at 23.1 s by PyAV alone
        stream = container.streams.video[0]
        wanted = next(
            f.to_ndarray(format="bgr24")
            for f in container.decode(stream)
            if f.pts * float(stream.time_base) >= 23.1 - 1e-3
        )
    looped = CameraReader("a", camera(SAMPLE, detect_fps=25, realtime=True, loop=True))
    looped.resume(40.0 + 23.1)  # the 40-s clip once round, then 23.1 s into it
    once = CameraReader("b", camera(SAMPLE, detect_fps=25, realtime=True))
    once.resume(23.1)
    looped.start(), once.start()
    try:
        first = looped.take(timeout=10.0)
        assert first is not None and abs(looped.position() - 23.1) < 0.05
        assert np.abs(first.image.astype(int) - wanted.astype(int)).mean() < 2.0  # the same picture
        start = once.take(timeout=10.0)
        assert start is not None and once.position() is None
        assert np.abs(start.image.astype(int) - wanted.astype(int)).mean() > 2.0  # from its beginning
    finally:
        for reader in (looped, once):
            reader.stop()
            assert reader.join(5.0)
