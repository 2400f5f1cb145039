"""OpenVINO against ONNX Runtime on the same ONNX files: CPU per input, and the boxes each gives.

The models: the float YOLOv8n that capacity.py makes with ``--yolo-int8`` (the shared INT8 export's
weights rebuilt into Ultralytics' yolov8n.yaml, exported at 384x640), the static INT8 that
``street-vision models quantize`` makes of it (calibrated on 48 photos of the shared park-my-bike
dataset's train split, none of the frames compared), and the embedded SSD. The
inputs: real frames, 8 each of the vtest, parking and highway footage resized to 640x360 (the
capacity farm's substreams), and the shared photos. Each engine is our Detector with one thread
per call, as ``street-vision run`` uses it with two inference threads on two cores:
``detector.backend: onnx`` (ONNX Runtime, the graph as vision/detect/graph.py rewrites it),
``openvino`` at ``precision: f32`` and at ``auto`` (OpenVINO's choice: bfloat16 on a CPU with
AMX or AVX-512 BF16). A round runs each engine over every frame, the engines in a shuffled order.

CPU ms per input: the process's CPU time over a round's calls / frames (OpenVINO's own threads
included), median over the rounds. Boxes: each engine's detections (min score 0.25) against ONNX
Runtime's, paired by class at IoU >= 0.5: the share of ONNX Runtime's boxes found, the median and
lowest IoU of the pairs, the largest score difference, and the boxes only one side has. The INT8
model is compared with the float model on ONNX Runtime, the model it would replace, in time and boxes.

Usage: ``python benchmarks/openvino_infer.py --yolo-int8 ../shared/data/models/yolov8n_coco_int8.onnx
[--rounds 5] [--note TEXT]``.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capacity import float_yolo  # noqa: E402  (beside this file)
from inference_graph import frames as substream_frames  # noqa: E402  (beside this file)
from report import arguments, caveats, machine, machine_line, publish  # noqa: E402  (beside this file)

from vision.detect.card import load_card  # noqa: E402
from vision.detect.compare import match  # noqa: E402
from vision.detect.detector import Detector  # noqa: E402
from vision.detect.quantize import quantize, read_frames  # noqa: E402
from vision.types import Detections  # noqa: E402

IMAGES = ROOT.parent / "shared" / "data" / "images"
CALIBRATION = ROOT.parent / "shared" / "data" / "datasets" / "park-my-bike" / "images" / "train"
CALIBRATION_FRAMES = 48
ENGINES = {
    "ONNX Runtime": ("onnx", "auto"),
    "OpenVINO f32": ("openvino", "f32"),
    "OpenVINO auto": ("openvino", "auto"),
}
MIN_SCORE = 0.25


def frames() -> list[np.ndarray]:
    """inference_graph.py's frames (8 spread over each clip at 640x360), then the shared photos."""
    return substream_frames() + [cv2.imread(str(p)) for p in sorted(IMAGES.glob("*.jpg"))]


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def agreement(found: list[Detections], reference: list[Detections]) -> dict[str, Any]:
    """``found`` against ``reference`` frame by frame: pairs by class at IoU >= 0.5."""
    paired = only_reference = only_found = 0
    ious: list[float] = []
    score_gap = 0.0
    for ours, theirs in zip(found, reference, strict=True):
        ia, ib, iou = match(ours, theirs, min_iou=0.5)
        paired += len(ia)
        only_found += len(ours) - len(ia)
        only_reference += len(theirs) - len(ib)
        ious += [float(x) for x in iou]
        if len(ia):
            score_gap = max(score_gap, float(np.abs(ours.score[ia] - theirs.score[ib]).max()))
    total = paired + only_reference
    return {
        "reference_boxes": total,
        "found_share": round(paired / total, 4) if total else None,
        "iou_median": round(statistics.median(ious), 4) if ious else None,
        "iou_min": round(min(ious), 4) if ious else None,
        "score_gap_max": round(score_gap, 4),
        "only_reference": only_reference,
        "only_this": only_found,
    }


class Baseline(NamedTuple):
    """A model on ONNX Runtime that another is compared with: its name, CPU per input and boxes."""

    label: str
    cpu_ms: float
    found: list[Detections]


def measure(
    card_path: str, images: list[np.ndarray], rounds: int, against: Baseline | None = None
) -> tuple[dict[str, Any], list[Detections]]:
    """Each engine's CPU per input and boxes on ``card_path``, compared with this file on ONNX Runtime
    or with ``against``; and ONNX Runtime's boxes of this file."""
    card = load_card(card_path)
    detectors = {
        name: Detector(card, threads=1, min_score=MIN_SCORE, backend=backend, precision=precision)
        for name, (backend, precision) in ENGINES.items()
    }
    found = {name: d.detect(images) for name, d in detectors.items()}  # warm, and the boxes compared
    per_input: dict[str, list[float]] = {name: [] for name in detectors}
    rng = random.Random(0)
    for _ in range(rounds):
        order = list(detectors)
        rng.shuffle(order)
        for name in order:
            start = cpu_seconds()
            for image in images:
                detectors[name].detect([image])
            per_input[name].append((cpu_seconds() - start) / len(images) * 1e3)
    reference = against.found if against else found["ONNX Runtime"]
    result: dict[str, Any] = {}
    for name, d in detectors.items():
        model = d.engine.model  # type: ignore[attr-defined]
        result[name] = {
            "precision": getattr(model, "precision", "the file's"),
            "cpu_ms_per_input": round(statistics.median(per_input[name]), 2),
            "rounds_ms": [round(x, 2) for x in per_input[name]],
            "boxes": sum(len(f) for f in found[name]),
            "against_reference": agreement(found[name], reference),
        }
    own = result["ONNX Runtime"]["cpu_ms_per_input"]
    record = {
        "engines": result,
        "reference": against.label if against else "this file on ONNX Runtime",
        "reference_cpu_ms_per_input": against.cpu_ms if against else own,
    }
    return record, found["ONNX Runtime"]


def render(record: dict[str, Any]) -> str:
    lines = [
        "# OpenVINO against ONNX Runtime: CPU per input and the boxes",
        "",
        *caveats(record),
        machine_line(record["machine"], "onnxruntime", "openvino"),
        "",
        f"{record['frames']} real frames (8 each of vtest, parking, highway at 640x360, and the shared "
        f"photos), {record['rounds']} rounds, one thread per call; min score {MIN_SCORE}; boxes paired with "
        "the reference's by class at IoU >= 0.5 (`benchmarks/openvino_infer.py`); the INT8 model "
        f"calibrated on {record['calibration']}.",
        "",
        "Each row is compared, in CPU and boxes, with its reference: the same file on ONNX Runtime, or for "
        "the INT8 model the float model it was made from, on ONNX Runtime.",
        "",
        "| model | engine | computes in | CPU ms per input (median) | vs the reference | boxes | "
        "the reference's found | IoU median / min | largest score gap | only the reference / only this |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, m in record["models"].items():
        base = m["reference_cpu_ms_per_input"]
        for name, e in m["engines"].items():
            a = e["against_reference"]
            lines.append(
                f"| {model} | {name} | {e['precision']} | {e['cpu_ms_per_input']} | "
                f"{e['cpu_ms_per_input'] / base:.2f}x | {e['boxes']} | {a['found_share']} | "
                f"{a['iou_median']} / {a['iou_min']} | {a['score_gap_max']} | "
                f"{a['only_reference']} / {a['only_this']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = arguments(__doc__, rounds=5)
    parser.add_argument("--yolo-int8", type=Path, required=True)
    args = parser.parse_args()
    record: dict[str, Any] = {"machine": machine(), "rounds": args.rounds, "note": args.note}
    images = frames()
    record["frames"] = len(images)
    with tempfile.TemporaryDirectory() as tmp:
        card, _ = float_yolo(args.yolo_int8, (384, 640), Path(tmp))
        float_label = "YOLOv8n float 384x640"
        calibration = read_frames(CALIBRATION, CALIBRATION_FRAMES)
        int8_card = quantize(load_card(card), calibration, Path(tmp) / "yolov8n_int8.onnx")
        floats, float_found = measure(str(card), images, args.rounds)
        baseline = Baseline(float_label, floats["reference_cpu_ms_per_input"], float_found)
        int8, _ = measure(str(int8_card), images, args.rounds, baseline)
        record["models"] = {
            float_label: floats,
            "YOLOv8n static INT8 384x640 (models quantize)": int8,
            "embedded SSD": measure("default", images, args.rounds)[0],
        }
        record["calibration"] = f"{len(calibration)} photos of park-my-bike's train split"
    publish("openvino_infer", record, render)


if __name__ == "__main__":
    main()
