"""Several inference threads: how the CPU is split between model calls, and that the pipeline keeps every
camera's frames in order and finds the same boxes as with one thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from vision.config import DetectorConfig, parse_config
from vision.detect.card import load_card
from vision.detect.detector import Detector
from vision.detect.threads import CpuSplit, cores, split
from vision.pipeline import Pipeline
from vision.store import Store
from vision.types import Detections, Frame

from .conftest import ROOT


def test_on_the_cpu_one_single_threaded_call_per_core_by_default() -> None:
    assert split(None, 0, "cpu", "onnx", 4) == CpuSplit(4, 1)
    assert split(None, 0, "cpu", "onnx", 1) == CpuSplit(1, 0)  # one call: ONNX Runtime's own choice
    assert split(2, 0, "cpu", "onnx", 8) == CpuSplit(2, 4)  # the cores shared out between the calls
    assert split(3, 0, "cpu", "onnx", 2) == CpuSplit(3, 1)  # at least one thread each
    assert split(None, 2, "cpu", "onnx", 8) == CpuSplit(8, 2)  # threads as configured
    assert split(1, 0, "cpu", "onnx", 8) == CpuSplit(1, 0)  # one call over every core, as before
    # a camera's frames are detected in turn: fewer cameras than cores get their share of the cores
    assert split(None, 0, "cpu", "onnx", 8, cameras=1) == CpuSplit(1, 0)
    assert split(None, 0, "cpu", "onnx", 8, cameras=3) == CpuSplit(3, 2)
    assert split(None, 0, "cpu", "onnx", 8, cameras=20) == CpuSplit(8, 1)


def test_a_gpu_and_ultralytics_take_one_call_at_a_time() -> None:
    assert split(None, 0, "cuda", "onnx", 8) == CpuSplit(1, 0)
    assert split(2, 0, "tensorrt", "onnx", 8) == CpuSplit(2, 0)  # asked for: calls overlap their copies
    assert split(None, 0, "cpu", "ultralytics", 8) == CpuSplit(1, 0)
    with pytest.raises(ValidationError, match="parallel is 2, but the ultralytics backend takes one call"):
        DetectorConfig(backend="ultralytics", parallel=2)


def test_the_configured_detector_runs_its_calls_on_one_thread_each() -> None:
    """On this machine's cores: as many calls as cores, each session call on one intra-op thread."""
    available = cores()
    detector = Detector.from_config(DetectorConfig())
    options = detector.engine.model.session.get_session_options()  # type: ignore[attr-defined]
    assert detector.parallel == available
    assert options.intra_op_num_threads == (1 if available > 1 else 0)
    for one in (
        Detector.from_config(DetectorConfig(parallel=1)),
        Detector.from_config(DetectorConfig(), cameras=1),
    ):
        assert one.parallel == 1
        assert one.engine.model.session.get_session_options().intra_op_num_threads == 0  # type: ignore[attr-defined]


def run(parallel: int, data: Path) -> tuple[dict[str, list[tuple[float, np.ndarray]]], set[str]]:
    """Three file cameras through the pipeline with ``parallel`` inference threads: each camera's
    (pts, boxes) in the order its lane analysed them, and the threads that called the detector."""
    cameras = "".join(
        f"  {name}:\n    url: {ROOT / 'sample_videos' / clip}.mp4\n    detect_fps: 0.25\n"
        "    decode: {keyframes_only: true, width: 384}\n    motion_gate: {enabled: false}\n"
        for name, clip in (("a", "plaza"), ("b", "litter"), ("c", "plaza"))
    )
    config = parse_config(f"cameras:\n{cameras}storage: {{data_dir: {data}}}\n")
    detector = Detector(load_card("default"), threads=1, min_score=0.4, parallel=parallel)
    seen: dict[str, list[tuple[float, np.ndarray]]] = {"a": [], "b": [], "c": []}
    names: set[str] = set()

    def detected(frame: Frame, detections: Detections) -> None:
        seen[frame.camera_id].append((frame.pts, detections.xyxy.copy()))

    def inferred(seconds: float, frames: int) -> None:
        names.add(threading.current_thread().name)

    store = Store(data, "test")
    try:
        Pipeline(config, detector, store, on_detections=detected, on_inference=inferred).run()
    finally:
        store.close()
    return seen, names


def test_two_inference_threads_keep_each_cameras_frames_in_order_and_find_the_same(tmp_path: Path) -> None:
    two, threads = run(2, tmp_path / "two")
    assert threads == {"inference-1", "inference-2"}  # both detected frames
    one, thread = run(1, tmp_path / "one")
    assert thread == {"inference"}
    for camera in "abc":
        pts = [p for p, _ in two[camera]]
        assert len(pts) >= 8 and pts == sorted(pts), camera  # every frame, in order
        assert pts == [p for p, _ in one[camera]], camera
        for (_, a), (_, b) in zip(two[camera], one[camera], strict=True):
            np.testing.assert_allclose(a, b, atol=1e-3)


def test_more_cameras_than_cores_run_opencv_without_its_pool_and_get_the_same_pixels() -> None:
    import cv2

    from vision.pipeline import opencv_threads

    capture = cv2.VideoCapture(str(ROOT / "sample_videos" / "litter.mp4"))
    ok, image = capture.read()
    assert ok

    def work() -> list[np.ndarray]:
        """What the analysis lanes ask of OpenCV: the litter model's shrink and blur, its blobs."""
        small = cv2.resize(image, (331, 243), interpolation=cv2.INTER_AREA)
        grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0)
        labels = cv2.connectedComponentsWithStats((grey > 100).astype(np.uint8), connectivity=8)[1]
        return [small, grey, labels]

    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(2)
        pooled = work()
        opencv_threads(cores())  # no more cameras than cores: left as it was
        assert cv2.getNumThreads() == 2
        opencv_threads(cores() + 1)
        assert cv2.getNumThreads() == 1
        assert all(np.array_equal(a, b) for a, b in zip(pooled, work(), strict=True))
    finally:
        cv2.setNumThreads(before)


def test_a_gather_takes_only_from_the_live_cameras_that_handed_a_frame_over(tmp_path: Path) -> None:
    """At many cameras a gather must not take from every reader (a lock each): a live camera whose
    reader handed nothing over since its last take is passed over, one that did is taken from once."""
    cameras = "".join(f"  c{i}:\n    url: rtsp://127.0.0.1:9/c{i}\n    detect_fps: 0.5\n" for i in range(4))
    config = parse_config(f"cameras:\n{cameras}storage: {{data_dir: {tmp_path}}}\n")
    store = Store(tmp_path, "test")
    try:
        pipeline = Pipeline(config, Detector(load_card("default"), threads=1, parallel=1), store)
        taken: list[str] = []
        for camera_id, worker in pipeline.workers.items():
            take = worker.reader.take
            worker.reader.take = lambda timeout, take=take, camera_id=camera_id: (  # type: ignore[method-assign]
                taken.append(camera_id) or take(timeout)
            )
        image = np.zeros((36, 64, 3), np.uint8)
        pipeline.workers["c2"].reader._handoff.put(Frame("c2", 1.0, image))  # as its reader hands over
        gathered = pipeline.inference.gather(4)
        assert gathered is not None and [(w.camera_id, f.pts) for w, f, _ in gathered] == [("c2", 1.0)]
        assert taken == ["c2"]
        for worker, _, _ in gathered:
            worker.inferring = False
        assert pipeline.inference.gather(4) == [] and taken == ["c2"]  # nothing handed over since: none taken
        for camera_id in ("c0", "c1", "c2"):
            pipeline.workers[camera_id].reader._handoff.close()  # a reader that ends hands its end over
        assert pipeline.inference.gather(4) == [] and taken == ["c2"]  # c3 still runs
        pipeline.workers["c3"].reader.stop()
        assert pipeline.inference.gather(4) is None  # all ended or stopped: the run ends
    finally:
        store.close()


def live(data: Path, cameras: int, batch_wait: float, realtime: int | None = None) -> str:
    """A config of ``cameras`` plaza cameras, the first ``realtime`` of them (default all) read in real
    time, every frame due for the detector (4/s, no motion gate), with ``detector.batch_wait``."""
    realtime = cameras if realtime is None else realtime
    clip = ROOT / "sample_videos" / "plaza.mp4"
    text = "".join(
        f"  c{i}:\n    url: {clip}\n    detect_fps: 4\n    decode: {{width: 384}}\n"
        f"    motion_gate: {{enabled: false}}\n"
        + ("    realtime: true\n    loop: true\n" if i < realtime else "")
        for i in range(cameras)
    )
    return f"cameras:\n{text}detector: {{batch_wait: {batch_wait}}}\nstorage: {{data_dir: {data}}}\n"


def test_live_cameras_with_a_batch_wait_share_fewer_calls_that_start_at_most_that_often(
    tmp_path: Path,
) -> None:
    """``detector.batch_wait``: the inference thread's rounds start that far apart, so the frames that fall
    due in between (16 a second here) come to it as one batch: few calls, several frames each."""
    store = Store(tmp_path, "test")
    calls: list[int] = []
    try:
        detector = Detector(load_card("default"), threads=1, parallel=1)
        pipeline = Pipeline(
            parse_config(live(tmp_path, 4, 0.5)),
            detector,
            store,
            on_inference=lambda seconds, frames: calls.append(frames),
        )
        assert pipeline.inference.batch_wait() == 0.5
        started = time.monotonic()
        pipeline.run(max_seconds=4.0)
        seconds = time.monotonic() - started
    finally:
        store.close()
    # a round every 0.5 s at most, the run's end included (without the wait: about one call a frame)
    assert len(calls) <= seconds / 0.5 + 1, (len(calls), seconds)
    assert sum(calls) >= 16 and sum(calls) / len(calls) >= 3.0, calls  # each round: the 4 cameras' frames


def test_files_read_as_fast_as_possible_are_never_made_to_wait(tmp_path: Path) -> None:
    """A file read as fast as possible must not be slowed by ``batch_wait``: with one such camera among
    live ones, no thread waits (an evaluation replays at full speed, its results the same)."""
    store = Store(tmp_path, "test")
    try:
        detector = Detector(load_card("default"), threads=1, parallel=1)
        for realtime, wait in ((2, 1.0), (1, 0.0), (0, 0.0)):
            pipeline = Pipeline(parse_config(live(tmp_path, 2, 1.0, realtime)), detector, store)
            assert pipeline.inference.batch_wait() == wait, realtime
    finally:
        store.close()
    with pytest.raises(ValidationError, match="batch_wait"):
        DetectorConfig(batch_wait=-0.1)
