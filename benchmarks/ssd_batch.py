"""The embedded SSD batched across cameras: per-image ms at batch 1 vs N, and the pipeline's per-frame
work other than inference against inference.

Part 1 (batching): frames of the sample videos (768x576). For each batch size B, one call of the
detector's whole path on B frames (resize, tensor, ONE session.run, score filter + NMS in numpy)
and one session.run alone on the prepared tensor; per image = call time / B. Rounds take every
batch size in turn, so that the swings of a shared machine hit all sizes alike; medians over the
rounds. With ``--postprocessed`` (the model as committed before the cut, e.g. ``git show
1164ddf:models/ssd_mobilenet_v2_coco.onnx``), the old path is timed in the same rounds: one
session.run per image of that model (NMS inside the graph), B of them in a row.

Part 2 (pipeline): CPU time by stage (benchmarks/stage_cpu.py) of the pipeline on file cameras
(``benchmarks/capacity_profile.py``'s cameras: the sample scenarios in turn, read as fast as possible),
from the run's start to its end (not start-up): each thread's own CPU time, split by timed per-frame
sections. The issue's ratio: CPU ms per detected frame of everything but inference and the readers'
demux and decode (with start-up left out) against inference's (ONNX Runtime's run). ``--before
CHECKOUT`` measures another checkout's code on the same cameras in the same run, with this checkout's
stages. ``--sampled`` also runs the py-spy profile of each side (capacity_profile.py: thread time by
stack, which counts a thread waiting for a core as busy, so its ratio moves with the machine's load;
it shows which code inside a stage is busy).

Usage: ``python3 benchmarks/ssd_batch.py [--rounds 12] [--cameras 6] [--postprocessed PP.onnx] [--markdown]
[--before /path/to/main] [--pairs 2] [--profile-only] [--sampled]``; writes benchmarks/ssd_batch.{md,json}.
``--pairs`` measures before and after that many times, every other pair in the other order;
``--profile-only`` keeps part 1 from the committed JSON. Minutes on 2 busy cores.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capacity_profile import config as camera_config  # noqa: E402
from capacity_profile import markdown as profile_markdown  # noqa: E402
from capacity_profile import profile  # noqa: E402
from report import arguments, caveats, machine, machine_line, publish  # noqa: E402
from stage_cpu import markdown as stages_markdown  # noqa: E402

from models.build_default_model import CHECK_SCORE, check_batched  # noqa: E402
from vision.detect.card import DEFAULT_CARD, load_card  # noqa: E402
from vision.detect.detector import Detector  # noqa: E402
from vision.detect.preprocess import place, to_tensor  # noqa: E402

VIDEOS = ("plaza", "litter", "bike_parking")
SIZES = (1, 4, 8, 16, 32)
AGREEMENT_FRAMES = 90
OVERHEAD = ("inference_ms", "other_ms", "other_over_inference", "inputs_per_frame")
NOT_WORK = ("inference (ONNX Runtime)", "video decoding (readers)", "start-up, imports, other")  # sampled
OUT = Path(__file__).resolve().parent
IMAGES = ROOT.parent / "shared" / "data" / "images"


def frames(count: int) -> list[np.ndarray]:
    """``count`` distinct frames (768x576), a second apart, from the sample videos in turn."""
    out: list[np.ndarray] = []
    captures = [cv2.VideoCapture(str(ROOT / "sample_videos" / f"{v}.mp4")) for v in VIDEOS]
    while len(out) < count:
        for capture in captures:
            for _ in range(round(capture.get(cv2.CAP_PROP_FPS))):
                ok, image = capture.read()
            if not ok:
                raise SystemExit(f"the sample videos hold fewer than {count} frames a second apart")
            out.append(image)
    return out[:count]


def seconds(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def batching(rounds: int, sizes: tuple[int, ...], postprocessed: Path | None) -> dict[str, Any]:
    """Per-image ms of the whole path and of session.run alone at each batch size (medians of rounds)."""
    detector = Detector(load_card("default"), min_score=0.4)
    model = detector.engine.model  # type: ignore[attr-defined]
    pool = frames(max(sizes))
    tensors = {
        b: to_tensor([place(f, detector.card.input)[0] for f in pool[:b]], detector.card.input) for b in sizes
    }
    old = None
    if postprocessed is not None:
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = 0, 1
        old = ort.InferenceSession(str(postprocessed), options, providers=["CPUExecutionProvider"])
    name = model.input_name
    timings: dict[str, dict[int, list[float]]] = {"path": {}, "inference": {}, "old_sequential": {}}
    for round_no in range(rounds + 1):  # round 0 warms up
        for b in sizes:
            path = seconds(lambda b=b: detector.detect(pool[:b]))
            inference = seconds(lambda b=b: model.run(tensors[b]))
            sequential = (
                seconds(lambda b=b: [old.run(None, {name: tensors[b][i : i + 1]}) for i in range(b)])
                if old is not None
                else None
            )
            if round_no:
                timings["path"].setdefault(b, []).append(path / b)
                timings["inference"].setdefault(b, []).append(inference / b)
                if sequential is not None:
                    timings["old_sequential"].setdefault(b, []).append(sequential / b)
    return {
        kind: {str(b): round(1000 * statistics.median(v), 2) for b, v in per.items()}
        for kind, per in timings.items()
        if per
    }


def agreement(postprocessed: Path, count: int) -> dict[str, Any]:
    """build_default_model.py's own check: the shared images and ``count`` video frames in one batch
    through the committed model, against the post-processed model one by one (raises on a difference)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = sorted(IMAGES.glob("*.jpg"))
        for i, image in enumerate(frames(count)):
            paths.append(Path(tmp) / f"frame{i:03d}.png")
            cv2.imwrite(str(paths[-1]), image)
        agreed = check_batched(postprocessed, DEFAULT_CARD, paths)
    return {"images": len(paths), "detections_identical": agreed, "min_score": CHECK_SCORE}


def stages(cameras: int, checkout: Path) -> dict[str, Any]:
    """CPU time by stage of ``checkout``'s pipeline on ``cameras`` file cameras (benchmarks/stage_cpu.py
    run in that checkout, its ``vision`` first on the path)."""
    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp) / "cameras.yaml", Path(tmp) / "stages.json"
        path.write_text(yaml.safe_dump(camera_config(cameras, Path(tmp) / "data")))
        command = [sys.executable, str(OUT / "stage_cpu.py"), str(path), str(out)]
        env = os.environ | {"PYTHONPATH": str(checkout)}
        subprocess.run(command, cwd=checkout, env=env, check=True, capture_output=True, text=True)
        return {"cameras": cameras, **json.loads(out.read_text())}


def overhead(result: dict[str, Any]) -> dict[str, float | None]:
    """Sampled (py-spy): thread ms per frame of inference and of the other per-frame work, their ratio."""
    stages = result["stages"]
    inference = stages.get(NOT_WORK[0], {}).get("ms_per_frame") or 0.0
    other = sum(v["ms_per_frame"] or 0.0 for k, v in stages.items() if k not in NOT_WORK)
    gate = stages.get("motion gate", {}).get("ms_per_frame") or 0.0
    return {
        "inference_ms": round(inference, 2),
        "other_ms": round(other, 2),
        "other_over_inference": round(other / inference, 3) if inference else None,
        "motion_gate_ms": round(gate, 2),
    }


def markdown(result: dict[str, Any]) -> str:
    b = result["batching"]
    sizes = list(b["path"])
    lines = [
        "# The embedded SSD batched across cameras",
        "",
        machine_line(result["machine"], "onnxruntime"),
        "",
    ]
    if "batching_machine" in result:
        k = result["batching_machine"]
        lines += [
            f"Part 1 (batching) is kept from an earlier run (`--profile-only`), load average "
            f"{k['load_average_before']} before, {k['load_average_after']} after; part 2 was measured in "
            "this run.",
            "",
        ]
    lines += caveats(
        result,
        "Part 1's milliseconds are wall time and include waiting for a core; part 2's are CPU time, "
        "which waiting does not add to, but a loaded machine's shared cores and caches slow all code; "
        "only figures measured in the same run compare.",
    )
    lines += [
        "## Batching (`benchmarks/ssd_batch.py`, part 1)",
        "",
        f"Frames of the sample videos (768x576); medians of {result['rounds']} interleaved rounds; "
        "detector threads 0 (every core). Whole path: resize, tensor, one session.run, score filter + NMS "
        "in numpy.",
        "",
        "| batch | whole path ms/image | session.run ms/image | vs batch 1 (session.run) |"
        + (" old model, one run per image, ms/image |" if "old_sequential" in b else ""),
        "|---|---|---|---|" + ("---|" if "old_sequential" in b else ""),
    ]
    one = b["inference"][sizes[0]]
    for size in sizes:
        row = f"| {size} | {b['path'][size]} | {b['inference'][size]} | {b['inference'][size] / one:.2f} |"
        if "old_sequential" in b:
            row += f" {b['old_sequential'][size]} |"
        lines.append(row)
    if "agreement" in result:
        a = result["agreement"]
        lines += [
            "",
            f"Same detections as the model before the cut: {a['images']} images (the shared images and video "
            f"frames), all in one batch, give the post-processed model's {a['detections_identical']} "
            f"detections at score >= {a['min_score']} exactly (classes, scores within 1e-6, boxes within "
            "1e-3 px; `check_batched` of models/build_default_model.py).",
        ]
    lines += [
        "",
        "## Per-frame work other than inference (`benchmarks/stage_cpu.py`, part 2)",
        "",
        "`Pipeline.run` on file cameras (the sample scenarios in turn, detect_fps 5, read as fast as "
        "possible), embedded SSD, from the run's start to its end (start-up left out). **CPU time**, not "
        "samples: each thread's own CPU time (/proc, or its clock as it ends), split by timed sections "
        "around the per-frame calls (benchmarks/stage_cpu.py lists them); a section's time is its own, "
        "less the sections inside it; what a thread does outside its sections is its thread's stage. "
        "Waiting for a core or the GIL costs no CPU time, so the figures do not grow with the machine's "
        "load as the sampled profile's do (though a loaded core's caches make everything a little "
        "slower). Other per-frame work (marked *): everything but inference (ONNX Runtime's run) and "
        "the readers' demux and decode. Model inputs per frame: whole frames, crops and tiles the "
        "planner sends. Before: the other checkout's code, after: this checkout, on the same cameras, "
        "one after the other in the same run. The motion gate is on (its default): a frame it holds is "
        "analysed without inference, so its work counts against the detected frames' inference.",
        "",
    ]
    for label, measured in result.get("stages", {}).items():
        lines.append(stages_markdown(measured, label))
    if result.get("profiles"):
        lines += [
            "## Sampled profile (`benchmarks/capacity_profile.py`, py-spy, `--sampled`)",
            "",
            "Thread ms per detected frame from py-spy's samples of every Python thread: a thread waiting "
            "for a core or the GIL counts as busy, so on a loaded machine the ratios move with the load; "
            "kept for the code it shows inside a stage, not for the ratio.",
            "",
        ]
    for label, prof in result.get("profiles", {}).items():
        o = overhead(prof)
        lines += [
            f"**{label}** (sampled): inference {o['inference_ms']} thread ms per frame, other "
            f"{o['other_ms']} ms: {o['other_over_inference']:.0%} of inference.",
            "",
            profile_markdown(prof, label),
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = arguments(__doc__, rounds=12, rewrite=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--cameras", type=int, default=6, help="file cameras of the pipeline profile")
    parser.add_argument("--postprocessed", type=Path, help="the model before the cut, timed as the old path")
    parser.add_argument("--before", type=Path, help="a checkout whose pipeline is profiled too (e.g. main)")
    parser.add_argument("--no-profile", action="store_true", help="part 1 only")
    parser.add_argument(
        "--profile-only", action="store_true", help="part 2 only; part 1 kept from the committed .json"
    )
    parser.add_argument(
        "--pairs", type=int, default=1, help="profile pairs (before, after), every other one reversed"
    )
    parser.add_argument("--sampled", action="store_true", help="also the py-spy profile of each side")
    args = parser.parse_args()
    if args.markdown:
        (OUT / "ssd_batch.md").write_text(markdown(json.loads((OUT / "ssd_batch.json").read_text())))
        return
    result: dict[str, Any] = {"machine": machine(), "rounds": args.rounds, "note": args.note}
    if args.profile_only:  # part 1 as committed, with the machine it was measured on
        kept = json.loads((OUT / "ssd_batch.json").read_text())
        result |= {k: kept[k] for k in ("rounds", "batching", "agreement") if k in kept}
        result["batching_machine"] = kept.get("batching_machine", kept["machine"])
    else:
        result["batching"] = batching(args.rounds, tuple(args.sizes), args.postprocessed)
        if args.postprocessed:
            result["agreement"] = agreement(args.postprocessed, AGREEMENT_FRAMES)
    result["stages"], result["profiles"] = {}, {}
    for pair in range(args.pairs if not args.no_profile else 0):
        sides = [("after (this checkout)", ROOT)]
        if args.before:
            sides.insert(0, (f"before ({args.before.name})", args.before.resolve()))
        if pair % 2:  # every other pair the other way round, so that neither always runs first
            sides.reverse()
        for label, checkout in sides:
            name = label if args.pairs == 1 else f"{label}, pair {pair + 1} of {args.pairs}"
            result["stages"][name] = stages(args.cameras, checkout)
            if args.sampled:
                result["profiles"][name] = profile(args.cameras, checkout)
    result["overhead"] = {k: {x: v[x] for x in OVERHEAD} for k, v in result["stages"].items()}
    result["overhead_sampled"] = {k: overhead(v) for k, v in result["profiles"].items()}
    publish("ssd_batch", result, markdown)


if __name__ == "__main__":
    main()
