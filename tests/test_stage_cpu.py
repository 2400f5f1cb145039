"""benchmarks/stage_cpu.py: threads' CPU time read from /proc, charged to stages by thread name and by
timed sections, on real threads that spin (identities between measured figures, no timed bounds)."""

from __future__ import annotations

import gc
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import stage_cpu  # noqa: E402  (a benchmark's module)
from stage_cpu import Stages, group, installed, summary, task_cpu, thread_stage  # noqa: E402

from vision.ingest.decoder import VideoDecoder  # noqa: E402
from vision.track.tracker import Tracker  # noqa: E402

SPIN = 0.05  # CPU seconds each thread burns in each part


def spin(seconds: float = SPIN) -> None:
    """Burn ``seconds`` of this thread's CPU time."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_proc_gives_a_live_thread_its_start_and_cpu_and_nothing_once_it_ended() -> None:
    seen: dict[str, object] = {}
    go = threading.Event()

    def work() -> None:
        spin(0.1)
        seen["own"] = time.thread_time()
        seen["proc"] = task_cpu(threading.get_native_id())
        go.wait()

    thread = threading.Thread(target=work)
    thread.start()
    while "proc" not in seen:
        time.sleep(0.01)
    start, cpu = seen["proc"]  # type: ignore[misc]
    assert start > 0
    assert 0 < cpu <= seen["own"] + 0.02  # clock ticks of 10 ms, never ahead of the thread's own clock
    go.set()
    thread.join()
    for _ in range(500):  # the kernel's task outlives the Python thread's join for a moment
        if task_cpu(thread.native_id) is None:
            break
        time.sleep(0.01)
    assert task_cpu(thread.native_id) is None


def test_threads_are_charged_by_name_and_sections_exclusively() -> None:
    stages = Stages()
    timed = stages.timed("tracker", spin)
    outer = stages.timed("rules", lambda: (spin(), timed()))  # the tracker's time is its own
    spent: dict[str, float] = {}

    def analysis() -> None:
        spin()
        outer()
        spent["analysis"] = time.thread_time()

    def reader() -> None:
        spin()
        spent["reader"] = time.thread_time()

    # a garbage collection is charged to whichever thread sets it off: one between ``spent`` and a thread's
    # end (a worker that ran other tests first holds many objects) put 1 ms on a reader in a CI run
    gc.disable()
    try:
        with installed(stages):
            before = stages.snapshot()
            threads = [
                threading.Thread(target=analysis, name="analysis-1"),
                threading.Thread(target=reader, name="camera-cam0"),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds = Stages.between(before, stages.snapshot())
    finally:
        gc.enable()
    assert seconds["tracker"] >= SPIN and seconds["rules"] >= SPIN
    # ended threads count their own clock as they end (a moment after ``spent``): sections plus the rest
    rest = spent["analysis"] - seconds["tracker"] - seconds["rules"]
    assert seconds["analysis lanes (other)"] == pytest.approx(rest, abs=1e-3)
    assert seconds["readers (other)"] == pytest.approx(spent["reader"], abs=1e-3)
    assert (
        thread_stage(None) == "native threads" and thread_stage("inference-2") == "inference threads (other)"
    )
    assert [group(s) for s in ("tracker", "decode (libav)", "store: SQL", "native threads")] == [
        "analysis",
        "decode",
        "store",
        "other",
    ]


def test_the_pipelines_calls_are_wrapped_while_installed_and_restored_after() -> None:
    update = Tracker.__dict__["update"]
    with installed(Stages()) as stages:
        assert Tracker.__dict__["update"] is not update
        assert not stages.missing  # every section names a real method
    assert Tracker.__dict__["update"] is update


def test_a_decoder_charges_demux_and_decode_apart() -> None:
    from vision.config import DecodeConfig
    from vision.secrets import SecretUrl

    stages = Stages()
    with installed(stages):
        before = stages.snapshot()
        with VideoDecoder(
            "cam", SecretUrl(str(ROOT / "sample_videos" / "plaza.mp4")), DecodeConfig()
        ) as decoder:
            for n, (frame, _) in enumerate(decoder.frames()):
                decoder.image(frame)
                if n == 10:
                    break
        seconds = Stages.between(before, stages.snapshot())
    assert seconds[stage_cpu.DECODE] > 0 and seconds[stage_cpu.DEMUX] > 0 and seconds["decode: to BGR"] > 0


def test_opencv_pool_is_what_native_threads_hold() -> None:
    """OpenCV's pool (kept by the pipeline with no more cameras than cores) runs part of a parallel call
    on threads of no Python name: native threads; on one thread OpenCV leaves them nothing to do."""
    import cv2
    import numpy as np

    image = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), np.uint8)
    stages, native, kept = Stages(), {}, cv2.getNumThreads()
    try:
        for threads in (2, 1):
            cv2.setNumThreads(threads)
            before = stages.snapshot()
            for _ in range(20):
                cv2.GaussianBlur(image, (21, 21), 0)
            time.sleep(0.05)  # the pool's workers stop spinning
            native[threads] = Stages.between(before, stages.snapshot()).get(stage_cpu.NATIVE, 0.0)
    finally:
        cv2.setNumThreads(kept)
    assert native[2] > 0.0 and native[1] < native[2] / 2, native


def test_the_issues_ratio_leaves_out_inference_and_the_readers_demux_and_decode() -> None:
    seconds = {
        "inference (ONNX Runtime)": 4.0,
        stage_cpu.DEMUX: 3.0,
        stage_cpu.DECODE: 2.0,
        "readers (other)": 1.0,
        "tracker": 0.5,
        "store: SQL": 0.25,
        "native threads": 0.25,
    }
    result = summary(seconds, frames=100, inputs=150, process=11.0)
    assert result["inference_ms"] == 40.0 and result["other_ms"] == 10.0
    assert result["other_over_inference"] == 0.25 and result["inputs_per_frame"] == 1.5
    assert result["groups_ms_per_frame"] == {
        "inference": 40.0,
        "readers": 40.0,
        "decode": 20.0,
        "analysis": 5.0,
        "store": 2.5,
        "other": 2.5,
    }
