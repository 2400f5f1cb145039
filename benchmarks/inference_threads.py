"""Inference threads: one model call over every core against one single-threaded call per core.

The pipeline (vision/pipeline/) on N cameras paced like live ones: the capacity benchmark's
640x360 substreams of vtest, parking and highway (H.264, 25 fps, GOP 2 s) as looping files read
in real time, every camera with the whole picture watched for crowds and litter, at ``--fps``
detections per second, with ``detector.parallel`` 1 (one inference thread, ONNX Runtime's
intra-op threads over every core: the old way) and unset (one inference thread per core, each
call on one thread), in turn, ``--rounds`` times. No RTSP farm, so the machine's time goes to
the pipeline alone. Per run, after ``--warmup``: frames analysed per camera-second, lag from
the frame's capture to its results stored (p50, p95), the cores the process used, its CPU
per analysed frame, and the cores of each kind of thread (``native``: threads Python did not
start, such as ONNX Runtime's own pool). On 2 shared cores the figures swing with the load;
the JSON and Markdown say the machine's load.

Usage: ``python benchmarks/inference_threads.py --yolo-int8 ../shared/data/models/yolov8n_coco_int8.onnx
[--cameras 8] [--fps 2] [--rounds 2] [--gate] [--note TEXT]`` (or ``--model CARD``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capacity import SUB_BITRATE, encode, float_yolo, machine  # noqa: E402  (beside this file)

from vision.config import parse_config  # noqa: E402
from vision.detect.detector import Detector  # noqa: E402
from vision.pipeline import Pipeline  # noqa: E402
from vision.store import Store  # noqa: E402
from vision.types import Detections, Frame  # noqa: E402

CLIPS = ("vtest", "parking", "highway")
WHOLE = "[[0, 0], [1, 0], [1, 1], [0, 1]]"
CLASSES = "[person, bicycle, bottle, cup, backpack, handbag, suitcase]"


def config_text(files: list[Path], args: argparse.Namespace, parallel: int | None, data: Path) -> str:
    gate = "true" if args.gate else "false"
    text = (
        f"camera_defaults: {{detect_fps: {args.fps}, realtime: true, loop: true, "
        f"motion_gate: {{enabled: {gate}}}}}\ncameras:\n"
    )
    for i in range(args.cameras):
        text += f"  cam{i}:\n    url: {files[i % len(files)]}\n    zones:\n      street:\n"
        text += f"        polygon: {WHOLE}\n        rules: {{crowd: {{enter_count: 7}}, litter: {{}}}}\n"
    split = "" if parallel is None else f"parallel: {parallel}, "
    return (
        text
        + f"detector: {{{split}model: {args.model}, classes: {CLASSES}}}\nstorage: {{data_dir: {data}}}\n"
    )


def thread_ticks() -> dict[int, int]:
    """CPU clock ticks (user + system) of each thread of this process, by native id."""
    ticks = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks[int(tid)] = int(fields[11]) + int(fields[12])
    return ticks


def kind(name: str) -> str:
    """``camera-cam3`` -> ``camera``, ``inference-2`` -> ``inference``."""
    return name.split("-")[0]


def one_run(files: list[Path], args: argparse.Namespace, parallel: int | None) -> dict[str, Any]:
    """The pipeline for ``--warmup`` + ``--seconds``: rates, lags, cores over the measured window."""
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(config_text(files, args, parallel, Path(tmp)))
        store = Store(Path(tmp), "threads")
        analysed, lags, window = [0], [], {}
        started = time.monotonic()
        pipeline: Pipeline

        def stored(frame: Frame, _: Detections) -> None:
            if time.monotonic() - started < args.warmup:
                return
            analysed[0] += 1
            worker = pipeline.workers[frame.camera_id]
            captured = worker.reader.wall_time(worker.unit.stream_pts(frame.pts))
            if captured is not None:
                lags.append(time.time() - captured)

        def measure() -> None:
            time.sleep(args.warmup)
            names = {t.native_id: kind(t.name) for t in threading.enumerate()}
            window["start"] = (time.monotonic(), time.process_time(), thread_ticks())
            time.sleep(args.seconds)
            window["end"] = (time.monotonic(), time.process_time(), thread_ticks())
            window["names"] = names
            window["calls"] = pipeline.detector.parallel
            pipeline.stop()

        pipeline = Pipeline(config, Detector.from_config(config.detector), store, on_detections=stored)
        threading.Thread(target=measure, daemon=True).start()
        try:
            pipeline.run()
        finally:
            store.close()
    (t0, cpu0, ticks0), (t1, cpu1, ticks1) = window["start"], window["end"]
    wall, clock = t1 - t0, os.sysconf("SC_CLK_TCK")
    kinds: dict[str, float] = {}
    for tid, ticks in ticks1.items():
        name = window["names"].get(tid, "native")
        kinds[name] = kinds.get(name, 0.0) + (ticks - ticks0.get(tid, 0)) / clock / wall
    lag, fps, cores = sorted(lags), analysed[0] / wall, (cpu1 - cpu0) / wall
    return {
        "parallel": parallel or "unset",
        "calls": window["calls"],
        "fps_per_camera": round(fps / args.cameras, 2),
        "lag_p50": round(statistics.median(lag), 2) if lag else None,
        "lag_p95": round(lag[int(0.95 * (len(lag) - 1))], 2) if lag else None,
        "cores_used": round(cores, 2),
        "cpu_ms_per_frame": round(1000 * cores / fps, 1) if fps else None,
        "thread_cores": {
            k: round(v, 2) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]) if v >= 0.005
        },
        "load_average": round(os.getloadavg()[0], 2),
    }


COLUMNS = (  # the report's table: heading, and the run's cell
    ("detector.parallel", lambda r: r["parallel"]),
    ("calls at once", lambda r: r["calls"]),
    ("fps per camera", lambda r: r["fps_per_camera"]),
    ("lag p50 / p95 s", lambda r: f"{r['lag_p50']} / {r['lag_p95']}"),
    ("cores used", lambda r: r["cores_used"]),
    ("CPU ms per frame", lambda r: r["cpu_ms_per_frame"]),
    ("of which inference", lambda r: r["inference_ms_per_frame"]),
    ("cores by thread", lambda r: ", ".join(f"{k} {v}" for k, v in r["thread_cores"].items())),
    ("load average", lambda r: r["load_average"]),
)


def inference_ms(run: dict[str, Any], cameras: int) -> float | None:
    """CPU ms of the inference threads (and ONNX Runtime's own pool: ``native``) per analysed frame."""
    frames = run["fps_per_camera"] * cameras
    cores = run["thread_cores"].get("inference", 0.0) + run["thread_cores"].get("native", 0.0)
    return round(1000 * cores / frames, 1) if frames else None


def markdown(result: dict[str, Any]) -> str:
    m, gate = result["machine"], "on" if result["gate"] else "off"
    text = (
        "# Inference threads: one call over every core, or one single-threaded call per core\n\n"
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['system']}. Model `{result['model']}`; "
        f"{result['cameras']} cameras paced in real time (looping {SUB_BITRATE}b/s 640x360 substreams of "
        f"{', '.join(CLIPS)}), {result['fps']} detections/s each, motion gate {gate}; {result['warmup']} s "
        f"warm-up, {result['seconds']} s measured per run, the two ways in turn. Lag: from the frame's "
        "capture to its results stored. Of which inference: the CPU of the inference threads and ONNX "
        "Runtime's pool per frame. Cores by thread: by kind of thread (native: threads Python did "
        "not start, e.g. ONNX Runtime's pool).\n\n"
    )
    text += f"**{result['note']}**\n\n" if result["note"] else ""
    rows = [[heading for heading, _ in COLUMNS], ["---"] * len(COLUMNS)]
    rows += [[str(cell(run)) for _, cell in COLUMNS] for run in result["runs"]]
    return text + "".join(f"| {' | '.join(row)} |\n" for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="our detector.model")
    parser.add_argument("--yolo-int8", type=Path, help="make the float YOLOv8n from this INT8 export")
    parser.add_argument("--imgsz", default="384,640", help="height,width of that float export")
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--fps", type=float, default=2.0)
    parser.add_argument("--gate", action="store_true", help="motion gate on (off: every frame detected)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each way, in turn")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--note", default="", help="a line for the report (e.g. the machine was shared)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("inference_threads"))
    args = parser.parse_args()
    result: dict[str, Any] = {
        "machine": machine(),
        **{k: getattr(args, k) for k in ("cameras", "fps", "gate")},
    }
    result |= {"warmup": args.warmup, "seconds": args.seconds, "note": args.note, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        if args.yolo_int8:
            height, width = (int(x) for x in args.imgsz.split(","))
            args.model = str(float_yolo(args.yolo_int8, (height, width), Path(tmp))[0])
        result["model"] = f"YOLOv8n float {args.imgsz} (from INT8)" if args.yolo_int8 else args.model
        files = [encode(name, Path(tmp), (640, 360, SUB_BITRATE)) for name in CLIPS]
        for _ in range(args.rounds):
            for parallel in (1, None):
                run = one_run(files, args, parallel)
                result["runs"].append(run | {"inference_ms_per_frame": inference_ms(run, args.cameras)})
                print(json.dumps(result["runs"][-1]), flush=True)
    result["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
