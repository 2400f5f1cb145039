"""Detection benchmark: ms per frame and frames/s per model, backend, threads, batch and precision,
and our full path against Ultralytics' predict(stream=True) on the same ONNX file and video.

Run from the repository root (needs the `test` extra: Ultralytics builds the models):

    python3 benchmarks/detect.py            # writes benchmarks/detect.md and benchmarks/detect.json

Models are built in a temporary folder, never committed: a float COCO YOLOv8n rebuilt from
the shared INT8 file's weights (tests/yolo_zoo.py) exported at 640x640, 640x480 (the rect
shape of 4:3 footage) and with dynamic axes; an untrained YOLO11n from its YAML at 640
(same cost as a trained one); a static INT8 of the 640 model calibrated on the footage
(`street-vision models quantize`); the shared dynamic-INT8 YOLOv8n; the embedded SSD.
Timings depend on the machine and on what else runs on it: compare within one run only.
Our detector runs here with ONNX Runtime's thread spinning on (``spin=True``, its default and
Ultralytics'), so both sides run the same session settings; ``street-vision run`` turns it off
(``detector.spin``) to leave the cores to many cameras' readers.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.yolo_zoo import Zoo, offline  # noqa: E402
from vision.config import DecodeConfig, RegionsConfig  # noqa: E402
from vision.detect.card import load_card  # noqa: E402
from vision.detect.detector import Detector  # noqa: E402
from vision.detect.planner import Planner  # noqa: E402
from vision.detect.preprocess import place, to_tensor  # noqa: E402
from vision.detect.quantize import compare, quantize, read_frames  # noqa: E402
from vision.detect.yolo_card import write_card  # noqa: E402
from vision.ingest.decoder import VideoDecoder  # noqa: E402
from vision.scene.zones import Zone  # noqa: E402
from vision.secrets import SecretUrl  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
VIDEO = SHARED / "footage" / "vtest.avi"
INT8_SHARED = SHARED / "models" / "yolov8n_coco_int8.onnx"
FRAMES = 24  # per measurement
STREAM_FRAMES = 60  # full-path comparison
OUT = Path(__file__).resolve().parent


def timed(fn: Any, repeat: int) -> float:
    """Seconds per call, after one warm-up call."""
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def per_frame(detector: Detector, frames: list[np.ndarray], batch: int) -> float:
    """ms per frame detecting ``frames`` in batches of ``batch``."""
    batches = [frames[i : i + batch] for i in range(0, len(frames), batch)]

    def run() -> None:
        for b in batches:
            detector.detect(b)

    return timed(run, 1) * 1000 / len(frames)


def ours_stream(card: Path, threads: int) -> float:
    """Our full path on the video: PyAV decode -> letterbox -> ONNX Runtime -> decode boxes, batch 1."""
    detector = Detector(load_card(card), threads=threads, min_score=0.25, spin=True)
    start, n = time.perf_counter(), 0
    with VideoDecoder("bench", SecretUrl(str(VIDEO)), DecodeConfig()).open() as source:
        for frame, _ in source.frames():
            detector.detect([source.image(frame)])
            n += 1
            if n == STREAM_FRAMES:
                break
    return (time.perf_counter() - start) * 1000 / n


def ultralytics_stream(model: Path, threads: int) -> float:
    """Ultralytics' predict(stream=True) on the same file and video (its own decode and post-processing)."""
    import torch
    from ultralytics import YOLO

    torch.set_num_threads(threads)
    yolo = YOLO(str(model), task="detect")
    start, n = time.perf_counter(), 0
    for _ in yolo.predict(str(VIDEO), stream=True, conf=0.25, verbose=False):
        n += 1
        if n == STREAM_FRAMES:
            break
    return (time.perf_counter() - start) * 1000 / n


def breakdown(card: Path, frames: list[np.ndarray]) -> dict[str, float]:
    """Where the time of one frame goes on our path (2 threads, batch 1)."""
    detector = Detector(load_card(card), threads=2, min_score=0.25, spin=True)
    engine, spec = detector.engine, detector.card.input
    frame = frames[0]
    placed, geometry = place(frame, spec)
    tensor = to_tensor([placed], spec)
    outputs = engine.model.run(tensor)
    n = len(frames)
    return {
        "letterbox_ms": round(timed(lambda: place(frame, spec), n) * 1000, 2),
        "to_tensor_ms": round(timed(lambda: to_tensor([placed], spec), n) * 1000, 2),
        "onnx_runtime_ms": round(timed(lambda: engine.model.run(tensor), n) * 1000, 2),
        "decode_nms_ms": round(timed(lambda: engine.decode(outputs, [geometry], engine.params), n) * 1000, 2),
    }


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-detect-"))
    offline(tmp / "ultralytics-config")
    zoo = Zoo(tmp)
    zoo.coco_checkpoint(INT8_SHARED)
    files = {
        "yolov8n-coco 640x640 float": zoo.export("coco", "coco640"),
        "yolov8n-coco 640x480 float (rect)": zoo.export("coco", "coco480"),
        "yolov8n-coco dynamic float": zoo.export("coco", "cocodyn"),
    }
    from ultralytics import YOLO

    yolo11 = Path(YOLO("yolo11n.yaml").export(format="onnx", imgsz=640))
    files["yolo11n 640x640 float (untrained)"] = yolo11.rename(tmp / "yolo11n_640.onnx")
    shared = tmp / "yolov8n_coco_int8.onnx"
    shared.symlink_to(INT8_SHARED)
    cards = {name: write_card(path) for name, path in files.items()}
    cards["yolov8n-coco int8 dynamic (shared file)"] = write_card(shared)

    video = read_frames(VIDEO, 2 * FRAMES)
    calibration, frames = video[::2], video[1::2]
    int8: dict[str, Any] = {}
    for name, key in (
        ("640x640", "yolov8n-coco 640x640 float"),
        ("640x480", "yolov8n-coco 640x480 float (rect)"),
    ):
        float_card = load_card(cards[key])
        start = time.perf_counter()
        int8_card = quantize(float_card, calibration, tmp / f"coco_{name}_int8.onnx")
        seconds = time.perf_counter() - start
        cards[f"yolov8n-coco {name} int8 static (ours)"] = int8_card
        int8[name] = {"quantize_seconds": round(seconds, 1)} | compare(
            float_card, load_card(int8_card), frames, threads=2, min_score=0.25
        )
    cards["ssd_mobilenet_v2 300x300 uint8 (embedded)"] = Path("default")

    models = []
    for name, card in cards.items():
        for threads in (1, 2):
            detector = Detector(load_card(card), threads=threads, min_score=0.25, spin=True)
            dynamic = getattr(detector.engine, "model", None) and detector.engine.model.batch_size is None
            for batch in (1, 4, 8) if dynamic else (1,):
                ms = per_frame(detector, frames, batch)
                models.append(
                    {"model": name, "threads": threads, "batch": batch, "ms_per_frame": round(ms, 2),
                     "frames_per_s": round(1000 / ms, 1)}
                )  # fmt: skip
                print(models[-1], flush=True)

    stream = []
    for name, path, card in (
        (
            "yolov8n-coco 640x640 float",
            files["yolov8n-coco 640x640 float"],
            cards["yolov8n-coco 640x640 float"],
        ),
        ("yolov8n-coco int8 dynamic (shared file)", shared, cards["yolov8n-coco int8 dynamic (shared file)"]),
    ):
        for threads in (1, 2):
            theirs = ultralytics_stream(path, threads)
            ours = ours_stream(card, threads)
            stream.append(
                {"model": name, "threads": threads, "ours_ms": round(ours, 2),
                 "ultralytics_ms": round(theirs, 2), "speedup": round(theirs / ours, 2)}
            )  # fmt: skip
            print(stream[-1], flush=True)
    rect_card = cards["yolov8n-coco 640x480 float (rect)"]
    stream.append({"model": "yolov8n-coco 640x480 float (rect), ours only", "threads": 2,
                   "ours_ms": round(ours_stream(rect_card, 2), 2)})  # fmt: skip

    # Crops: a 1080p frame (footage upscaled), whole frame vs whole + one zone crop vs tiles.
    big = [cv2.resize(f, (1920, 1080)) for f in frames[:8]]
    zone = {"zone": Zone("zone", np.array([[0.6, 0.6], [0.75, 0.6], [0.75, 0.8], [0.6, 0.8]]))}
    detector = Detector(load_card(cards["yolov8n-coco 640x640 float"]), threads=2, min_score=0.25, spin=True)
    crops = []
    for label, cfg in (
        ("whole frame", RegionsConfig(mode="full")),
        ("whole frame + 1 zone crop (320 px)", RegionsConfig(mode="zones")),
        ("zone crop only", RegionsConfig(mode="zones", full_frame=False)),
        ("whole frame + tiles 640/0.2 (8 tiles)", RegionsConfig(mode="tiles")),
    ):
        regions = Planner.for_camera(cfg, zone, None, detector.card).boxes(1920, 1080)
        ms = (
            timed(lambda regions=regions: [detector.detect([f], [regions]) for f in big], 1) * 1000 / len(big)
        )
        crops.append({"regions": label, "ms_per_frame": round(ms, 2)})
        print(crops[-1], flush=True)

    result = {
        "machine": {"cpus": __import__("os").cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "video": str(VIDEO.name),
        "models": models,
        "full_path_vs_ultralytics": stream,
        "breakdown_640_float": breakdown(cards["yolov8n-coco 640x640 float"], frames),
        "breakdown_640x480_float": breakdown(rect_card, frames),
        "int8_static_vs_float": int8,
        "crops_1080p": crops,
    }  # fmt: skip
    (OUT / "detect.json").write_text(json.dumps(result, indent=2) + "\n")
    (OUT / "detect.md").write_text(render(result))
    print(f"wrote {OUT / 'detect.md'}")


def table(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0]) if rows else []
    for row in rows:
        keys += [k for k in row if k not in keys]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    return f"""# Detection benchmark

Generated by `python3 benchmarks/detect.py` on {m["cpus"]} CPUs ({m["platform"]}, Python {m["python"]}),
frames of `{r["video"]}` (768x576). Timings depend on what else runs on the machine: compare
rows within one run, and prefer ratios measured back to back (the full-path table alternates
ours and theirs).

How to read it: on the same ONNX file, one frame costs about what Ultralytics' predict costs,
because ONNX Runtime's inference is nearly all of it (pre- and post-processing are under 1 ms).
The gains come from doing less inference: a rect input for 4:3 or 16:9 footage, a static INT8
model calibrated on the camera's own frames, several cameras in one call with a dynamic batch
axis, and crops around zones instead of tiles.

## Our full path vs Ultralytics, same ONNX file, same video

Ours: PyAV decode -> letterbox -> ONNX Runtime -> decode boxes, batch 1 (`Detector.detect`).
Ultralytics: `YOLO(file).predict(video, stream=True)` (its own decode, letterbox, session, NMS).
First {STREAM_FRAMES} frames; ms per frame including decoding.

{table(r["full_path_vs_ultralytics"])}

## Where one frame's time goes (our path, 2 threads)

640x640: {json.dumps(r["breakdown_640_float"])}

640x480 (rect): {json.dumps(r["breakdown_640x480_float"])}

## Models, threads, batch

ms per frame on decoded frames (no video decoding), min_score 0.25. Batch > 1 only for the
model with a dynamic batch axis (its input is rect: 640x480 for this footage).

{table(r["models"])}

## INT8 (static, calibrated on {FRAMES} frames of the footage) vs float

Same frames held out from calibration; boxes paired one to one by class and IoU >= 0.5.

{table([{"input": k, **v} for k, v in r["int8_static_vs_float"].items()])}

## Crops and tiles on a 1080p frame (640x640 float, 2 threads)

{table(r["crops_1080p"])}
"""


if __name__ == "__main__":
    main()
