"""A trainable Ultralytics checkpoint rebuilt from a YOLO ONNX export (float or INT8 QDQ).

A city often has only the ONNX file of the model it runs, and street-vision never
downloads weights, so fine-tuning needs a ``.pt`` made from that file. An export holds
the *fused* network (each BatchNorm folded into its convolution, which gained a bias),
while Ultralytics' trainer builds the unfused one and copies only matching tensors: a
fused checkpoint would lose every bias. So each fused convolution is split back into a
convolution and an identity BatchNorm whose shift is the fused bias (gamma 1, mean 0,
variance 1 - eps), which computes exactly what the export computes, and the trainer
then loads every tensor.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np

from vision.tuning.errors import TuningError


def onnx_weights(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Float tensors by the fused network's parameter names (INT8 QDQ weights dequantized), and metadata."""
    import onnx
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, OSError, ... for a file that is not a model
        raise TuningError(f"{path}: not an ONNX model ({exc})") from exc
    raw = {i.name: numpy_helper.to_array(i) for i in graph.graph.initializer}
    weights: dict[str, np.ndarray] = {}
    for name, value in raw.items():
        if name.endswith("_quantized"):
            base = name.removesuffix("_quantized")
            scale, zero = raw[base + "_scale"].astype(np.float32), raw[base + "_zero_point"]
            shape = [-1] + [1] * (value.ndim - 1)
            zero = zero.astype(np.float32).reshape(shape if zero.ndim else ())
            weights[base] = (value.astype(np.float32) - zero) * scale.reshape(shape if scale.ndim else ())
        elif not name.endswith(("_scale", "_zero_point")):
            weights[name] = value.astype(np.float32) if value.dtype.kind == "f" else value
    return weights, {p.key: p.value for p in graph.metadata_props}


def unfused_state(model: Any, weights: dict[str, np.ndarray]) -> tuple[dict[str, Any], list[str]]:
    """The unfused ``model``'s state dict filled from fused ``weights``; also the keys not found."""
    import torch

    state, missing = {}, []
    for key, value in model.state_dict().items():
        prefix, _, leaf = key.rpartition(".")
        fused_bias = (
            weights.get(prefix.removesuffix(".bn") + ".conv.bias") if prefix.endswith(".bn") else None
        )
        if key in weights:
            state[key] = torch.from_numpy(np.ascontiguousarray(weights[key])).reshape(value.shape)
        elif fused_bias is not None and leaf in ("weight", "bias", "running_mean", "running_var"):
            eps = model.get_submodule(prefix).eps
            fill = {"weight": 1.0, "running_mean": 0.0, "running_var": 1.0 - eps}
            state[key] = (
                torch.from_numpy(fused_bias.copy()) if leaf == "bias" else torch.full_like(value, fill[leaf])
            )
        else:
            state[key] = value
            if not key.endswith("num_batches_tracked"):
                missing.append(key)
    return state, missing


def rebuild(onnx_path: Path, arch: str, out: Path) -> Path:
    """Write ``out``, an Ultralytics checkpoint of ``arch`` (a model YAML such as yolov8n.yaml) with the
    ONNX file's weights and class names; refuses a file whose tensors do not fit the architecture."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    weights, meta = onnx_weights(onnx_path)
    if "names" not in meta:
        raise TuningError(f"{onnx_path}: no class names in its metadata (not an Ultralytics export)")
    names = ast.literal_eval(meta["names"])
    net = DetectionModel(arch, nc=len(names), verbose=False)
    try:
        state, missing = unfused_state(net, weights)
    except RuntimeError as exc:  # a tensor of another size: another architecture or class count
        raise TuningError(f"{onnx_path}: its tensors do not fit {arch} ({exc})") from exc
    if missing:
        raise TuningError(
            f"{onnx_path}: {len(missing)} parameter(s) of {arch} are not in the file (e.g. {missing[0]}): "
            "not an export of this architecture"
        )
    net.load_state_dict(state)
    net.names = names
    out.parent.mkdir(parents=True, exist_ok=True)
    args = {"imgsz": ast.literal_eval(meta.get("imgsz", "[640, 640]"))[0], "task": "detect"}
    torch.save({"model": net, "train_args": args, "date": None, "version": meta.get("version")}, out)
    return out
