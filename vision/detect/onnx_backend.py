"""ONNX Runtime sessions: providers, threads and the input contract read from the file.

A session is created once per model and shared by all cameras; its input shape tells
whether several frames can go in one call (a dynamic batch axis) or one at a time. On the
CPU it runs the graph as rewritten by graph.py (the same function, cheaper kernels).
"""

from __future__ import annotations

import logging

import numpy as np
import onnxruntime as ort

from vision.detect.card import ModelCard, ModelError
from vision.detect.contract import check_contract
from vision.detect.yolo_card import parse_metadata

log = logging.getLogger(__name__)

PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}
DTYPES = {"tensor(uint8)": "uint8", "tensor(float)": "float32"}


def session_options(threads: int, spin: bool) -> ort.SessionOptions:
    """Every graph optimisation (without the blocked NCHWc layout, ORT_ENABLE_EXTENDED, a YOLOv8n
    call takes 1.3x the CPU: benchmarks/inference_graph.md), ``threads`` intra-op threads that spin
    only when asked (spinning: 1.7x the CPU per input there)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.log_severity_level = 3
    return options


class OnnxModel:
    """One ONNX Runtime session and what its file says about its input and outputs."""

    def __init__(self, card: ModelCard, device: str = "cpu", threads: int = 0, spin: bool = False) -> None:
        self.card = card
        wanted = PROVIDERS[device]
        missing = [p for p in wanted[:1] if p not in ort.get_available_providers()]
        if missing:
            raise ModelError(
                f"detector.device is {device}, but this onnxruntime has no {missing[0]} "
                f"(available: {', '.join(ort.get_available_providers())}); install onnxruntime-gpu or use cpu"
            )
        from vision.detect.graph import optimized  # here: onnx's import (~1 s of CPU, most of it ml_dtypes)
        # is paid by a model load, not by every command of the CLI (a config check, a refused serve)

        try:
            graph = optimized(card.model_path) if device == "cpu" else None
            source = graph if graph is not None else str(card.model_path)
            self.session = ort.InferenceSession(source, session_options(threads, spin), providers=wanted)
        except Exception as exc:  # onnx and onnxruntime raise several private exception types
            raise ModelError(f"model file {card.model_path}: ONNX Runtime cannot load it: {exc}") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"model file {card.model_path}: expected one input, found {len(inputs)}")
        self.input_name = inputs[0].name
        batch = inputs[0].shape[0]
        self.batch_size: int | None = batch if isinstance(batch, int) else None  # None: any batch
        self.metadata = parse_metadata(dict(self.session.get_modelmeta().custom_metadata_map))
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        dtype = DTYPES.get(inputs[0].type, inputs[0].type)
        check_contract(card, inputs[0].shape, dtype, outputs, self.metadata)
        log.debug("model %s on %s (%s)", card.name, self.session.get_providers()[0], card.model_path.name)

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run one batch; outputs in the order the card lists them."""
        return self.session.run(self.card.outputs, {self.input_name: batch})
