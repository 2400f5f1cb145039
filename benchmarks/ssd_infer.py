"""Where the embedded SSD's inference CPU goes: session.run alone under ONNX Runtime's options, against
the same session inside the pipeline, in one run.

Issue 16 read the SSD's 24-27 CPU ms per detected frame in the pipeline against ~10 ms "alone"
(benchmarks/detect.md). That 10 ms was measured on another machine (detect.json: kernel build
fc-v595, 22 Nov; the capacity runs: fc-v1045), so this measures both sides on one machine, in one run:

Part 1 (alone): the committed model on frames of the sample videos (stretched to 300x300, uint8,
contiguous: the detector's own tensors), CPU ms per input of ``session.run`` under each variant
(:data:`VARIANTS`: batch 1/2/4/8, batch sizes varying call to call, 2 intra-op threads with and
without spinning, memory pattern or arena off, denormals as zero, graph optimization "extended"
instead of "all", two callers at once on one session as the pipeline's two inference threads do,
and with ``--postprocessed`` the model before the cut). CPU: the process's (``time.process_time``:
the calling threads and ONNX Runtime's pool; the process does nothing else meanwhile). Rounds take
every variant in turn, so a shared machine's swings hit all alike; medians over the rounds. The
optimized graph ONNX Runtime runs is dumped once and its operators counted (are the QDQ pairs fused
into QLinearConv?).

Part 2 (pipeline): ``Pipeline.run`` on file cameras (benchmarks/capacity_profile.py's: the sample
scenarios in turn, detect_fps 5, read as fast as possible), in a child process with the model's run
wrapped: per call, its batch size and the calling thread's CPU time (``time.thread_time``; the
pipeline's calls run on one intra-op thread each when cameras >= cores, so that is all of it; the
child reports the detector's split).

Usage: ``python3 benchmarks/ssd_infer.py [--rounds 8] [--cameras 6] [--postprocessed PP.onnx]
[--note TEXT]``; writes benchmarks/ssd_infer.{md,json}. ``--markdown`` rewrites the .md from the .json.
About 2-3 minutes on 2 quiet cores.
"""

from __future__ import annotations

import collections
import json
import os
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
import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from capacity_profile import config as camera_config  # noqa: E402
from report import arguments, caveats, machine, machine_line, publish  # noqa: E402

from vision.detect.card import load_card  # noqa: E402
from vision.detect.detector import Detector  # noqa: E402
from vision.detect.preprocess import place, to_tensor  # noqa: E402
from vision.types import Detections  # noqa: E402

VIDEOS = ("plaza", "litter", "bike_parking")
INPUTS_PER_ROUND = 16  # inputs each variant runs per round
VARYING = (3, 1, 5, 2, 7, 4, 6, 8)  # batch sizes call to call, as a pipeline's rounds give them
ALL = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
# name -> (session options, batch sizes in turn, callers at once, model: "cut" or "postprocessed")
VARIANTS: dict[str, tuple[dict[str, Any], tuple[int, ...], int, str]] = {
    "pipeline's session, batch 1": ({}, (1,), 1, "cut"),
    "pipeline's session, batch 2": ({}, (2,), 1, "cut"),
    "pipeline's session, batch 4": ({}, (4,), 1, "cut"),
    "pipeline's session, batch 8": ({}, (8,), 1, "cut"),
    "pipeline's session, batch varying 1-8": ({}, VARYING, 1, "cut"),
    "two callers at once, batch 1": ({}, (1,), 2, "cut"),
    "2 intra-op threads, batch 1": ({"threads": 2}, (1,), 1, "cut"),
    "2 intra-op threads, batch 4": ({"threads": 2}, (4,), 1, "cut"),
    "2 intra-op threads spinning, batch 1": ({"threads": 2, "spin": True}, (1,), 1, "cut"),
    "memory pattern off, batch 1": ({"pattern": False}, (1,), 1, "cut"),
    "memory pattern off, batch varying 1-8": ({"pattern": False}, VARYING, 1, "cut"),
    "memory arena off, batch 1": ({"arena": False}, (1,), 1, "cut"),
    "denormals as zero, batch 1": ({"denormal_as_zero": True}, (1,), 1, "cut"),
    "optimization extended (not all), batch 1": (
        {"level": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED},
        (1,),
        1,
        "cut",
    ),
    "post-processed model (before the cut), batch 1": ({}, (1,), 1, "postprocessed"),
    "weights re-encoded as int8 (u8s8 kernels), batch 1": ({}, (1,), 1, "s8"),
}
BASE = "pipeline's session, batch 1"
CLASSES = ["person", "bicycle", "bottle", "cup"]  # benchmarks/capacity_profile.py's detector.classes


def session(
    path: Path,
    threads: int = 1,
    spin: bool = False,
    pattern: bool = True,
    arena: bool = True,
    denormal_as_zero: bool = False,
    level: ort.GraphOptimizationLevel = ALL,
    dump: Path | None = None,
) -> ort.InferenceSession:
    """A session as vision/detect/onnx_backend.py makes it (1 intra-op thread: the pipeline's split when
    cameras >= cores), with one option changed."""
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.enable_mem_pattern = pattern
    options.enable_cpu_mem_arena = arena
    if denormal_as_zero:
        options.add_session_config_entry("session.set_denormal_as_zero", "1")
    if dump is not None:
        options.optimized_model_filepath = str(dump)
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def raw_frames(count: int) -> list[np.ndarray]:
    """``count`` frames of the sample videos (768x576), half a second apart, the videos in turn."""
    captures = [cv2.VideoCapture(str(ROOT / "sample_videos" / f"{v}.mp4")) for v in VIDEOS]
    out: list[np.ndarray] = []
    while len(out) < count:
        for capture in captures:
            for _ in range(12):
                ok, image = capture.read()
            if not ok:
                raise SystemExit(f"the sample videos hold fewer than {count} frames half a second apart")
            out.append(image)
    return out[:count]


def inputs(count: int) -> list[np.ndarray]:
    """``count`` frames of the sample videos as the detector places them (300x300 uint8)."""
    card = load_card("default")
    return [place(image, card.input)[0] for image in raw_frames(count)]


def runs_outputs(path: Path, pool: list[np.ndarray]) -> list[np.ndarray]:
    """The model's outputs for ``pool`` in one batch."""
    s = session(path)
    return s.run(None, {s.get_inputs()[0].name: to_tensor(pool, load_card("default").input)})


def runner(
    s: ort.InferenceSession, pool: list[np.ndarray], sizes: tuple[int, ...], callers: int
) -> Callable[[], int]:
    """A function that runs INPUTS_PER_ROUND inputs through ``s`` (batch sizes ``sizes`` in turn, split
    between ``callers`` threads) and returns how many it ran."""
    card = load_card("default")
    name = s.get_inputs()[0].name
    batches = [to_tensor(pool[i : i + b], card.input) for i, b in enumerate(sizes)]
    for batch in batches:  # each shape once: ONNX Runtime plans a new shape on its first call
        s.run(None, {name: batch})

    def work(share: int) -> int:
        done = call = 0
        while done < share:
            batch = batches[call % len(batches)]
            s.run(None, {name: batch})
            done, call = done + len(batch), call + 1
        return done

    def run() -> int:
        if callers == 1:
            return work(INPUTS_PER_ROUND)
        counts = [0] * callers
        threads = [
            threading.Thread(target=lambda k=k: counts.__setitem__(k, work(INPUTS_PER_ROUND // callers)))
            for k in range(callers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sum(counts)

    return run


def signed_weights(model: Path, out: Path) -> None:
    """The model with its convolutions' uint8 weights re-encoded as int8 (w - 128, zero point - 128: the
    same real values), so that ONNX Runtime picks its u8s8 kernels instead of u8u8."""
    graph = onnx.load(str(model))
    initializers = {i.name: i for i in graph.graph.initializer}
    weights = {n.input[1] for n in graph.graph.node if n.op_type == "Conv"}
    for node in graph.graph.node:
        if node.op_type == "DequantizeLinear" and node.output[0] in weights:
            for name in (node.input[0], node.input[2]):
                value = onnx.numpy_helper.to_array(initializers[name]).astype(np.int16) - 128
                initializers[name].CopyFrom(onnx.numpy_helper.from_array(value.astype(np.int8), name))
    onnx.save(graph, str(out))


def alone(rounds: int, postprocessed: Path | None) -> dict[str, Any]:
    """Part 1: CPU and wall ms per input of each variant (medians of interleaved rounds), and the
    operators of the graph ONNX Runtime runs."""
    model = load_card("default").model_path
    pool = inputs(max(max(v[1]) for v in VARIANTS.values()) + len(VARYING))
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "optimized.onnx"
        session(model, dump=dump)
        graph = onnx.load(str(dump)).graph
        operators = collections.Counter(
            f"{n.domain + '.' if n.domain else ''}{n.op_type}" for n in graph.node
        )
        signed_weights(model, Path(tmp) / "s8.onnx")
        paths = {"cut": model, "postprocessed": postprocessed, "s8": Path(tmp) / "s8.onnx"}
        runs = {
            name: runner(session(paths[which], **options), pool, sizes, callers)  # type: ignore[arg-type]
            for name, (options, sizes, callers, which) in VARIANTS.items()
            if paths[which] is not None
        }
        cut, signed = (runs_outputs(paths[k], pool[:8]) for k in ("cut", "s8"))
    differs = {
        k: float(np.abs(a - b).max()) for k, a, b in zip(("boxes", "scores"), cut, signed, strict=True)
    }
    cpu: dict[str, list[float]] = {n: [] for n in runs}
    wall: dict[str, list[float]] = {n: [] for n in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            c, w = time.process_time(), time.perf_counter()
            count = run()
            cpu[name].append(1000 * (time.process_time() - c) / count)
            wall[name].append(1000 * (time.perf_counter() - w) / count)
    base = statistics.median(cpu[BASE])
    return {
        "variants": {
            n: {
                "cpu_ms_per_input": round(statistics.median(cpu[n]), 2),
                "cpu_ms_per_input_min": round(min(cpu[n]), 2),
                "wall_ms_per_input": round(statistics.median(wall[n]), 2),
                "vs_batch_1": round(statistics.median(cpu[n]) / base, 2),
            }
            for n in runs
        },
        "optimized_operators": dict(operators.most_common()),
        "s8_max_difference": {k: round(v, 4) for k, v in differs.items()},
    }


def filters(rounds: int) -> dict[str, Any]:
    """Part 3: the detector's own filters on a frame's boxes (detector.classes, the card's box limits),
    the old way (np.isin, np.clip then index) against the new (Detector and BoxLimits: table lookups),
    on the boxes of 24 sample-video frames at min_score 0.4; thread CPU us per frame, best of rounds."""
    card = load_card("default")
    frames = raw_frames(24)
    detector = Detector(card, threads=1, min_score=0.4, classes=CLASSES)
    found = Detector(card, threads=1, min_score=0.4).detect(frames)
    keep = np.array([k for k, v in detector.names.items() if v in CLASSES], np.int32)
    fraction = detector.limits.fraction  # type: ignore[union-attr]

    def old() -> list[Detections]:
        out = []
        for d, f in zip(found, frames, strict=True):
            xyxy = d.xyxy
            share = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1]) / float(f.shape[1] * f.shape[0])
            d = d[share <= fraction[np.clip(d.class_id, 0, len(fraction) - 1)]]
            out.append(d[np.isin(d.class_id, keep)])
        return out

    def new() -> list[Detections]:
        out = []
        for d, f in zip(found, frames, strict=True):
            fits = detector.limits.fits(d, f.shape[1], f.shape[0])  # type: ignore[union-attr]
            out.append(d[fits & np.take(detector.wanted, d.class_id + 1, mode="clip")])
        return out

    for a, b in zip(old(), new(), strict=True):  # the same boxes, or no figures
        if not (np.array_equal(a.xyxy, b.xyxy) and np.array_equal(a.class_id, b.class_id)):
            raise SystemExit("the new filters keep other boxes than the old")

    best = {"old (np.isin, np.clip)": [], "new (table lookups)": []}
    for _ in range(rounds):
        for name, fn in zip(best, (old, new), strict=True):
            started = time.thread_time()
            for _ in range(20):
                fn()
            best[name].append(1e6 * (time.thread_time() - started) / 20 / len(frames))
    return {
        "boxes_per_frame": round(sum(len(d) for d in found) / len(found), 1),
        "us_per_frame": {k: round(min(v), 1) for k, v in best.items()},
    }


def pipeline_child(config_path: Path, out: Path) -> None:
    """Part 2 (in its own process): the pipeline on a config with the model's run wrapped."""
    from vision.config import parse_config
    from vision.detect import onnx_backend
    from vision.detect.detector import Detector
    from vision.pipeline import Pipeline
    from vision.store import Store

    calls: dict[int, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    lock = threading.Lock()
    run = onnx_backend.OnnxModel.run

    def timed(self: Any, batch: np.ndarray) -> list[np.ndarray]:
        started = time.thread_time()
        result = run(self, batch)
        spent = time.thread_time() - started
        with lock:
            calls[batch.shape[0]][0] += 1
            calls[batch.shape[0]][1] += spent
        return result

    onnx_backend.OnnxModel.run = timed  # type: ignore[method-assign]
    config = parse_config(config_path.read_text())
    store = Store(config.storage.data_dir, "ssd_infer")
    detector = Detector.from_config(config.detector)
    threads = detector.engine.model.session.get_session_options().intra_op_num_threads  # type: ignore[attr-defined]
    summary = Pipeline(config, detector, store).run()
    store.close()
    count = sum(b * n for b, (n, _) in calls.items())
    out.write_text(
        json.dumps(
            {
                "inference_threads": detector.parallel,
                "intra_op_threads": threads,
                "frames_detected": summary.to_record()["frames_detected"],
                "inputs": count,
                "cpu_ms_per_input": round(1000 * sum(c for _, c in calls.values()) / count, 2),
                "by_batch": {
                    str(b): {"calls": int(n), "cpu_ms_per_input": round(1000 * c / n / b, 2)}
                    for b, (n, c) in sorted(calls.items())
                },
            }
        )
        + "\n"
    )


def in_pipeline(cameras: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp) / "cameras.yaml", Path(tmp) / "calls.json"
        path.write_text(yaml.safe_dump(camera_config(cameras, Path(tmp) / "data")))
        command = [sys.executable, __file__, "--pipeline-child", str(path), str(out)]
        env = os.environ | {"PYTHONPATH": str(ROOT)}
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        return {"cameras": cameras, **json.loads(out.read_text())}


def markdown(result: dict[str, Any]) -> str:
    m, a, p = result["machine"], result["alone"], result["pipeline"]
    base = a["variants"][BASE]["cpu_ms_per_input"]
    lines = [
        "# The embedded SSD's inference: session.run alone, its options, and inside the pipeline",
        "",
        machine_line(m, "onnxruntime"),
        "",
        *caveats(result),
    ]
    lines += [
        "`python3 benchmarks/ssd_infer.py " + " ".join(result["argv"]) + "`",
        "",
        "Why: issue 16 set the SSD's 24-27 CPU ms per detected frame in the pipeline against the ~10 ms "
        "of benchmarks/detect.md (1 thread, batch 1). That figure was measured on 22 Nov on a machine "
        "of another kernel build (detect.json: fc-v595; this one: the line above), so both sides are "
        "measured here, on one machine, in one run.",
        "",
        "## Part 1: session.run alone",
        "",
        f"The committed model (`models/ssd_mobilenet_v2_coco.onnx`) on sample-video frames placed as the "
        f"detector places them (300x300 uint8, contiguous); process CPU ms per input (the calling threads "
        f"and ONNX Runtime's pool), medians of {result['rounds']} interleaved rounds of "
        f"{INPUTS_PER_ROUND} inputs per variant. One option changed at a time from the pipeline's session "
        "at capacity (1 intra-op thread, no spinning, optimization level all, memory pattern and arena on).",
        "",
        "| variant | CPU ms per input | min over rounds | vs batch 1 | wall ms per input |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {n} | {v['cpu_ms_per_input']} | {v['cpu_ms_per_input_min']} | {v['vs_batch_1']:.2f} | "
        f"{v['wall_ms_per_input']} |"
        for n, v in a["variants"].items()
    ]
    ops = a["optimized_operators"]
    lines += [
        "",
        "The graph ONNX Runtime runs (`optimized_model_filepath`, level all): "
        + ", ".join(f"{k} {v}" for k, v in ops.items())
        + ". The model's DequantizeLinear/QuantizeLinear pairs around its 72 Conv are fused into "
        "QLinearConv (channels-last, com.microsoft). The int8 re-encoding of the weights gives other "
        "outputs (ONNX Runtime's quantization guide warns that u8s8 may saturate on AVX2 without VNNI, "
        "as here), so it is no candidate for identical detections: largest output difference on "
        f"8 frames, boxes {a['s8_max_difference']['boxes']}, scores {a['s8_max_difference']['scores']}.",
        "",
        "## Part 2: the same model inside the pipeline",
        "",
        f"`Pipeline.run` on {p['cameras']} file cameras (the sample scenarios in turn, detect_fps 5, read as "
        f"fast as possible): {p['inference_threads']} inference threads, {p['intra_op_threads']} intra-op "
        f"thread(s) per call; {p['frames_detected']} frames detected, {p['inputs']} model inputs. Thread CPU "
        f"ms per input of the model's run: **{p['cpu_ms_per_input']}** (alone, batch 1, same run: {base}).",
        "",
        "| batch | calls | CPU ms per input |",
        "|---|---|---|",
    ]
    lines += [f"| {b} | {v['calls']} | {v['cpu_ms_per_input']} |" for b, v in p["by_batch"].items()]
    f = result["filters"]
    lines += [
        "",
        "## Part 3: the detector's filters on its boxes, old way and new",
        "",
        f"detector.classes ({', '.join(CLASSES)}) and the card's box limits on the boxes of 24 sample-video "
        f"frames at min_score 0.4 ({f['boxes_per_frame']} boxes a frame); thread CPU microseconds per frame, "
        "best of the rounds. The same boxes kept both ways (checked here on these frames, and in "
        "tests/test_ssd_filters.py).",
        "",
        "| way | us per frame |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in f["us_per_frame"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--pipeline-child":
        pipeline_child(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    parser = arguments(__doc__, rounds=8, rewrite=True)
    parser.add_argument("--cameras", type=int, default=6, help="file cameras of part 2")
    parser.add_argument("--postprocessed", type=Path, help="the model before the cut, timed as a variant")
    args = parser.parse_args()
    if args.markdown:
        (OUT / "ssd_infer.md").write_text(markdown(json.loads((OUT / "ssd_infer.json").read_text())))
        return
    result: dict[str, Any] = {
        "machine": machine(),
        "rounds": args.rounds,
        "note": args.note,
        "argv": sys.argv[1:],
    }
    result["alone"] = alone(args.rounds, args.postprocessed)
    result["filters"] = filters(args.rounds)
    result["pipeline"] = in_pipeline(args.cameras)
    publish("ssd_infer", result, markdown)


if __name__ == "__main__":
    main()
