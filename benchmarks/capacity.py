"""Capacity: how many real RTSP cameras one machine keeps up with, ours and Ultralytics' side by side.

The farm (benchmarks/farm.py): real footage encoded once per clip to 1280x720 H.264 at 25 fps, one
keyframe every 2 s, no B-frames, as a camera's main stream, served by one GStreamer RTSP server
process on 127.0.0.1 straight from the files over TCP, paced in real time, the cameras'
keyframes spread over the GOP (``--farm perl``: the farm before, rtsp-server-perl and one
``ffmpeg -re -c copy`` publisher per camera stream, over UDP; ``--farm http``: MPEG-TS over HTTP from
a few Python processes, for a machine with no RTSP server, benchmarks/farm_http.py). The farm does
no coding, so the machine's time goes to the systems measured; its CPU is reported. ``--clips`` chooses the
footage, given to the cameras in turn: ``plaza`` (the sample, busy all the time), and from
../shared/data/footage ``vtest`` (a pedestrian plaza), ``parking`` (a lane that is empty most
of the time: the static scene) and ``highway`` (traffic, jitter).

``--substream 640x360``: each camera also publishes a low-resolution substream, as IP cameras do
(encoded once per clip like the main stream: 25 fps, GOP 2 s, no B-frames, 512 kb/s). Ours then
detects on it (``detect_url``) and opens the 720p main stream (``url``) only for the pictures of a
transition; the peer reads the substream, so both detect on the same pixels (the peer makes no
evidence pictures, so it never reads a main stream). The farm serves both streams of every camera.

Each step runs N cameras for ``--warmup`` + ``--seconds`` seconds of wall time, the measured
``--seconds`` cut into windows of about ``--window`` seconds:

- street-vision: the :class:`Pipeline` in this process with the chosen detector, every camera
  with a crowd zone on the crossing, at ``--fps`` detections per second (keyframes only when
  that is 0.5 or less). Per camera and window: frames analysed and committed per second, and
  the end-to-end lag from the frame's capture (the reader's wall anchor of its pts) to its
  detections being committed, p50 and p95 (a frame counts in the window it was captured in;
  the step runs MAX_LAG seconds more so the last ones can be committed), and the cores the
  detector used. Over the whole measured time: the share of the frames sent to detection that
  the cameras' motion gates held (vision/scene/motion.py: nothing moved in the zones, so the
  frame is analysed with the last detected frame's boxes, not detected); where the process's CPU
  went, by stage (benchmarks/stage_cpu.py: each thread's CPU time, split by timed per-frame
  sections; readers, decode, inference, analysis, store, other), and the model's inputs per
  detected frame (whole frames, crops, tiles). Those timers cost ours 5-10% of its CPU
  (capacity_stage_timers.md): ``--no-stages`` leaves them out, and the CPU by stage with them.
- the peer, with ``--peer-weights`` (an Ultralytics ``.pt`` of the same model): Ultralytics'
  multi-stream ``predict(source=<streams file>, stream=True)`` on the same N streams, which
  reads every stream at full rate and detects the newest frame of each per round; its rate
  per camera and window is the results it yields for that stream per second (it has no lag
  figure of its own).

What "holds N cameras" means here: in **every** window, every camera keeps at least 90% of
``--fps`` and, for ours, the p95 lag stays under 2 s. A camera that keeps up on average but
lags 4 s for a minute every few minutes (while its planner surveys, vision/detect/planner.py,
or while anything else comes in waves) is not held: its tickets are late then. So the
warm-up covers only the start-up (connecting, the first keyframes: 20 s is plenty) and is
not stretched to skip work that recurs; the measured time should span several survey gaps
(at 0.5/s, ``survey_every`` 25 is 50 s: ``--seconds 180`` sees the first rounds). The report
also gives the worst window, so a step that fails in one window shows which. N steps through
``--cameras`` until both fail (or the list ends). Results
go to capacity.md and capacity.json beside this file, with the machine (CPU, cores, load
average before and after: a shared machine's numbers are marked as such) and, when
``--profile`` names JSONs of benchmarks/capacity_profile.py (before and after), their summaries. Python's
cyclic collector is set as the service sets it (vision/collector.py), or left at Python's defaults with
``--collector default``; its collections and pauses in the measured time are reported.

Usage: ``python benchmarks/capacity.py [--cameras 4,8,16,32,64] [--fps 2] [--model default]
[--peer-weights yolov8n.pt] [--clips plaza,vtest,parking] [--defaults '{motion_gate: {enabled: true}}']
[--warmup 20] [--seconds 180] [--window 30] [--substream 640x360] [--farm gst] [--profile before.json
--profile after.json]``; a smoke run: ``--cameras 2 --seconds 10 --window 5 --warmup 5``.
``--yolo-int8 yolov8n_coco_int8.onnx`` makes the float YOLOv8n of the issue's table from that INT8
export (``models rebuild``, then Ultralytics' own ONNX export at ``--imgsz``) and runs it on both
sides: ours through its ONNX, the peer through the ``.pt``. Needs ffmpeg and GStreamer's RTSP
server (or rtsp-server-perl for ``--farm perl``; see tests/ingest_servers.py).

On a GPU: ``--device cuda --peer-weights MODEL.pt`` runs that checkpoint on both sides through Ultralytics
on the GPU (ours: ``detector.backend: ultralytics``, batched across cameras; ONNX Runtime's CUDA build is
not assumed); ``--ultralytics`` does the same on the CPU (a dry run of that path). benchmarks/gpu_kit.py
builds what the device machine lacks, benchmarks/gpu_run.sh is the command run there.
For a machine with neither ffmpeg nor the footage nor an RTSP server, encode the clips
where they are (``--clips-dir DIR`` keeps them, ``--main-bitrate`` makes the main streams smaller to
carry: ours reads them only for evidence pictures, the peer never) and run there with the same
``--clips-dir`` and ``--farm http``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capacity_profile import markdown as profile_markdown  # noqa: E402  (beside this file)
from farm import CLIPS, FARMS, MAIN, SUB_BITRATE, Farm, encode  # noqa: E402  (beside this file)
from stage_cpu import GROUPS, Stages, installed, summary  # noqa: E402  (beside this file)

from vision import collector  # noqa: E402
from vision.config import parse_config  # noqa: E402
from vision.detect.detector import Detector  # noqa: E402
from vision.detect.yolo_card import write_card  # noqa: E402
from vision.pipeline import Pipeline  # noqa: E402
from vision.store import Store  # noqa: E402
from vision.types import Detections, Frame, Transition  # noqa: E402

CROSSING = "[[0.0, 0.33], [0.55, 0.33], [0.95, 0.25], [1.0, 0.45], [1.0, 0.85], [0.55, 0.62], [0.0, 0.5]]"
WHOLE = "[[0, 0], [1, 0], [1, 1], [0, 1]]"
# Per clip: its zones, as a camera of that kind would have them (the plaza's crossing as in the demo;
# elsewhere the whole picture, watched for crowds and litter, so the static-object model runs too).
ZONES = {
    "plaza": f"      crossing:\n        polygon: {CROSSING}\n"
    "        rules: {crowd: {enter_count: 7, exit_count: 5}}\n",
    "other": f"      street:\n        polygon: {WHOLE}\n"
    "        rules: {crowd: {enter_count: 7}, litter: {}}\n",
}
HOLD = 0.9  # share of the target rate a camera must keep
MAX_LAG = 2.0  # seconds, p95, capture to committed, in every window
DEFAULT_SWITCH = 0.005  # seconds: CPython's GIL switch interval


def substream_size(text: str) -> tuple[int, int, str]:
    """``--substream WxH`` (both even, smaller than the main stream) as an :func:`encode` size."""
    try:
        width, height = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT, e.g. 640x360") from None
    if not (16 <= width <= MAIN[0] and 16 <= height <= MAIN[1]) or width % 2 or height % 2:
        raise argparse.ArgumentTypeError(f"{text!r}: even sizes up to the main stream's {MAIN[0]}x{MAIN[1]}")
    return width, height, SUB_BITRATE


class CpuWindow:
    """Cores used by this process and by the farm between :meth:`open` and :meth:`close` (the measured
    window, after the warm-up): at the step where cameras fall behind, it shows whether the machine
    was out of CPU and who had it."""

    def __init__(self, farm: Farm) -> None:
        self.farm = farm
        self.start: tuple[float, float, float] | None = None

    def _now(self) -> tuple[float, float, float]:
        return time.monotonic(), time.process_time(), self.farm.cpu_seconds()

    def open(self) -> None:
        self.start = self.start or self._now()

    def close(self) -> dict[str, float | None]:
        if self.start is None:
            return {"cores_used": None, "farm_cores": None}
        (t0, own0, farm0), (t1, own1, farm1) = self.start, self._now()
        wall = max(t1 - t0, 1e-3)
        return {"cores_used": round((own1 - own0) / wall, 2), "farm_cores": round((farm1 - farm0) / wall, 2)}


class StageWindow:
    """CPU time by stage (benchmarks/stage_cpu.py) of this process between :meth:`open` and :meth:`close`
    (the measured window), with the frames the detector looked at and the model's inputs meanwhile."""

    def __init__(self, stages: Stages) -> None:
        self.stages = stages
        self.start: tuple[Any, float, dict[str, int]] | None = None

    def _now(self) -> tuple[Any, float, dict[str, int]]:
        return self.stages.snapshot(), time.process_time(), dict(self.stages.counts)

    def open(self) -> None:
        self.start = self.start or self._now()

    def close(self) -> dict[str, Any] | None:
        if self.start is None:
            return None
        (before, cpu0, counts0), (after, cpu1, counts1) = self.start, self._now()
        frames, inputs = (counts1[k] - counts0[k] for k in ("frames", "inputs"))
        return summary(Stages.between(before, after), frames, inputs, cpu1 - cpu0)


class CollectorWindow:
    """Python's cyclic collector between :meth:`open` and :meth:`close` (the measured window): per
    generation, collections and their pause (every thread waits: the collector holds the GIL), with
    the objects it tracks and the process's RSS at both ends (a frozen object is never freed)."""

    def __init__(self) -> None:
        self.start: tuple[float, int, int] | None = None
        self.pauses: list[list[float]] = [[], [], []]  # seconds, per generation
        self._began = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        elif self.start is not None:
            self.pauses[info["generation"]].append(time.perf_counter() - self._began)

    @staticmethod
    def _now() -> tuple[float, int, int]:
        rss = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        return time.monotonic(), len(gc.get_objects()), rss

    def open(self) -> None:
        self.start = self.start or self._now()

    def close(self) -> dict[str, Any] | None:
        gc.callbacks.remove(self._callback)
        if self.start is None:
            return None
        (t0, tracked0, rss0), (t1, tracked1, rss1) = self.start, self._now()
        minutes = max(t1 - t0, 1e-3) / 60
        return {
            "frozen": gc.get_freeze_count(),
            "tracked": [tracked0, tracked1],
            "rss_mb": [round(rss0 / 2**20), round(rss1 / 2**20)],
            "per_minute": [round(len(p) / minutes, 1) for p in self.pauses],
            "pause_ms_per_minute": [round(sum(p) * 1000 / minutes, 1) for p in self.pauses],
            "max_pause_ms": [round(max(p, default=0) * 1000, 1) for p in self.pauses],
        }


class Windows:
    """The measured time cut into windows: per window, each camera's results, the lags and the
    detector's seconds, added as they come (at seconds since the step started)."""

    def __init__(self, warmup: float, seconds: float, window: float, cameras: list[str]) -> None:
        self.start, self.count = warmup, max(1, round(seconds / window))
        self.length = seconds / self.count
        self.counted = [dict.fromkeys(cameras, 0) for _ in range(self.count)]
        self.lags: list[list[float]] = [[] for _ in range(self.count)]
        self.detector = [0.0] * self.count

    def index(self, at: float) -> int | None:
        """The window of the time ``at`` (None: in the warm-up or after the measured time)."""
        i = math.floor((at - self.start) / self.length)
        return i if 0 <= i < self.count else None

    def add(self, camera: str, at: float, lag: float | None = None) -> None:
        if (i := self.index(at)) is not None:
            self.counted[i][camera] += 1
            if lag is not None:
                self.lags[i].append(lag)

    def detected(self, at: float, seconds: float) -> None:
        if (i := self.index(at)) is not None:
            self.detector[i] += seconds

    def figures(self, fps: float, lagged: bool = True) -> list[dict[str, Any]]:
        """Per window: its start (s after the warm-up), the slowest camera's rate, the lags (ours) and
        the detector's cores (ours), and whether it held: every camera at HOLD of ``fps``, p95 lag
        under MAX_LAG where ``lagged``."""
        out = []
        for i in range(self.count):
            rates = [n / self.length for n in self.counted[i].values()]
            lag = sorted(self.lags[i])
            p95 = round(lag[int(0.95 * (len(lag) - 1))], 2) if lag else None
            window = {"start": round(i * self.length, 1), "min_fps": round(min(rates), 2)}
            if lagged:
                window |= {
                    "lag_p50": round(statistics.median(lag), 2) if lag else None,
                    "lag_p95": p95,
                    "detector_cores": round(self.detector[i] / self.length, 2),
                }
            window["holds"] = min(rates) >= HOLD * fps and (not lagged or (p95 is not None and p95 < MAX_LAG))
            out.append(window)
        return out


def judged(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """A side's step from its windows: held only if every window held; the worst window's figures."""
    p95s = [w["lag_p95"] for w in windows if w.get("lag_p95") is not None]
    return {
        "holds": all(w["holds"] for w in windows),
        "windows_held": sum(w["holds"] for w in windows),
        "min_fps": min(w["min_fps"] for w in windows),
        "worst_lag_p95": max(p95s) if p95s else None,
    }


def farm_config(farm: Farm, args: argparse.Namespace, data: Path) -> str:
    """The config of our side: what the cameras share in camera_defaults (with ``--defaults`` over
    it), one short entry per camera with its clip's zones, the detector (with ``--detector`` over it)."""
    defaults = {
        "detect_fps": args.fps,
        "decode": {"keyframes_only": args.fps <= 0.5},
        "stream": {"transport": farm.transport},
    }
    defaults |= yaml.safe_load(args.defaults) if args.defaults else {}
    text = f"camera_defaults: {json.dumps(defaults)}\ncameras:\n"
    for i, (url, detect, kind) in enumerate(zip(farm.urls, farm.detect_urls, farm.kinds, strict=True)):
        text += f"  cam{i}:\n    url: {url}\n"
        text += f"    detect_url: {detect}\n" if detect != url else ""
        text += f"    zones:\n{ZONES.get(kind, ZONES['other'])}"
    detector = {
        "model": args.model,
        "classes": ["person", "bicycle", "bottle", "cup", "backpack", "handbag", "suitcase"],
    }
    if args.ultralytics:  # the peer's .pt through Ultralytics (on a GPU: ONNX Runtime's build is the CPU's)
        detector |= {"backend": "ultralytics", "device": args.device}
    detector |= yaml.safe_load(args.detector) if args.detector else {}
    return text + f"detector: {json.dumps(detector)}\nstorage: {{data_dir: {data}}}\n"


def ours(farm: Farm, args: argparse.Namespace, data: Path) -> dict[str, Any]:
    """Our pipeline on the farm: per camera, committed frames per second and capture-to-commit lag."""
    config = parse_config(farm_config(farm, args, data))
    store = Store(data, "capacity")
    cameras = [f"cam{i}" for i in range(len(farm.urls))]
    windows = Windows(args.warmup, args.seconds, args.window, cameras)
    lags: list[float] = []  # all of the measured time's, for its p50 and p95
    started, wall = time.monotonic(), time.time()
    pipeline: Pipeline
    window, stages, collected = CpuWindow(farm), StageWindow(Stages()), CollectorWindow()
    # frames the readers skipped to catch up, their reconnects, frames the motion gates held and frames
    # detected: at the measured time's start, at its end
    counters: list[tuple[int, int, int, int]] = []

    def reader_counters() -> tuple[int, int, int, int]:
        healths, workers = pipeline.health().values(), pipeline.workers.values()
        return (
            sum(h.frames_skipped for h in healths),
            sum(h.reconnects for h in healths),
            sum(w.gate.skipped for w in workers),
            sum(w.stats.frames_detected for w in workers),
        )

    def committed(frame: Frame, _: Detections) -> None:
        # a frame counts in the window it was captured in (a camera's frames are evenly spaced there, so
        # a window holds as many as it should; by commit time, jitter moves one across its edges)
        worker = pipeline.workers[frame.camera_id]
        captured = worker.reader.wall_time(worker.unit.stream_pts(frame.pts))
        lag = None if captured is None else time.time() - captured
        at = time.monotonic() - started if captured is None else captured - wall
        if windows.index(at) is None:
            return
        window.open()
        stages.open()
        collected.open()
        if not counters:
            counters.append(reader_counters())
        windows.add(frame.camera_id, at, lag)
        if lag is not None:
            lags.append(lag)

    def inferred(seconds: float, _: int) -> None:
        windows.detected(time.monotonic() - started, seconds)

    made: dict[str, int] = {}  # the run's transitions by kind, and their pictures by source (substreams)

    def recorded(transition: Transition, payload: dict[str, Any]) -> None:
        source = payload.get("snapshots", {}).get("source")
        for key in (transition.kind, *((f"pictures from {source}",) if source else ())):
            made[key] = made.get(key, 0) + 1

    try:
        # the stage timers hold the GIL around every demux and decode call: --no-stages measures without
        with installed(stages.stages) if args.stages else contextlib.nullcontext():
            pipeline = Pipeline(
                config,
                Detector.from_config(config.detector),
                store,
                on_transition=recorded,
                on_detections=committed,
                on_inference=inferred,
            )
            if args.collector == "service":
                collector.settle()  # as street-vision run and serve do once start-up is done
            # MAX_LAG more: the last frames captured in the measured time can still be committed in time
            pipeline.run(max_seconds=args.warmup + args.seconds + MAX_LAG)
            cpu, by_stage = window.close(), stages.close() if args.stages else None
        gc_window = collected.close()
        counters.append(reader_counters())
    finally:
        store.close()
    rates = {k: sum(w[k] for w in windows.counted) / args.seconds for k in cameras}
    lag = sorted(lags)
    per_window = windows.figures(args.fps)
    return {
        "fps_per_camera": {k: round(v, 2) for k, v in rates.items()},
        **judged(per_window),
        "lag_p50": round(statistics.median(lag), 2) if lag else None,
        "lag_p95": round(lag[int(0.95 * (len(lag) - 1))], 2) if lag else None,
        "windows": per_window,
        "writer_transactions": getattr(getattr(pipeline, "writer", None), "transactions", None),
        # past capacity a reader drops what is more than stream.max_lag late, unseen (per camera-second)
        "skipped_per_camera_s": round((counters[-1][0] - counters[0][0]) / args.seconds / len(cameras), 2)
        if len(counters) == 2
        else None,
        # a reader reopens its stream when it stalls: frames lost for seconds each time
        "reconnects": counters[-1][1] - counters[0][1] if len(counters) == 2 else None,
        "held_pct": held_pct(counters),
        **cpu,
        "stages": by_stage,
        "collector": gc_window,
        "transitions": made,
    }


def held_pct(counters: list[tuple[int, int, int, int]]) -> float | None:
    """Of the frames the cameras sent to detection in the measured time, the share their motion gates
    held (analysed with the last detections, not detected), in percent."""
    if len(counters) != 2:
        return None
    held, detected = (counters[1][i] - counters[0][i] for i in (2, 3))
    return round(100 * held / (held + detected), 1) if held + detected else None


def peer(farm: Farm, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Ultralytics' multi-stream predict on the farm: per camera, the results it gives for that stream
    per second (``predict`` yields one per stream per round)."""
    from ultralytics import YOLO

    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = f"rtsp_transport;{farm.transport}"  # as ours reads
    streams = folder / "farm.streams"
    streams.write_text("\n".join(farm.detect_urls) + "\n")  # the pixels ours detects on
    model = YOLO(str(args.peer_weights))
    cameras = [f"cam{i}" for i in range(len(farm.urls))]
    windows = Windows(args.warmup, args.seconds, args.window, cameras)
    window = CpuWindow(farm)
    device = "cuda:0" if args.device == "cuda" else "cpu"
    results = model.predict(source=str(streams), stream=True, verbose=False, device=device, classes=[0, 1])
    # its clock starts at its first result: Ultralytics opens the streams one after another before the
    # first round (64 substreams took longer than a 20 s warm-up and a 60 s measure together), and the
    # warm-up is for the steady state after start-up on both sides
    started: float | None = None
    # a round yields one result per stream, in the streams file's order (its .path is not the stream's)
    for index, _ in enumerate(results):
        started = time.monotonic() if started is None else started
        at = time.monotonic() - started
        if at >= args.warmup + args.seconds:
            break
        if windows.index(at) is not None:
            window.open()
            windows.add(cameras[index % len(cameras)], at)
    rates = {k: sum(w[k] for w in windows.counted) / args.seconds for k in cameras}
    per_window = windows.figures(args.fps, lagged=False)
    return {
        "fps_per_camera": {k: round(v, 2) for k, v in rates.items()},
        **judged(per_window),
        "windows": per_window,
        **window.close(),
    }


def float_yolo(int8: Path, imgsz: tuple[int, int], folder: Path) -> tuple[Path, Path]:
    """The float YOLOv8n of the issue's table, made here from the INT8 export (no weights can be
    downloaded): ``models rebuild`` gives the trainable ``.pt`` (the peer's), Ultralytics exports
    it to ONNX at ``imgsz`` (height, width), and its card is ours."""
    from ultralytics import YOLO

    from vision.tuning.rebuild import rebuild

    weights = rebuild(int8, "yolov8n.yaml", folder / "yolov8n_float.pt")
    onnx = Path(YOLO(str(weights)).export(format="onnx", imgsz=list(imgsz)))
    return write_card(onnx), weights


def cpu() -> str:
    """ "AMD EPYC (family 25, model 1; AVX2, no AVX-512)": the CPU's name, its family and model, and its
    widest vector instructions. A model's call depends on them more than on the name: the float YOLOv8n
    ran 2.2x slower on an AVX2-only EPYC than on an earlier session's EPYC (capacity_yolo_street_avx2.md)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    first = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in text.split("\n\n", 1)[0].splitlines())
    )
    flags = set(first.get("flags", "").split())
    vector = ["AVX-512" if "avx512f" in flags else ("AVX2, no AVX-512" if "avx2" in flags else "no AVX2")]
    vector += [
        name
        for flag, name in (("avx512_vnni", "VNNI"), ("avx_vnni", "AVX-VNNI"), ("amx_tile", "AMX"))
        if flag in flags
    ]
    kind = f"family {first['cpu family']}, model {first['model']}; " if "cpu family" in first else ""
    return f"{first.get('model name', platform.processor())} ({kind}{', '.join(vector)})"


def gpu() -> str | None:
    """The GPU the cuda runs use (PyTorch's name for it and its memory), None where there is none."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return f"{props.name}, {props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}"


def machine(device: str = "cpu") -> dict[str, Any]:
    versions = {}
    for package in ("onnxruntime", "openvino", "av", "numpy", "numba", "ultralytics", "torch"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu(),
        "gpu": gpu() if device == "cuda" else None,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": platform.platform(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
    }


def cores(side: dict[str, Any]) -> str:
    """ "1.52 / 0.41": the cores one side's process and the farm used in the measured window."""
    return f"{side.get('cores_used', '-')} / {side.get('farm_cores', '-')}"


SHARES = (*GROUPS, "other")  # the stages, in the order of the report's column


def shares(stages: dict[str, Any] | None) -> str:
    """ "31/12/30/20/5/2": each of SHARES' percentage of our CPU time in the measured window."""
    if not stages:
        return "-"
    return "/".join(f"{100 * stages['group_shares'].get(name, 0.0):.0f}" for name in SHARES)


def phases_line(phases: int) -> str:
    """Whether the cameras of a clip show it at different moments (farm.Farm's ``phases``)."""
    if phases <= 1:
        return (
            "Every camera of a clip plays it at most a GOP after the first (where it loops, all their "
            "scenes jump at once). "
        )
    return (
        f"The cameras of a clip play it from {phases} starting points spread over it in turn (whole GOPs), "
        "so their scenes change at different moments, as real cameras' do. "
    )


def substream_line(size: str | None) -> str:
    """What the cameras publish and who detects on what, when they have substreams."""
    if not size:
        return ""
    return (
        f"Each camera also publishes a {size} substream ({SUB_BITRATE}b/s, same GOP): ours detects on it "
        "(`detect_url`) and opens the 720p main stream (`url`) only for the pictures of a transition; "
        "the peer reads the substream, the same pixels ours detects on (it makes no evidence pictures). "
    )


def http_line(http: bool) -> str:
    """How the http farm's streams start for each side (farm.Farm's ``spread``)."""
    if not http:
        return ""
    return (
        "On the http farm each client gets its own playback from the clip's start: ours (every camera "
        "at once) with camera i's i/N of a GOP late; the peer, which opens its streams one after "
        "another (spreading them itself), without that delay. "
    )


def switch_line(interval: float | None) -> str:
    """The report's words on the GIL switch interval, where this run set it off Python's default."""
    if interval is None or interval == DEFAULT_SWITCH:
        return ""
    return f"Python's GIL switch interval in our process: {interval * 1000:g} ms (default 5 ms). "


def markdown(result: dict[str, Any]) -> str:
    m, window = result["machine"], result["window"]
    http = result.get("farm") == "http"
    main_rate = result.get("main_bitrate") or MAIN[2]
    lines = [
        f"# Capacity: real {'HTTP (MPEG-TS)' if http else 'RTSP'} cameras on loopback",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores{', ' + m['gpu'] if m.get('gpu') else ''}, {m['system']}; "
        f"load average {m['load_average_before']} before, {m['load_average_after']} after.",
        "",
        f"Model `{result['model']}`, {result['fps']} detections/s per camera, 720p H.264 25 fps GOP 2 s "
        f"({main_rate}b/s), "
        f"clips {', '.join(result['clips'])} in turn; our camera_defaults over the benchmark's: "
        f"`{result['defaults'] or '{}'}`; our detector settings over the benchmark's: "
        f"`{result.get('detector') or '{}'}`; "
        f"{result['warmup']} s warm-up (start-up only), "
        f"{result['seconds']} s measured in windows of {window:g} s. "
        f"{substream_line(result.get('substream'))}{phases_line(result.get('phases', 1))}{http_line(http)}"
        f"{switch_line(result.get('switch_interval'))}"
        f"{'' if result.get('stages', True) else 'Without the CPU-by-stage timers (`--no-stages`). '}"
        "**Holds N cameras: in every window, every camera "
        f"keeps {HOLD:.0%} of the rate and, for ours, the p95 lag (capture to committed) stays under "
        f"{MAX_LAG:g} s** (a camera late for a minute every few minutes, while it surveys, is not held; "
        "see the module's docstring). Min fps and worst p95: the worst window's; p50 / p95: the whole "
        "measured time's. Cores: CPU used in the measured time by that side's process and by the farm "
        f"({result.get('farm', 'perl')}: its server, and any publishers), of the machine's {m['cores']}. "
        "Skipped/s: frames per camera-second our readers dropped unseen to stay within stream.max_lag "
        "of the live edge; reconnects: streams our readers reopened in the measured time (all cameras); "
        "held %: of the frames sent to detection in the measured time, those the motion gate held "
        "(nothing moved in the zones: analysed with the last detections, not detected). "
        "CPU by stage: shares of our process's CPU time in the measured time (benchmarks/stage_cpu.py: "
        f"each thread's CPU time, split by timed per-frame sections), {'/'.join(SHARES)}; inputs per "
        "frame: what the model was shown (whole frames, crops, tiles) per frame it detected.",
        "",
    ]
    if result.get("note"):
        lines += [f"**{result['note']}**", ""]
    lines += [
        "| cameras | ours min fps | ours lag p50 / p95 s | ours worst p95 s | ours windows held | "
        "ours skipped/s | ours reconnects | ours held % | ours holds | ours / farm cores | "
        "ours CPU by stage % | ours inputs per frame | peer min fps | peer windows held | peer holds | "
        "peer / farm cores |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for step in result["steps"]:
        o, p = step["ours"], step.get("peer")
        count = len(o["windows"])
        held = f"{p['windows_held']}/{count}" if p else "-"
        lines.append(
            f"| {step['cameras']} | {o['min_fps']} | {o['lag_p50']} / {o['lag_p95']} | "
            f"{o['worst_lag_p95']} | {o['windows_held']}/{count} | {o.get('skipped_per_camera_s', '-')} | "
            f"{o.get('reconnects', '-')} | {o.get('held_pct', '-')} | "
            f"{'yes' if step['ours_holds'] else 'no'} | {cores(o)} | {shares(o.get('stages'))} | "
            f"{(o.get('stages') or {}).get('inputs_per_frame', '-')} | "
            f"{p['min_fps'] if p else '-'} | {held} | "
            f"{('yes' if step['peer_holds'] else 'no') if p else '-'} | {cores(p) if p else '-'} |"
        )
    lines += [
        "",
        "Ours per window (seconds after the warm-up: slowest camera's fps, p95 lag s, detector cores):",
        "",
    ]
    for step in result["steps"]:
        parts = [
            f"{w['start']:g}: {w['min_fps']}, {w['lag_p95']}, {w['detector_cores']}"
            + ("" if w["holds"] else " ✗")
            for w in step["ours"]["windows"]
        ]
        lines.append(f"- {step['cameras']} cameras: " + "; ".join(parts))
    made = [step for step in result["steps"] if step["ours"].get("transitions")]
    if made:
        lines += [
            "",
            "Ours, transitions committed in the run (with substreams: their pictures, by source):",
            "",
        ]
    for step in made:
        counts = ", ".join(f"{kind} {n}" for kind, n in step["ours"]["transitions"].items())
        lines.append(f"- {step['cameras']} cameras: {counts}")
    collected = [step for step in result["steps"] if step["ours"].get("collector")]
    if collected:
        service = result.get("collector") == "service"
        setting = "as the service sets it (vision/collector.py)" if service else "at Python's defaults"
        lines += [
            "",
            f"Ours, Python's cyclic collector {setting}"
            " in the measured time, generations 0 / 1 / 2 (every thread waits while it runs: it holds "
            "the GIL): collections per minute, their pause ms per minute, the longest pause ms; objects "
            "it tracks at the start / end, objects frozen; the process's RSS MB at the start / end:",
            "",
        ]
    for step in collected:
        c = step["ours"]["collector"]
        lines.append(
            f"- {step['cameras']} cameras: {' / '.join(map(str, c['per_minute']))} per minute; "
            f"{' / '.join(map(str, c['pause_ms_per_minute']))} ms per minute; longest "
            f"{' / '.join(map(str, c['max_pause_ms']))} ms; tracked {c['tracked'][0]} / {c['tracked'][1]}, "
            f"frozen {c['frozen']}; RSS {c['rss_mb'][0]} / {c['rss_mb'][1]} MB"
        )
    measured = [step for step in result["steps"] if step["ours"].get("stages")]
    if measured:
        lines += ["", "Ours, CPU ms per detected frame by stage (benchmarks/stage_cpu.py):", ""]
    for step in measured:
        by_stage = step["ours"]["stages"]["ms_per_frame"]
        parts = [f"{name} {ms}" for name, ms in by_stage.items() if ms]
        lines.append(f"- {step['cameras']} cameras: " + "; ".join(parts))
    if result.get("profiles"):
        lines += ["", "## Where the time goes (benchmarks/capacity_profile.py, file cameras)"]
        lines += ["\n" + profile_markdown(profile, profile["label"]) for profile in result["profiles"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", default="4,8,16,32,64", help="camera counts to step through")
    parser.add_argument("--fps", type=float, default=2.0, help="detections per second per camera")
    parser.add_argument("--model", default="default", help="our detector.model (default: the embedded SSD)")
    parser.add_argument("--peer-weights", type=Path, help="Ultralytics weights of the same model (peer run)")
    parser.add_argument("--clips", default="plaza", help=f"footage in turn, of {', '.join(CLIPS)}")
    parser.add_argument("--defaults", default="", help="YAML merged into our camera_defaults")
    parser.add_argument(
        "--detector", default="", help="YAML merged into our detector (e.g. {batch_wait: 0.25})"
    )
    parser.add_argument(
        "--yolo-int8", type=Path, help="make the float YOLOv8n from this INT8 export, both sides"
    )
    parser.add_argument("--imgsz", default="384,640", help="height,width of that float export")
    parser.add_argument(
        "--substream", type=substream_size, help="WxH: each camera also publishes a substream, detected on"
    )
    parser.add_argument(
        "--seconds", type=float, default=180.0, help="measured time per step, after the warm-up"
    )
    parser.add_argument(
        "--window", type=float, default=30.0, help="seconds per window (rounded to whole frame intervals)"
    )
    parser.add_argument("--warmup", type=float, default=20.0, help="start-up, not measured")
    parser.add_argument(
        "--farm", choices=FARMS, default="gst", help="the cameras' server (benchmarks/farm.py)"
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cuda: both sides run --peer-weights through Ultralytics on the GPU (ours: detector.backend "
        "ultralytics)",
    )
    parser.add_argument(
        "--ultralytics",
        action="store_true",
        help="ours runs --peer-weights through Ultralytics too (detector.backend ultralytics) on --device: "
        "implied by cuda; on the CPU, a dry run of the GPU run's path",
    )
    parser.add_argument(
        "--clips-dir",
        type=Path,
        help="keep the encoded clips here and take those already there (a machine without ffmpeg)",
    )
    parser.add_argument(
        "--main-bitrate", default=MAIN[2], help=f"the main streams' bitrate (default {MAIN[2]})"
    )
    parser.add_argument(
        "--http-processes", type=int, default=4, help="http farm: server processes the streams are shared by"
    )
    parser.add_argument(
        "--phases",
        type=int,
        default=1,
        help="gst farm: the cameras of a clip play it from this many starting points in turn (farm.Farm)",
    )
    parser.add_argument(
        "--profile", type=Path, action="append", default=[], help="a JSON of capacity_profile.py (repeatable)"
    )
    parser.add_argument(
        "--all", action="store_true", help="step through every count, not only until a step is not held"
    )
    parser.add_argument(
        "--switch-interval",
        type=float,
        help="seconds: Python's GIL switch interval in this process (sys.setswitchinterval; default 0.005)",
    )
    parser.add_argument(
        "--no-stages",
        dest="stages",
        action="store_false",
        help="without the CPU-by-stage timers (benchmarks/stage_cpu.py), which cost the process GIL time",
    )
    parser.add_argument(
        "--collector",
        choices=("service", "default"),
        default="service",
        help="Python's cyclic collector as the service sets it (vision/collector.py), or Python's default",
    )
    parser.add_argument("--model-label", help="how the report names the model (default: --model's path)")
    parser.add_argument("--note", default="", help="a line for the report (e.g. the machine was shared)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("capacity"))
    args = parser.parse_args()
    args.ultralytics = args.ultralytics or args.device == "cuda"
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    names = args.clips.split(",")
    # a window is a whole number of frame intervals (or a camera that holds shows 2 or 3 frames in a
    # 5 s window at 0.5/s), the measured time a whole number of windows
    args.window = max(1, round(args.window * args.fps)) / args.fps
    args.seconds = max(1, round(args.seconds / args.window)) * args.window
    if unknown := [name for name in names if name not in CLIPS]:
        parser.error(f"--clips: unknown {', '.join(unknown)}; known: {', '.join(CLIPS)}")
    result: dict[str, Any] = {
        "machine": machine(args.device),
        "device": args.device,
        "main_bitrate": args.main_bitrate,
        "clips": names,
        "defaults": args.defaults,
        "detector": args.detector,
        "phases": args.phases,
        "fps": args.fps,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "window": args.window,
        "note": args.note,
        "switch_interval": sys.getswitchinterval(),
        "collector": args.collector,
        "stages": args.stages,
        "substream": "x".join(map(str, args.substream[:2])) if args.substream else None,
        "farm": args.farm,
        "steps": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        if args.yolo_int8:
            height, width = (int(x) for x in args.imgsz.split(","))
            card, args.peer_weights = float_yolo(args.yolo_int8, (height, width), Path(tmp))
            args.model = str(card)
        result["model"] = args.model_label or (
            args.model if not args.yolo_int8 else f"YOLOv8n float {args.imgsz} (from INT8)"
        )
        if args.ultralytics:
            if not args.peer_weights:
                parser.error("--ultralytics, --device cuda: both sides run --peer-weights; give it")
            args.model = str(write_card(args.peer_weights, Path(tmp) / "peer.yaml"))
            result["model"] = f"{args.peer_weights.name} (Ultralytics, {args.device})"
        clips_dir = args.clips_dir or Path(tmp)
        clips_dir.mkdir(parents=True, exist_ok=True)
        clips = [
            (
                name,
                encode(name, clips_dir, (*MAIN[:2], args.main_bitrate)),
                encode(name, clips_dir, args.substream) if args.substream else None,
            )
            for name in names
        ]
        peer_fell = False  # the peer did not hold a smaller step: more cameras only fall further behind
        for n in (int(x) for x in args.cameras.split(",")):
            # long enough for a step of ours and then the peer's (each client plays from the start)
            length = args.warmup + args.seconds + MAX_LAG + 30
            farm = Farm(clips, n, length, args.farm, args.phases, args.http_processes)
            try:
                step: dict[str, Any] = {"cameras": n, "ours": ours(farm, args, Path(tmp) / f"data{n}")}
                step["ours_holds"] = step["ours"]["holds"]
                if args.peer_weights and (args.all or not peer_fell):
                    if args.farm == "http":  # the peer opens the streams one after another: no delays
                        farm.close()
                        farm = Farm(clips, n, length, args.farm, processes=args.http_processes, spread=False)
                    step["peer"] = peer(farm, args, Path(tmp))
                    step["peer_holds"] = step["peer"]["holds"]
                    peer_fell = not step["peer_holds"]
            finally:
                farm.close()
            result["steps"].append(step)
            print(json.dumps(step), flush=True)
            if not args.all and not step["ours_holds"] and not step.get("peer_holds"):
                break  # more cameras only fall further behind; --all shows how far
    result["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    result["profiles"] = [json.loads(path.read_text()) for path in args.profile]
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
