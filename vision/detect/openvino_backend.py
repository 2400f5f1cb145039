"""OpenVINO: the same ONNX files run by Intel's CPU runtime, for CPUs where it computes in bfloat16.

On a CPU with AMX (Xeon Sapphire Rapids and later) OpenVINO runs a float model's convolutions in
bfloat16 on the matrix units: the float YOLOv8n took 0.35 of ONNX Runtime's CPU time per input
there, at float32 the same as ONNX Runtime (benchmarks/openvino_infer.md). ``detector.precision``
chooses: ``auto`` takes OpenVINO's own choice (bfloat16 where the CPU has it, else float32), ``f32``
keeps the file's float32 arithmetic (the boxes ONNX Runtime gives). Pre- and post-processing are
ours, as with ONNX Runtime (vision/detect/detector.py's OnnxEngine takes either model).

The compiled model has one execution stream per model call run at once (``detector.parallel``'s
inference threads), each thread its own request; a call releases the GIL. OpenVINO is an optional
dependency (the ``openvino`` extra), imported only here.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

from vision.detect.card import ModelCard, ModelError
from vision.detect.contract import check_contract
from vision.detect.yolo_card import parse_metadata

log = logging.getLogger(__name__)

# detector.precision -> OpenVINO's INFERENCE_PRECISION_HINT (None: not set, OpenVINO's own choice)
PRECISIONS: dict[str, str | None] = {"auto": None, "f32": "f32", "bf16": "bf16"}


def _openvino() -> Any:
    """The openvino module, or a ModelError saying what to install."""
    try:
        import openvino
    except ImportError as exc:
        raise ModelError(
            f"detector.backend openvino needs the `openvino` extra ({exc}): "
            "pip install 'street-vision[openvino]'"
        ) from None
    return openvino


class OpenVinoModel:
    """One compiled OpenVINO model and what its file says about its input and outputs; ``run`` may be
    called from ``calls`` threads at once."""

    def __init__(self, card: ModelCard, calls: int = 1, threads: int = 0, precision: str = "auto") -> None:
        if precision not in PRECISIONS:
            raise ModelError(f"detector.precision {precision}: one of {', '.join(PRECISIONS)}")
        self.card = card
        ov = _openvino()
        core = ov.Core()
        try:
            model = core.read_model(str(card.model_path))
        except Exception as exc:  # OpenVINO raises its own RuntimeError subclasses for a bad file
            raise ModelError(f"model file {card.model_path}: OpenVINO cannot read it: {exc}") from None
        if len(model.inputs) != 1:
            raise ModelError(f"model file {card.model_path}: expected one input, found {len(model.inputs)}")
        port = model.inputs[0]
        shape = [d.get_length() if d.is_static else None for d in port.get_partial_shape()]
        self.batch_size: int | None = shape[0] if shape else None  # None: any batch
        self.metadata = parse_metadata(_metadata(model))
        outputs = {
            name: [d.get_length() if d.is_static else None for d in o.get_partial_shape()]
            for o in model.outputs
            for name in o.get_names()
        }
        check_contract(card, shape, port.get_element_type().to_dtype().name, outputs, self.metadata)
        config: dict[str, Any] = {"NUM_STREAMS": calls, "ENABLE_CPU_PINNING": False}
        if threads:
            config["INFERENCE_NUM_THREADS"] = calls * threads
        if PRECISIONS[precision] is not None:
            config["INFERENCE_PRECISION_HINT"] = PRECISIONS[precision]
        try:
            self.compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:
            raise ModelError(f"model file {card.model_path}: OpenVINO cannot compile it: {exc}") from None
        # the precision the CPU computes in (what ``auto`` chose): said in the log, kept for the health API
        self.precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        self._outputs = [self.compiled.output(name) for name in card.outputs]
        self._local = threading.local()  # each inference thread's own request
        log.info("model %s on OpenVINO CPU in %s, %d stream(s)", card.name, self.precision, calls)

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run one batch; outputs in the order the card lists them (copies: the request's own buffers
        are written again by the thread's next call)."""
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        result = request.infer({0: batch}, share_inputs=True, share_outputs=False)
        return [result[port] for port in self._outputs]


def chosen_precision(precision: str) -> str:
    """What ``detector.precision`` means on this machine's CPU, without compiling a model (for ``check``):
    as set, or for ``auto`` OpenVINO's default here (bf16 where the CPU computes in it)."""
    if precision != "auto":
        return precision
    default = _openvino().Core().get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()
    return f"auto ({default} on this CPU)"


def _metadata(model: Any) -> dict[str, str]:
    """The ONNX file's metadata (Ultralytics' names, stride, image size) as OpenVINO keeps it."""
    if not model.has_rt_info(["framework"]):
        return {}
    return {key: value.astype(str) for key, value in model.get_rt_info(["framework"]).astype(dict).items()}
