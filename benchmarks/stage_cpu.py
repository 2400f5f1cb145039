"""CPU time by stage of the pipeline: each thread's own CPU time, split by timed sections.

A sampled profile (benchmarks/capacity_profile.py, py-spy) counts a thread that waits for a core
as busy: on 2 cores shared by many threads a stage looks as costly as the time its thread spent
runnable, and the ratio between stages moves with the machine's load. This measures CPU time:

- every thread's: ``/proc/self/task/<tid>/stat`` (utime + stime) for the threads alive when a
  :class:`Stages` snapshot is taken, and ``time.thread_time()`` at the end of every Python thread
  that ends (``threading.Thread.run`` is wrapped while :func:`installed` is active), so a reader
  that ends before the snapshot still counts. Each thread is charged to the stage of its name
  (:data:`THREADS`: readers ``camera-*``, evidence readers ``main-*``, ``inference*``,
  ``analysis-*``, ...); a thread of no Python name (a library's own pool) is ``native threads``. In
  the pipeline that is OpenCV's pool (gdb's backtraces of a one-camera run: its workers, spinning in
  ``sched_yield`` between calls; ONNX Runtime's and libav's threads there spent nothing): the pipeline
  keeps it with no more cameras than cores (vision/pipeline/core.py ``opencv_threads``), so a one-camera
  run charges part of the OpenCV calls of the sections (the litter model's, the motion gate's, the
  detector's resize, the clips') and the workers' spinning to it, and a run of more cameras than cores
  has none (``opencv_threads`` in the result: OpenCV's threads after the run). A run of a few cameras
  that stands for many (issue 16's one-camera probe) takes ``OPENCV_FOR_THREADS_NUM=1`` from the
  environment to run OpenCV as they do.
- within a thread, sections: the pipeline's per-frame calls (:data:`SECTIONS`: the model's run,
  the detector around it, the motion gate, the tracker, the scene models, the rules, the store's
  SQL and JPEGs, ...) are wrapped with ``time.thread_time()`` before and after. A section's time
  is exclusive: a section inside another (the model's run inside the detector) is charged to
  itself only. What a thread spends outside its sections stays with the thread's stage. The
  readers' PyAV container is wrapped too (``av.open``), so demuxing and decoding are apart.

Sections are per call (a few per frame, none per box or per packet beyond the demux loop's own):
a ``time.thread_time()`` is a system call of well under a microsecond. Wrapped names that a
checkout lacks are skipped and listed (``missing``), their time then stays with their thread.

Used by benchmarks/ssd_batch.py (part 2: the pipeline on file cameras, started by this file's
``main`` in another checkout's code with ``--before``) and benchmarks/capacity.py (a column per
step). Usage: ``python benchmarks/stage_cpu.py CONFIG.yaml OUT.json`` runs ``Pipeline`` on the
config with the stages measured and writes :meth:`Stages.measure`'s result.
"""

from __future__ import annotations

import fnmatch
import importlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")
NATIVE = "native threads"
DETECTOR = "detector pre/post-processing"  # the detector's call less the model's run
RULES = "rules, masks, frame context"  # the camera's analysis less its tracker and scene models
# thread name (fnmatch) -> stage of what the thread does outside its sections, first match wins
THREADS: list[tuple[str, str]] = [
    ("camera-*", "readers (other)"),
    ("main-*", "evidence main streams"),
    ("inference*", "inference threads (other)"),
    ("analysis-*", "analysis lanes (other)"),
    ("MainThread", "store writer (other)"),  # Pipeline.run's caller serves the store writer
    ("clips", "clips: encoding (per transition)"),
    ("*", "other Python threads"),
]
# (module, class, method, stage): the timed sections
SECTIONS: list[tuple[str, str, str, str]] = [
    ("vision.detect.onnx_backend", "OnnxModel", "run", "inference (ONNX Runtime)"),
    # detector.backend ultralytics: its predict, pre- and post-processing included (on a GPU, the CPU's
    # part of it: letterboxing, the copies to and from the GPU, waiting on it)
    ("vision.detect.ultralytics_backend", "UltralyticsModel", "infer", "inference (Ultralytics)"),
    ("vision.detect.openvino_backend", "OpenVinoModel", "run", "inference (OpenVINO)"),
    ("vision.detect.detector", "Detector", "detect", DETECTOR),
    ("vision.scene.motion", "MotionGate", "due", "motion gate"),
    ("vision.ingest.reader", "CameraReader", "_picture", "motion gate"),
    ("vision.detect.planner", "Planner", "boxes", "detection planner"),
    ("vision.detect.planner", "Planner", "observe", "detection planner"),
    ("vision.ingest.decoder", "VideoDecoder", "image", "decode: to BGR"),
    ("vision.camera.unit", "CameraUnit", "process", "event lifecycle"),
    ("vision.camera.analysis", "CameraAnalysis", "process", RULES),
    ("vision.track.tracker", "Tracker", "update", "tracker"),
    ("vision.track.tracker", "Tracker", "tracks", "tracker"),
    ("vision.scene.scene", "Scene", "update", "heatmap, people's sizes"),
    ("vision.scene.static_objects", "StaticObjects", "update", "litter background model"),
    ("vision.events.clips", "ClipRecorder", "feed", "clips: frame ring"),
    ("vision.ingest.reader", "CameraReader", "_small", "clips: frame ring"),
    ("vision.pipeline.worker", "CameraWorker", "view", "camera views"),
    ("vision.store.writer", "StoreWriter", "submit", "store: hand-over"),
    ("vision.pipeline.worker", "CameraWorker", "snapshot", "checkpoints"),
    ("vision.store.writer", "StoreWriter", "_commit", "store: SQL"),
    ("vision.events.snapshots", "SnapshotWriter", "write", "store: snapshot JPEGs"),
]
DEMUX, DECODE = "demux (container.demux)", "decode (libav)"
# the stages in the terms (capacity.py's columns)
GROUPS: dict[str, tuple[str, ...]] = {
    "readers": ("readers (other)", DEMUX, "evidence main streams"),
    "decode": (DECODE, "decode: to BGR"),
    "inference": ("inference (ONNX Runtime)", "inference (Ultralytics)", "inference (OpenVINO)"),
    "analysis": (
        "inference threads (other)",
        DETECTOR,
        "motion gate",
        "detection planner",
        "analysis lanes (other)",
        "event lifecycle",
        RULES,
        "tracker",
        "heatmap, people's sizes",
        "litter background model",
        "clips: frame ring",
        "camera views",
        "checkpoints",
    ),
    "store": ("store writer (other)", "store: hand-over", "store: SQL", "store: snapshot JPEGs"),
}
TARGET = 0.2  # issue 16: per-frame work other than inference at most 20% of inference
# not per-frame work other than inference (issue 16): inference itself and the readers' demux and decode
NOT_OTHER = (*GROUPS["readers"], *GROUPS["decode"], *GROUPS["inference"])


def thread_stage(name: str | None) -> str:
    """The stage of a thread's time outside its sections, by its name (None: no Python thread)."""
    if name is None:
        return NATIVE
    return next(stage for pattern, stage in THREADS if fnmatch.fnmatchcase(name, pattern))


def group(stage: str) -> str:
    """The issue's stage (readers, decode, inference, analysis, store, other) of a measured stage."""
    return next((g for g, members in GROUPS.items() if stage in members), "other")


def task_cpu(tid: int) -> tuple[int, float] | None:
    """A thread of this process: its start time (clock ticks after boot, which tells a thread from a
    later one with the same id) and its CPU seconds (user + system); None once it has ended."""
    try:
        text = Path(f"/proc/self/task/{tid}/stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # after the command name, which may hold spaces
    # fields[0] is the state (the stat file's field 3): utime, stime are fields 14, 15, starttime 22
    return int(fields[19]), (int(fields[11]) + int(fields[12])) / TICK


@dataclass
class _Thread:
    """One thread's CPU seconds (at its end, or at the last snapshot) and its sections' so far."""

    name: str | None
    cpu: float = 0.0
    sections: dict[str, float] = field(default_factory=dict)
    ended: bool = False


class Stages:
    """CPU seconds by stage of every thread of this process, between :meth:`snapshot` calls."""

    def __init__(self) -> None:
        self.threads: dict[tuple[int, int], _Thread] = {}  # (tid, start time) -> thread
        self.counts: dict[str, int] = {"frames": 0, "inputs": 0}  # detector frames, model inputs
        self.missing: list[str] = []
        self._lock = threading.Lock()
        self._local = threading.local()

    def _mine(self) -> tuple[_Thread, list[float]]:
        """This thread's record and its stack of open sections' inner time."""
        local = self._local
        if not hasattr(local, "thread"):
            tid = threading.get_native_id()
            start = task_cpu(tid)
            key = (tid, start[0] if start else 0)
            with self._lock:
                local.thread = self.threads.setdefault(key, _Thread(threading.current_thread().name))
            local.stack = []
        return local.thread, local.stack

    def timed(self, stage: str, call: Callable[..., Any]) -> Callable[..., Any]:
        """``call`` with its thread CPU time, less that of the sections inside it, charged to ``stage``."""

        def section(*args: Any, **kwargs: Any) -> Any:
            thread, stack = self._mine()
            stack.append(0.0)
            started = time.thread_time()
            try:
                return call(*args, **kwargs)
            finally:
                spent = time.thread_time() - started
                inner = stack.pop()
                if stack:
                    stack[-1] += spent
                thread.sections[stage] = thread.sections.get(stage, 0.0) + spent - inner

        return section

    def iterated(self, stage: str, items: Iterator[Any]) -> Iterator[Any]:
        """``items`` with the thread CPU time of producing each charged to ``stage``."""
        step = self.timed(stage, next)
        while True:
            try:
                yield step(items)
            except StopIteration:
                return

    def snapshot(self) -> dict[tuple[int, int], tuple[str | None, float, dict[str, float]]]:
        """Every thread's (name, CPU seconds, sections' seconds) now: the live ones from /proc, the
        ended ones as they ended."""
        names = {t.native_id: t.name for t in threading.enumerate()}
        for tid in (int(t) for t in os.listdir("/proc/self/task")):
            now = task_cpu(tid)
            if now is None:
                continue
            with self._lock:
                thread = self.threads.setdefault((tid, now[0]), _Thread(names.get(tid)))
            if not thread.ended:
                thread.cpu = max(thread.cpu, now[1])
                thread.name = names.get(tid, thread.name)
        with self._lock:
            return {k: (t.name, t.cpu, dict(t.sections)) for k, t in self.threads.items()}

    def ended(self) -> None:
        """The calling thread is ending: its exact CPU time."""
        thread, _ = self._mine()
        thread.cpu, thread.ended = time.thread_time(), True

    @staticmethod
    def between(
        before: dict[tuple[int, int], tuple[str | None, float, dict[str, float]]],
        after: dict[tuple[int, int], tuple[str | None, float, dict[str, float]]],
    ) -> dict[str, float]:
        """CPU seconds by stage from snapshot ``before`` to ``after``: each thread's sections, and the
        rest of its time to its own stage."""
        out: dict[str, float] = {}
        for key, (name, cpu, sections) in after.items():
            _, cpu0, sections0 = before.get(key, (name, 0.0, {}))
            rest = cpu - cpu0
            for stage, seconds in sections.items():
                spent = seconds - sections0.get(stage, 0.0)
                out[stage] = out.get(stage, 0.0) + spent
                rest -= spent
            stage = thread_stage(name)
            out[stage] = out.get(stage, 0.0) + max(0.0, rest)  # /proc's ticks may trail the sections
        return out


def summary(seconds: dict[str, float], frames: int, inputs: int, process: float) -> dict[str, Any]:
    """A measured span's figures: ms of CPU per detected frame by stage and by the issue's groups, each
    group's share, inference's and the other per-frame work's, and the model inputs per frame."""
    total = sum(seconds.values())
    groups: dict[str, float] = {}
    for stage, spent in seconds.items():
        groups[group(stage)] = groups.get(group(stage), 0.0) + spent
    inference = sum(seconds.get(stage, 0.0) for stage in GROUPS["inference"])
    other = sum(v for k, v in seconds.items() if k not in NOT_OTHER)

    def ms(value: float) -> float | None:
        return round(1000 * value / frames, 2) if frames else None

    return {
        "frames_detected": frames,
        "inputs_per_frame": round(inputs / frames, 2) if frames else None,
        "cpu_seconds": round(total, 2),
        "process_cpu_seconds": round(process, 2),  # the process's own count, for the threads' coverage
        "ms_per_frame": {k: ms(v) for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])},
        "groups_ms_per_frame": {k: ms(v) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])},
        "group_shares": {k: round(v / total, 3) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])}
        if total
        else {},
        "inference_ms": ms(inference),
        "other_ms": ms(other),
        "other_over_inference": round(other / inference, 3) if inference else None,
    }


def markdown(result: dict[str, Any], label: str) -> str:
    """A measured span as a table: each stage's CPU ms per detected frame, its group, its share."""
    total = sum(v or 0.0 for v in result["ms_per_frame"].values()) or 1.0
    ratio = result["other_over_inference"]
    detector = result["ms_per_frame"].get(DETECTOR) or 0.0
    whole = f"{(result['other_ms'] - detector) / (result['inference_ms'] + detector):.0%}"
    lines = [
        f"### CPU by stage, {label}: {result.get('cameras', '?')} cameras, {result['frames_detected']} "
        f"frames detected, {result['inputs_per_frame']} model inputs per frame",
        "",
        f"Inference {result['inference_ms']} CPU ms per detected frame, other per-frame work "
        f"{result['other_ms']} ms: **{ratio:.1%} of inference** ("
        f"{'within' if ratio <= TARGET else 'above'} the issue's {TARGET:.0%}; {whole} with the "
        "detector's pre/post-processing counted with inference, as the detector's whole call). Threads "
        f"{result['cpu_seconds']} CPU s of the process's {result['process_cpu_seconds']} s.",
        "",
        "| stage | group | CPU ms per frame | share |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {stage} | {group(stage)}{'' if stage in NOT_OTHER else ' *'} | {ms} | {(ms or 0.0) / total:.1%} |"
        for stage, ms in result["ms_per_frame"].items()
    ]
    return "\n".join([*lines, "", "\\* other per-frame work", ""])


class _Stream:
    """A PyAV stream whose ``decode`` is timed; everything else is the stream's own."""

    def __init__(self, stream: Any, stages: Stages) -> None:
        object.__setattr__(self, "_inner", stream)
        object.__setattr__(self, "decode", stages.timed(DECODE, stream.decode))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)


class _Streams:
    def __init__(self, streams: Any, stages: Stages) -> None:
        self._inner = streams
        self.video = [_Stream(s, stages) for s in streams.video]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Container:
    """A PyAV input container whose demuxing is timed (and its video streams' decoding)."""

    def __init__(self, container: Any, stages: Stages) -> None:
        self._inner, self._stages = container, stages
        self.streams = _Streams(container.streams, stages)

    def demux(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        return self._stages.iterated(DEMUX, iter(self._inner.demux(*args, **kwargs)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def count(stages: Stages, owner: type, method: str, key: str, patch: Callable[..., None]) -> None:
    """Have ``owner.method(self, images, ...)`` add the images it is given to ``stages.counts[key]``."""
    call = getattr(owner, method)  # the timed section, when there is one

    def counted(self: Any, images: list[Any], *args: Any, **kwargs: Any) -> Any:
        with stages._lock:
            stages.counts[key] += len(images)
        return call(self, images, *args, **kwargs)

    patch(owner, method, counted)


@contextmanager
def installed(stages: Stages) -> Iterator[Stages]:
    """The sections wrapped, Python threads' ends recorded and PyAV's ``av.open`` timed while inside."""
    undo: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, value: Any) -> None:
        undo.append((owner, name, owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)))
        setattr(owner, name, value)

    for module, cls, method, stage in SECTIONS:
        owner = getattr(importlib.import_module(module), cls, None)
        if owner is None or method not in owner.__dict__:
            stages.missing.append(f"{module}.{cls}.{method}")
            continue
        raw = owner.__dict__[method]
        if isinstance(raw, staticmethod):
            patch(owner, method, staticmethod(stages.timed(stage, raw.__func__)))
        else:
            patch(owner, method, stages.timed(stage, raw))
    run = threading.Thread.run

    def ending(thread: threading.Thread) -> None:
        try:
            run(thread)
        finally:
            stages.ended()

    patch(threading.Thread, "run", ending)
    import av

    opened = av.open

    def open_timed(*args: Any, **kwargs: Any) -> Any:
        container = opened(*args, **kwargs)
        return _Container(container, stages) if hasattr(container, "demux") else container

    patch(av, "open", open_timed)
    detector = sys.modules["vision.detect.detector"]
    count(stages, detector.Detector, "detect", "frames", patch)  # frames the detector looked at
    count(stages, detector.OnnxEngine, "infer", "inputs", patch)  # what the model was shown: frames, crops
    ultralytics = importlib.import_module("vision.detect.ultralytics_backend")
    count(stages, ultralytics.UltralyticsModel, "infer", "inputs", patch)
    try:
        yield stages
    finally:
        for owner, name, value in reversed(undo):
            setattr(owner, name, value)


def main() -> None:
    """Run the pipeline on a config (argv 1) with the stages measured; write the result (argv 2)."""
    import cv2

    from vision.config import parse_config
    from vision.detect.detector import Detector
    from vision.pipeline import Pipeline
    from vision.store import Store

    config_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    config = parse_config(config_path.read_text())
    stages = Stages()
    with installed(stages):
        store = Store(config.storage.data_dir, "stages")
        pipeline = Pipeline(config, Detector.from_config(config.detector), store)
        before, process = stages.snapshot(), time.process_time()
        run = pipeline.run()
        seconds = Stages.between(before, stages.snapshot())
        process = time.process_time() - process
        store.close()
    frames = run.to_record()["frames_detected"]
    result = summary(seconds, frames, stages.counts["inputs"], process)
    extra = {"missing": stages.missing, "wall_seconds": run.wall_seconds}
    out.write_text(json.dumps(result | extra | {"opencv_threads": cv2.getNumThreads()}) + "\n")


if __name__ == "__main__":
    main()
