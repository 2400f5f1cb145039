"""detect_url substreams: detection on the small stream, a transition's pictures from the main one (its
boxes scaled), the detection frame when the main stream gives nothing in time; never a password."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from vision.config import ConfigError, parse_config

from .conftest import SAMPLE, cli
from .ingest_servers import PerlRtsp

ZONE = """\
    zones:
      all:
        polygon: [[0, 0], [1, 0], [1, 1], [0, 1]]
        rules:
          crowd: {enter_count: 2, exit_count: 1, window: 1, min_duration: 1, close_after: 1}
"""


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 6 s of the sample as it is (768x576, the main stream) and at half size (the substream)."""
    folder = tmp_path_factory.mktemp("clips")
    ffmpeg = ["ffmpeg", "-v", "error", "-y", "-i", str(SAMPLE), "-t", "6"]
    subprocess.run([*ffmpeg, "-c", "copy", str(folder / "main.mp4")], check=True)
    subprocess.run(
        [
            *ffmpeg,
            "-vf",
            "scale=384:-2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "10",
            str(folder / "sub.mp4"),
        ],
        check=True,
    )
    return folder


def pair(tmp_path: Path, main: Path, sub: Path) -> Path:
    """A config of one camera whose main stream is ``main`` and substream ``sub``, files."""
    config = tmp_path / "pair.yaml"
    config.write_text(
        f"cameras:\n  plaza:\n    url: {main}\n    detect_url: {sub}\n    detect_fps: 2\n{ZONE}"
        f"detector:\n  classes: [person]\nstorage:\n  data_dir: {tmp_path / 'data'}\n"
    )
    return config


def run(config: Path, *args: str) -> tuple[list[dict], subprocess.CompletedProcess[str]]:
    result = cli("run", config, "--jsonl", "--stats-every", "0", *args, timeout=120)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()], result


def events(lines: list[dict], camera: str) -> list[dict]:
    return [r for r in lines if r["kind"] == "event" and r["event"]["camera"] == camera]


def analysed_per_window(lines: list[dict], camera: str, until: float) -> list[int]:
    """The camera's frames analysed in each stats window that ended within ``until`` seconds of the
    run, from the first window that had any (the run's end may wait for a main stream)."""
    stats = [r for r in lines if r["kind"] == "stats"]
    ends = np.cumsum([r["interval"] for r in stats])
    windows = [r["cameras"][camera] for r, end in zip(stats, ends, strict=True) if end <= until]
    outs = [window["frames_analysed"] for window in windows]
    return outs[next((i for i, n in enumerate(outs) if n), len(outs)) :]


def main_frame(path: Path, pts: float) -> np.ndarray:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time >= pts - 1e-3:
                return frame.to_ndarray(format="bgr24")
    raise AssertionError(f"no frame at {pts}")


def test_file_pair_detects_on_the_substream_and_keeps_the_main_streams_picture(
    clips: Path, tmp_path: Path
) -> None:
    lines, _ = run(pair(tmp_path, clips / "main.mp4", clips / "sub.mp4"))
    health = lines[-1]["cameras"]["plaza"]["health"]
    assert health["source"] == str(clips / "sub.mp4")  # the substream is what is read for detection
    opened = events(lines, "plaza")[0]
    assert opened["transition"] == "open"
    shots = opened["snapshots"]
    assert (shots["source"], shots["width"], shots["height"]) == ("main", 768, 576) and "note" not in shots
    boxes = np.array([b["box"] for b in opened["boxes"]])
    assert len(boxes) >= 2 and boxes[:, [0, 2]].max() <= 384 and boxes[:, [1, 3]].max() <= 288  # substream px
    clean = cv2.imread(str(tmp_path / "data" / shots["clean"]))
    annotated = cv2.imread(str(tmp_path / "data" / shots["annotated"]))
    assert clean.shape == annotated.shape == (576, 768, 3)
    # the main stream's own frame at the transition's time, not the substream's blown up
    assert np.abs(clean.astype(int) - main_frame(clips / "main.mp4", opened["pts"])).mean() < 3
    for x1, y1, x2, y2 in np.round(boxes * 2).astype(int):  # each box drawn where it is in the main picture
        b, g, r = annotated[y1, (x1 + x2) // 2].astype(int)
        assert r > 150 and b < 130 and g < 130, (x1, y1, x2, y2, (b, g, r))


def test_a_main_stream_that_cannot_give_a_frame_falls_back_to_the_detection_frame(
    clips: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "main.mp4"
    broken.write_text("not a video")
    lines, result = run(pair(tmp_path, broken, clips / "sub.mp4"))
    shots = events(lines, "plaza")[0]["snapshots"]
    assert (shots["source"], shots["width"], shots["height"]) == ("detect", 384, 288)
    assert shots["note"].startswith(f"camera plaza: cannot open {broken}")
    assert cv2.imread(str(tmp_path / "data" / shots["clean"])).shape == (288, 384, 3)
    assert "snapshots from the detection frame" in result.stderr


def test_detect_url_is_of_the_same_kind_and_may_hold_env_references() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("cameras:\n  a:\n    url: rtsp://cam/main\n    detect_url: sub.mp4\n", "t.yaml", {})
    assert info.value.problems == [
        "cameras.a: detect_url and url must be of one kind: both streams (rtsp://, http://) or both files "
        "(line 2)"
    ]
    camera = parse_config(
        "cameras:\n  a:\n    url: rtsp://u:${PW}@cam/main\n    detect_url: rtsp://u:${PW}@cam/sub\n",
        "t.yaml",
        {"PW": "Sub-Pass-93"},
    ).cameras["a"]
    assert str(camera.detect_url) == "rtsp://u:***@cam/sub" and camera.source is camera.detect_url
    assert camera.detect_url.get_secret_value() == "rtsp://u:Sub-Pass-93@cam/sub"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never answers: a main stream that hangs."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_two_rtsp_streams_of_one_clip_and_a_main_stream_that_hangs(tmp_path: Path, silent_port: int) -> None:
    """good: main 640x480 and substream 320x240 of one clip; hung: its main stream never answers;
    plain: the substream alone, which goes on at its fps while the others wait for their pictures."""
    server = PerlRtsp().start()
    try:
        server.publish("main", gop=10, width=640)
        server.publish("sub", gop=10, width=320)
        password = "Sub-Pass-93"
        main, sub = server.url("main", f"viewer:{password}@"), server.url("sub", f"viewer:{password}@")
        stream = "    detect_fps: 2\n    stream: {transport: udp, snapshot_timeout: %g}\n"
        config = tmp_path / "rtsp.yaml"
        config.write_text(
            f"cameras:\n  good:\n    url: {main}\n    detect_url: {sub}\n{stream % 5}{ZONE}"
            f"  hung:\n    url: rtsp://viewer:{password}@127.0.0.1:{silent_port}/main\n"
            f"    detect_url: {sub}\n{stream % 4}{ZONE}"
            f"  plain:\n    url: {sub}\n{stream % 3}"
            f"detector:\n  classes: [person]\nstorage:\n  data_dir: {tmp_path / 'data'}\n"
        )
        lines, result = run(config, "--max-seconds", "10", "--stats-every", "2")
    finally:
        server.close()
    assert password not in result.stdout + result.stderr
    good, hung = events(lines, "good")[0], events(lines, "hung")[0]
    shots = good["snapshots"]
    assert (shots["source"], shots["width"], shots["height"]) == ("main", 640, 480), shots
    assert cv2.imread(str(tmp_path / "data" / shots["clean"])).shape == (480, 640, 3)
    shots = hung["snapshots"]
    assert (shots["source"], shots["width"], shots["height"]) == ("detect", 320, 240)
    assert shots["note"] == "the main stream gave no frame in 4 s"
    for event in (good, hung):
        boxes = np.array([b["box"] for b in event["boxes"]])
        assert boxes[:, [0, 2]].max() <= 320 and boxes[:, [1, 3]].max() <= 240  # detected on the substream
    # nobody waited for the pictures but the cameras they are for: plain analysed frames in every 2 s
    # (a pipeline that waited 4 s for hung's picture would leave one of them empty); the windows that
    # ended within the run's 10 s (the ticker starts first): not those of its end, which waits up to 3 s
    # for hung's main stream, still opening, before leaving it
    seeing = analysed_per_window(lines, "plain", 10)
    assert len(seeing) >= 2 and min(seeing) >= 1, seeing


def test_a_run_whose_cameras_are_stuck_opening_ends_cleanly_without_waiting_for_them(
    tmp_path: Path, silent_port: int
) -> None:
    """A camera and a main stream that never answer: both threads are still in FFmpeg's open (60 s
    allowed) when the run ends. The process ends at once with the run's code, its output whole, and
    says which threads it left; it does not finalize the interpreter under them (PyAV's open-timeout
    callback then took a GIL that was gone: SIGSEGV at exit, vision/ingest/abandoned.py)."""
    dead = f"rtsp://127.0.0.1:{silent_port}"
    server = PerlRtsp().start()
    try:
        server.publish("sub", gop=10, width=320)
        config = tmp_path / "stuck.yaml"
        config.write_text(
            f"cameras:\n  dead:\n    url: {dead}/x\n    stream: {{transport: tcp, open_timeout: 60}}\n"
            f"  pair:\n    url: {dead}/main\n    detect_url: {server.url('sub')}\n    detect_fps: 2\n"
            f"    stream: {{transport: udp, open_timeout: 60, snapshot_timeout: 1}}\n{ZONE}"
            f"detector:\n  classes: [person]\nstorage:\n  data_dir: {tmp_path / 'data'}\n"
        )
        lines, result = run(config, "--max-seconds", "10")
    finally:
        server.close()
    left = "ending without waiting for camera-dead, main-pair: still in a stream's open or read"
    assert left in result.stderr, result.stderr
    assert lines[-1]["kind"] == "summary" and lines[-1]["cameras"]["pair"]["frames_detected"] > 0, lines[-1]
    opened = events(lines, "pair")
    assert opened and opened[0]["snapshots"]["note"] == "the main stream gave no frame in 1 s", opened[:1]


def test_a_main_stream_closed_serves_what_was_asked_then_its_thread_ends(clips: Path) -> None:
    """close(): an idle thread ends at once; one with requests queued serves them first (their waiters
    get their pictures), then ends; a main stream never asked never started a thread."""
    from vision.config import CameraConfig
    from vision.ingest.mainstream import MainStream

    camera = CameraConfig.model_validate(
        {"url": str(clips / "main.mp4"), "detect_url": str(clips / "sub.mp4")}
    )
    never = MainStream("never", camera)
    never.close()
    assert never.join(0.0)
    main = MainStream("pair", camera)
    asked = [main.request(pts) for pts in (0.5, 1.0, 1.5)]
    main.close()
    assert main.join(30)
    assert [future.result(0).shape for future in asked] == [(576, 768, 3)] * 3
    idle = MainStream("idle", camera)
    idle.request(0.5).result(30)
    idle.close()
    assert idle.join(5)
