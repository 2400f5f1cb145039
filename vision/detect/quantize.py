"""INT8: statically quantize a float ONNX model, calibrated on frames of the user's own footage.

Static quantization fixes every activation's scale from calibration frames, so the
frames should look like what the cameras see (light, scale, scene). The convolutional
body is quantized (QDQ format, per-channel weights); the decode tail after the last
convolutions (DFL softmax, box arithmetic, sigmoid, concat) stays in float: it is
cheap, and rounding box coordinates to 8 bits would move every box. The new model
gets its own card, and the report says how far its detections moved.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from vision.detect.card import ModelCard, ModelError, sha256_of
from vision.detect.compare import Drift
from vision.detect.detector import Detector
from vision.detect.preprocess import place, to_tensor

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


def read_frames(source: Path, count: int) -> list[np.ndarray]:
    """``count`` frames spread evenly over a video, or the images of a folder (sorted)."""
    if source.is_dir():
        paths = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        images = [cv2.imread(str(p)) for p in paths[:count]]
        frames = [i for i in images if i is not None]
    else:
        capture = cv2.VideoCapture(str(source))
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        frames = []
        for index in np.linspace(0, max(total - 1, 0), min(count, max(total, 0))).astype(int):
            capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, frame = capture.read()
            if ok:
                frames.append(frame)
        capture.release()
    if not frames:
        raise ModelError(
            f"calibration source {source}: no readable frames (give a video file or a folder of images)"
        )
    return frames


def decode_tail(model: Any) -> list[str]:
    """Names of the nodes between the last convolutions and the outputs (reached without crossing a Conv)."""
    producers = {out: node for node in model.graph.node for out in node.output}
    tail: list[str] = []
    seen: set[str] = set()
    stack = [o.name for o in model.graph.output]
    while stack:
        node = producers.get(stack.pop())
        if node is None or node.name in seen or node.op_type == "Conv":
            continue
        seen.add(node.name)
        tail.append(node.name)
        stack.extend(node.input)
    return tail


def quantize(card: ModelCard, frames: list[np.ndarray], out: Path) -> Path:
    """Write the INT8 model to ``out`` and its card beside it; returns the card's path."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if card.format != "onnx" or card.input.dtype != "float32":
        raise ModelError(f"model card {card.card_path}: only float32 ONNX models can be quantized")
    spec = card.input

    class Frames(CalibrationDataReader):
        def __init__(self, name: str) -> None:
            self.batches = iter([{name: to_tensor([place(f, spec)[0]], spec)} for f in frames])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        try:
            quant_pre_process(str(card.model_path), str(prepared), skip_symbolic_shape=True)
        except Exception as exc:  # onnx and onnxruntime raise many types for a graph they cannot handle
            raise ModelError(
                f"model file {card.model_path}: cannot prepare it for quantization: {exc}"
            ) from None
        model = onnx.load(str(prepared))
        quantize_static(
            str(prepared),
            str(out),
            Frames(model.graph.input[0].name),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=decode_tail(model),
        )
    data = card.model_dump(mode="json", exclude_none=True)
    data.update(
        name=f"{card.name}_int8",
        file=out.name,
        sha256=sha256_of(out),
        source={
            "path": str(card.model_path.name),
            "converter": "street-vision models quantize: static INT8 (QDQ), "
            f"calibrated on {len(frames)} frames",
        },
    )
    card_path = out.with_suffix(".yaml")
    card_path.write_text(
        f"# Written by `street-vision models quantize` from {card.card_path.name}.\n"
        + yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    return card_path


def compare(
    float_card: ModelCard, int8_card: ModelCard, frames: list[np.ndarray], **kw: Any
) -> dict[str, Any]:
    """Speed of each model (ms per frame, batch 1) and how far INT8 boxes moved from the float ones."""
    record: dict[str, Any] = {"frames": len(frames)}
    found = {}
    for key, card in (("float", float_card), ("int8", int8_card)):
        detector = Detector(card, **kw)
        detector.detect(frames[:1])  # warm-up: first-call allocations are not per-frame cost
        start = time.perf_counter()
        found[key] = [detector.detect([f])[0] for f in frames]
        record[f"{key}_ms_per_frame"] = round((time.perf_counter() - start) * 1000 / len(frames), 2)
    drift = Drift()
    for reference, candidate in zip(found["float"], found["int8"], strict=True):
        drift.add(reference, candidate)
    return record | drift.to_record()
