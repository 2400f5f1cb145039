"""Rewrites of a model's graph, made in memory before ONNX Runtime loads it on the CPU, that
compute the same function (to float rounding) in less time.

Ultralytics' YOLOv8/YOLO11 exports hold two patterns that ONNX Runtime's CPU kernels handle
badly (benchmarks/inference_graph.md):

- the box head's softmax over its 16 distance bins along a middle axis: ONNX Runtime moves that
  axis last and runs 4x5040 rows of 16 values one by one, 8% of a 640x384 call in one node.
  Written as ReduceMax, Sub, Exp, ReduceSum and Div over the whole tensor, it is vectorised.
- the C2f blocks split an activated convolution's output along its channels. The convolutions
  run in ONNX Runtime's blocked channel layout (NCHWc), which has no Split, so each split costs
  reorders out of and back into that layout; one convolution per part (the same weights, cut)
  gives the same numbers and stays in the blocked layout.

The file on disk is untouched (its card's checksum still holds); a graph without these patterns
is loaded from its path as before, and so is a quantized one: there a rounding difference can
move a value across a quantization step, which is more than rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

QUANTIZING = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "ConvInteger", "MatMulInteger"}


def quantized(model: onnx.ModelProto) -> bool:
    """Whether the graph computes in integers anywhere (QDQ pairs, QLinear or integer operators)."""
    return any(n.op_type in QUANTIZING or n.op_type.startswith("QLinear") for n in model.graph.node)


def optimized(path: Path) -> bytes | None:
    """The model at ``path`` with both rewrites, serialised; None when neither applies, when it is
    quantized, or when its weights live in external files (left to ONNX Runtime)."""
    model = onnx.load(str(path), load_external_data=False)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        return None
    if quantized(model):
        return None
    changed = softmax_by_parts(model) + split_convs(model)
    return model.SerializeToString() if changed else None


def opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def softmax_by_parts(model: onnx.ModelProto) -> int:
    """Each Softmax over an axis other than the last, as max, exp, sum and divide; how many."""
    version = opset(model)
    if version < 13:  # before 13, Softmax flattens every axis from ``axis`` on: a different function
        return 0
    graph = model.graph
    softmaxes = [n for n in graph.node if n.op_type == "Softmax" and n.domain in ("", "ai.onnx")]
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in _typed(model)} if softmaxes else {}
    changed = 0
    for node in softmaxes:
        axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
        rank = ranks.get(node.input[0])
        if axis == -1 or rank is None or rank == 0 or axis == rank - 1:
            continue
        x, y = node.input[0], node.output[0]
        tag = f"{node.name or y}/by_parts"
        axes = f"{tag}/axes"
        graph.initializer.append(numpy_helper.from_array(np.array([axis], np.int64), axes))
        # ReduceMax takes its axes as an input from opset 18, ReduceSum from 13
        top = (
            helper.make_node("ReduceMax", [x, axes], [f"{tag}/max"], name=f"{tag}/max", keepdims=1)
            if version >= 18
            else helper.make_node(
                "ReduceMax", [x], [f"{tag}/max"], name=f"{tag}/max", axes=[axis], keepdims=1
            )
        )
        parts = [
            top,
            helper.make_node("Sub", [x, f"{tag}/max"], [f"{tag}/shift"], name=f"{tag}/shift"),
            helper.make_node("Exp", [f"{tag}/shift"], [f"{tag}/exp"], name=f"{tag}/exp"),
            helper.make_node(
                "ReduceSum", [f"{tag}/exp", axes], [f"{tag}/sum"], name=f"{tag}/sum", keepdims=1
            ),
            helper.make_node("Div", [f"{tag}/exp", f"{tag}/sum"], [y], name=f"{tag}/div"),
        ]
        _replace(graph, [node], parts)
        changed += 1
    return changed


def split_convs(model: onnx.ModelProto) -> int:
    """Each channel Split of a plain Conv's output (or of its SiLU: x * sigmoid(x)) made one Conv
    (and SiLU) per part, weights cut from the Conv's; how many."""
    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    changed = 0
    for split in [n for n in graph.node if n.op_type == "Split" and n.domain in ("", "ai.onnx")]:
        chain = _conv_chain(graph, split.input[0])
        if chain is None or next((a.i for a in split.attribute if a.name == "axis"), 0) != 1:
            continue
        conv = chain[0]
        if len(conv.input) < 2 or any(name not in weights for name in conv.input[1:]):
            continue
        if next((a.i for a in conv.attribute if a.name == "group"), 1) != 1:
            continue
        w = numpy_helper.to_array(weights[conv.input[1]])
        b = numpy_helper.to_array(weights[conv.input[2]]) if len(conv.input) > 2 else None
        sizes = _split_sizes(split, weights, len(w))
        if sizes is None:
            continue
        attributes = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        parts, start = [], 0
        for k, (size, out) in enumerate(zip(sizes, split.output, strict=True)):
            tag = f"{conv.name or conv.output[0]}/part{k}"
            graph.initializer.append(numpy_helper.from_array(w[start : start + size], f"{tag}/w"))
            inputs = [conv.input[0], f"{tag}/w"]
            if b is not None:
                graph.initializer.append(numpy_helper.from_array(b[start : start + size], f"{tag}/b"))
                inputs.append(f"{tag}/b")
            start += size
            if len(chain) == 1:
                parts.append(helper.make_node("Conv", inputs, [out], name=tag, **attributes))
                continue
            parts += [
                helper.make_node("Conv", inputs, [f"{tag}/y"], name=tag, **attributes),
                helper.make_node("Sigmoid", [f"{tag}/y"], [f"{tag}/sig"], name=f"{tag}/sigmoid"),
                helper.make_node("Mul", [f"{tag}/y", f"{tag}/sig"], [out], name=f"{tag}/silu"),
            ]
        _replace(graph, [*chain, split], parts)
        _drop_unused(graph, conv.input[1:])
        changed += 1
    return changed


def _typed(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Every tensor with a known rank: the graph's inputs, outputs and inferred intermediates."""
    inferred = onnx.shape_inference.infer_shapes(model)
    found = [*inferred.graph.input, *inferred.graph.output, *inferred.graph.value_info]
    return [v for v in found if v.type.tensor_type.HasField("shape")]


def _conv_chain(graph: onnx.GraphProto, name: str) -> list[onnx.NodeProto] | None:
    """[Conv] when ``name`` is a Conv's output, [Conv, Sigmoid, Mul] when it is the SiLU of one;
    None otherwise, or when any of them has another reader or is a graph output."""
    producer = {o: n for n in graph.node for o in n.output}
    readers: dict[str, int] = {}
    for node in graph.node:
        for i in node.input:
            readers[i] = readers.get(i, 0) + 1
    outputs = {o.name for o in graph.output}
    last = producer.get(name)
    if last is None or readers.get(name) != 1 or name in outputs:
        return None
    if last.op_type == "Conv":
        return [last]
    if last.op_type != "Mul":
        return None
    a, b = (producer.get(i) for i in last.input)
    sigmoid, conv = (a, b) if a is not None and a.op_type == "Sigmoid" else (b, a)
    if sigmoid is None or conv is None or sigmoid.op_type != "Sigmoid" or conv.op_type != "Conv":
        return None
    y = conv.output[0]
    if sorted(last.input) != sorted([y, sigmoid.output[0]]) or sigmoid.input[0] != y:
        return None
    if readers.get(y) != 2 or readers.get(sigmoid.output[0]) != 1 or {y, sigmoid.output[0]} & outputs:
        return None
    return [conv, sigmoid, last]


def _split_sizes(
    split: onnx.NodeProto, weights: dict[str, onnx.TensorProto], channels: int
) -> list[int] | None:
    """Each output's channels: the sizes input (opset 13+), the ``split`` attribute, or equal parts."""
    if len(split.input) > 1 and split.input[1]:
        if split.input[1] not in weights:
            return None
        sizes = [int(s) for s in numpy_helper.to_array(weights[split.input[1]])]
    else:
        sizes = next((list(a.ints) for a in split.attribute if a.name == "split"), [])
        if not sizes:
            count = len(split.output)
            if channels % count:
                return None
            sizes = [channels // count] * count
    return sizes if sum(sizes) == channels and len(sizes) == len(split.output) else None


def _replace(graph: onnx.GraphProto, old: list[onnx.NodeProto], new: list[onnx.NodeProto]) -> None:
    """``new`` in place of ``old``, at the first old node's position (the graph stays in order)."""
    at = min(list(graph.node).index(n) for n in old)
    for node in old:
        graph.node.remove(node)
    for k, node in enumerate(new):
        graph.node.insert(at + k, node)


def _drop_unused(graph: onnx.GraphProto, names: list[str]) -> None:
    used = {i for n in graph.node for i in n.input}
    for tensor in [t for t in graph.initializer if t.name in names and t.name not in used]:
        graph.initializer.remove(tensor)
