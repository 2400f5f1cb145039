"""Inference alone: CPU per YOLOv8n float input before and after the graph rewrites
(vision/detect/graph.py), and what ONNX Runtime's settings and batching do, within one
process and between processes.

The model is the one capacity.py makes with ``--yolo-int8``: the float YOLOv8n rebuilt from
the shared INT8 export, Ultralytics' ONNX export at 384x640 (batch 1); and, for the batch
rows, the same weights exported with ``dynamic=True``. The inputs are real frames: 8 each of
the parking, vtest and highway footage, resized to 640x360 (the capacity farm's substreams)
and placed as our detector places them. Each variant is one ONNX Runtime session; a round
runs every variant on the frames (``--calls`` calls), the variants in a shuffled order, and
times a fixed single-threaded numpy workload (the yardstick: matmul + tanh) in the same
round, so a round where the machine itself ran slower shows in the yardstick too.
``--processes`` fresh processes run ``--rounds`` rounds each.

Variants (all ``ORT_ENABLE_ALL``, one intra-op thread, no spinning, as ``street-vision run``
uses them with 2 inference threads on 2 cores, unless said): ``before`` the exported file as
the detector loaded it until now; ``after`` the rewritten graph, as it loads it now; each
rewrite alone; ``after`` with 2 intra-op threads (spinning off, on), ONNX Runtime's default
threads (0: every core, spinning), denormals as zero, ``ORT_ENABLE_EXTENDED``, no memory
arena or pattern; batches of 2 and 4 frames per call (dynamic export, rewritten); and 2 calls
at once from two threads on one session (the pipeline's two inference threads).

CPU ms per input: the process's CPU time over the calls / inputs (every thread, ONNX
Runtime's pool included). "vs before": the variant's time over ``before``'s in the same
round, median over all rounds. Detections: ``before`` and ``after`` decoded by the
detector's own decoder (min score 0.25) on every frame: boxes paired by class and IoU.

Usage: ``python benchmarks/inference_graph.py --yolo-int8 ../shared/data/models/yolov8n_coco_int8.onnx
[--processes 3] [--rounds 8] [--calls 12] [--note TEXT]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capacity import float_yolo  # noqa: E402  (beside this file)
from report import arguments, caveats, machine, machine_line, publish  # noqa: E402  (beside this file)

from vision.detect.card import load_card  # noqa: E402
from vision.detect.compare import match  # noqa: E402
from vision.detect.graph import optimized, softmax_by_parts, split_convs  # noqa: E402
from vision.detect.onnx_backend import session_options  # noqa: E402
from vision.detect.params import DecodeParams  # noqa: E402
from vision.detect.preprocess import place, to_tensor  # noqa: E402
from vision.detect.yolo import decode_yolo_v8  # noqa: E402

FOOTAGE = ROOT.parent / "shared" / "data" / "footage"
CLIPS = ("parking_lane_topdown_intel.mp4", "vtest.avi", "highway_overpass_jitter_boofcv.mp4")
PER_CLIP = 8
SIZE = (640, 360)


def frames() -> list[np.ndarray]:
    """PER_CLIP frames spread over each clip, resized to the substreams' 640x360."""
    out = []
    for clip in CLIPS:
        capture = cv2.VideoCapture(str(FOOTAGE / clip))
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        for k in range(PER_CLIP):
            capture.set(cv2.CAP_PROP_POS_FRAMES, k * total // PER_CLIP)
            ok, frame = capture.read()
            if not ok:
                raise SystemExit(f"{FOOTAGE / clip}: cannot read frame {k * total // PER_CLIP}")
            out.append(cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA))
    return out


def rewritten(path: Path, rewrite: Callable[[onnx.ModelProto], int]) -> bytes:
    model = onnx.load(str(path))
    if not rewrite(model):
        raise SystemExit(f"{path}: {rewrite.__name__} found nothing to rewrite")
    return model.SerializeToString()


def options(threads: int = 1, spin: bool = False, **extra: Any) -> ort.SessionOptions:
    """Our session options (vision/detect/onnx_backend.py), with one setting changed."""
    chosen = session_options(threads, spin)
    if extra.get("denormal_as_zero"):
        chosen.add_session_config_entry("session.set_denormal_as_zero", "1")
    if extra.get("extended"):
        chosen.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    if extra.get("no_arena"):
        chosen.enable_cpu_mem_arena = False
        chosen.enable_mem_pattern = False
    return chosen


def sessions(folder: Path) -> dict[str, tuple[ort.InferenceSession, int, int]]:
    """Variant -> (session, frames per call, calls at once)."""
    fixed, dynamic = folder / "yolov8n_float.onnx", folder / "dynamic" / "yolov8n_float.onnx"
    after = optimized(fixed)
    after_dynamic = optimized(dynamic)
    if after is None or after_dynamic is None:
        raise SystemExit(f"{fixed}: graph.optimized found nothing to rewrite")
    made = {
        "before": (str(fixed), options()),
        "after": (after, options()),
        "softmax rewrite only": (rewritten(fixed, softmax_by_parts), options()),
        "split rewrite only": (rewritten(fixed, split_convs), options()),
        "after, intra-op 2, no spinning": (after, options(2)),
        "after, intra-op 2, spinning": (after, options(2, True)),
        "after, intra-op 0 (ORT default), spinning": (after, options(0, True)),
        "after, denormals as zero": (after, options(denormal_as_zero=True)),
        "after, ORT_ENABLE_EXTENDED": (after, options(extended=True)),
        "after, no memory arena/pattern": (after, options(no_arena=True)),
        "after, dynamic export, batch 1": (after_dynamic, options()),
    }
    out = {
        k: (ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"]), 1, 1)
        for k, (src, opts) in made.items()
    }
    dyn = out["after, dynamic export, batch 1"][0]
    out["after, dynamic export, batch 2"] = (dyn, 2, 1)
    out["after, dynamic export, batch 4"] = (dyn, 4, 1)
    out["after, 2 calls at once (2 threads)"] = (out["after"][0], 1, 2)
    return out


YARD = np.random.default_rng(0).standard_normal((192, 192)).astype(np.float32)


def yardstick() -> float:
    """CPU ms of a fixed single-threaded numpy workload (OPENBLAS_NUM_THREADS=1 in the worker)."""
    time.sleep(0.05)
    start = time.process_time()
    for _ in range(5):
        x = YARD
        for _ in range(40):
            x = np.tanh(YARD @ x)
    return (time.process_time() - start) * 1000 / 5


def timed(
    session: ort.InferenceSession, batches: list[np.ndarray], calls: int, at_once: int
) -> tuple[float, float]:
    """CPU ms and wall ms per input over ``calls`` calls on each of ``at_once`` threads."""
    name = session.get_inputs()[0].name
    time.sleep(0.05)  # a spinning session's pool, run just before, stops spinning (its CPU is not this one's)

    def work(offset: int) -> None:
        for i in range(calls):
            session.run(None, {name: batches[(i + offset) % len(batches)]})

    threads = [threading.Thread(target=work, args=(7 * k,)) for k in range(at_once)]
    cpu, wall = time.process_time(), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    inputs = calls * at_once * len(batches[0])
    return (time.process_time() - cpu) * 1000 / inputs, (time.perf_counter() - wall) * 1000 / inputs


def worker(folder: Path, rounds: int, calls: int) -> dict[str, Any]:
    """One process's rounds: per variant, its CPU and wall ms per input in each round."""
    card = load_card(folder / "yolov8n_float.yaml")
    tensors = [to_tensor([place(f, card.input)[0]], card.input) for f in frames()]
    batched = {n: [np.concatenate(tensors[i : i + n]) for i in range(0, len(tensors), n)] for n in (1, 2, 4)}
    made = sessions(folder)
    for session, size, at_once in made.values():  # warm-up: first calls allocate and pack weights
        timed(session, batched[size], 2, at_once)
    times: dict[str, list[list[float]]] = {k: [] for k in [*made, "yardstick"]}
    for _ in range(rounds):
        for key in random.sample(list(times), len(times)):
            if key == "yardstick":
                times[key].append([yardstick(), 0.0])
                continue
            session, size, at_once = made[key]
            times[key].append(list(timed(session, batched[size], max(1, calls // size), at_once)))
    return {"times": times, "load_average": round(os.getloadavg()[0], 2)}


def detections(folder: Path) -> dict[str, Any]:
    """``before`` and ``after`` decoded on every frame: boxes, pairs, the largest coordinate change."""
    card = load_card(folder / "yolov8n_float.yaml")
    path = folder / "yolov8n_float.onnx"
    before = ort.InferenceSession(str(path), options())
    after = ort.InferenceSession(optimized(path), options())
    params = DecodeParams(min_score=0.25)
    boxes = paired = 0
    worst_px = worst_score = 0.0
    for frame in frames():
        tensor, geometry = place(frame, card.input)
        x = {before.get_inputs()[0].name: to_tensor([tensor], card.input)}
        a = decode_yolo_v8(before.run(None, x), [geometry], params)[0]
        b = decode_yolo_v8(after.run(None, x), [geometry], params)[0]
        ia, ib, _ = match(a, b, min_iou=0.99)
        boxes, paired = boxes + max(len(a), len(b)), paired + len(ia)
        if len(ia):
            worst_px = max(worst_px, float(np.abs(a.xyxy[ia] - b.xyxy[ib]).max()))
            worst_score = max(worst_score, float(np.abs(a.score[ia] - b.score[ib]).max()))
    return {
        "boxes": boxes,
        "paired_same_class": paired,
        "max_box_change_px": worst_px,
        "max_score_change": worst_score,
    }


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per variant: median and range of CPU ms per input over every round, its median ratio to
    ``before`` in the same round, median wall ms, and each process's median CPU ms."""
    rows = []
    for key in runs[0]["times"]:
        cpu = [r[0] for run in runs for r in run["times"][key]]
        wall = [r[1] for run in runs for r in run["times"][key]]
        ratio = [
            mine[0] / base[0]
            for run in runs
            for mine, base in zip(run["times"][key], run["times"]["before"], strict=True)
        ]
        rows.append(
            {
                "variant": key,
                "cpu_ms_per_input": round(statistics.median(cpu), 2),
                "cpu_ms_min": round(min(cpu), 2),
                "cpu_ms_max": round(max(cpu), 2),
                "vs_before": round(statistics.median(ratio), 3) if key != "yardstick" else None,
                "wall_ms_per_input": round(statistics.median(wall), 2) if key != "yardstick" else None,
                "per_process_cpu_ms": [
                    round(statistics.median(r[0] for r in run["times"][key]), 2) for run in runs
                ],
            }
        )
    return rows


def correlation(runs: list[dict[str, Any]]) -> float | None:
    """Pearson r, over every round, between ``before``'s CPU ms and the yardstick's (3 rounds at least)."""
    a = [r[0] for run in runs for r in run["times"]["before"]]
    b = [r[0] for run in runs for r in run["times"]["yardstick"]]
    return round(float(np.corrcoef(a, b)[0, 1]), 2) if len(a) >= 3 else None


def markdown(result: dict[str, Any]) -> str:
    m, d = result["machine"], result["detections"]
    text = (
        "# Inference alone: YOLOv8n float per input, graph rewrites and ONNX Runtime settings\n\n"
        f"{machine_line(m, 'onnxruntime', 'numpy')} "
        f"Model `{result['model']}`, {len(CLIPS) * PER_CLIP} real 640x360 frames (parking, vtest, highway). "
        f"{result['processes']} processes x {result['rounds']} rounds, {result['calls']} inputs per variant "
        "per round, variants in a shuffled order each round (see the module's docstring). CPU ms per input: "
        "median over every round of every process (min-max); vs before: the ratio to `before` in the same "
        "round, median; per process: each process's median. Yardstick: a fixed single-threaded numpy "
        "workload timed in the same rounds; its correlation with `before` over the rounds: "
        f"r = {result['r']}. "
        f"Load average per process: {', '.join(str(r['load_average']) for r in result['runs'])}.\n\n"
    )
    text += "\n".join(caveats(result)) + "\n" if caveats(result) else ""
    text += (
        f"Detections, `before` against `after` (min score 0.25, {len(CLIPS) * PER_CLIP} frames): "
        f"{d['boxes']} boxes, {d['paired_same_class']} paired with the same class at IoU >= 0.99; largest "
        f"box coordinate change {d['max_box_change_px']:.2g} px, "
        f"score change {d['max_score_change']:.2g}.\n\n"
    )
    text += "| variant | CPU ms per input | min-max | vs before | wall ms per input | per process |\n"
    text += "|---|---|---|---|---|---|\n"
    for row in result["rows"]:
        text += (
            f"| {row['variant']} | {row['cpu_ms_per_input']} | {row['cpu_ms_min']}-{row['cpu_ms_max']} | "
            f"{row['vs_before'] if row['vs_before'] is not None else '-'} | "
            f"{row['wall_ms_per_input'] if row['wall_ms_per_input'] is not None else '-'} | "
            f"{', '.join(str(x) for x in row['per_process_cpu_ms'])} |\n"
        )
    return text


def main() -> None:
    parser = arguments(__doc__, rounds=8)
    parser.add_argument("--yolo-int8", type=Path, help="make the float YOLOv8n from this INT8 export")
    parser.add_argument("--imgsz", default="384,640", help="height,width of that float export")
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--calls", type=int, default=12, help="inputs per variant per round")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)  # a measuring process: its folder
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.rounds, args.calls)))
        return
    if not args.yolo_int8:
        parser.error("--yolo-int8 is required: the float YOLOv8n is made from it")
    result: dict[str, Any] = {"machine": machine(), "model": f"YOLOv8n float {args.imgsz} (from INT8)"}
    result |= {"processes": args.processes, "rounds": args.rounds, "calls": args.calls, "note": args.note}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        height, width = (int(x) for x in args.imgsz.split(","))
        _, weights = float_yolo(args.yolo_int8, (height, width), folder)
        from ultralytics import YOLO

        (folder / "dynamic").mkdir()  # its own folder: Ultralytics writes the export beside the weights
        copy = folder / "dynamic" / weights.name
        copy.write_bytes(weights.read_bytes())
        YOLO(str(copy)).export(format="onnx", imgsz=[height, width], dynamic=True)
        result["detections"] = detections(folder)
        env = os.environ | {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        command = [sys.executable, __file__, "--worker", str(folder), "--rounds", str(args.rounds)]
        result["runs"] = []
        for _ in range(args.processes):
            done = subprocess.run(
                [*command, "--calls", str(args.calls)], env=env, capture_output=True, text=True, check=True
            )
            result["runs"].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(result["runs"][-1]["load_average"], flush=True)
    result["rows"], result["r"] = summarise(result["runs"]), correlation(result["runs"])
    publish("inference_graph", result, markdown)


if __name__ == "__main__":
    main()
