"""The graph rewrites made before ONNX Runtime loads a float model (vision/detect/graph.py) compute
the same function, and leave alone what they must not touch.

Small real graphs built here with onnx.helper, run by ONNX Runtime before and after; the real
YOLOv8n is checked in test_yolo.py (test_rewritten_graph_detects_what_the_file_does).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from vision.detect.graph import optimized
from vision.detect.onnx_backend import session_options

from .conftest import ROOT

RNG = np.random.default_rng(7)
ENV = os.environ | {"PYTHONPATH": str(ROOT)}


def save(path: Path, nodes: list, inputs: list, outputs: list, weights: dict, opset: int = 18) -> Path:
    initializers = [numpy_helper.from_array(v, k) for k, v in weights.items()]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def run(source: Path | bytes, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(
        source if isinstance(source, bytes) else str(source), session_options(1, False)
    )
    return session.run(None, {"x": x})


def ops(model: bytes) -> Counter:
    return Counter(n.op_type for n in onnx.load_from_string(model).graph.node)


def tensor(name: str, shape: list[int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def c2f_like(path: Path, activation: bool, sizes: list[int] | None, extra_reader: bool = False) -> Path:
    """x -> Conv 8->32 (-> SiLU) -> Split along channels -> each part into its own reader; a C2f's head."""
    w = RNG.standard_normal((32, 8, 3, 3)).astype(np.float32) * 0.2
    b = RNG.standard_normal(32).astype(np.float32)
    weights = {"w": w, "b": b}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1], name="conv")]
    if activation:
        nodes += [helper.make_node("Sigmoid", ["y"], ["s"]), helper.make_node("Mul", ["y", "s"], ["a"])]
    split_inputs = ["a" if activation else "y"]
    if sizes is not None:
        weights["sizes"] = np.array(sizes, np.int64)
        split_inputs.append("sizes")
    parts = [f"p{k}" for k in range(len(sizes or [16, 16]))]
    equal = {} if sizes is not None else {"num_outputs": len(parts)}  # opset 18's equal parts
    nodes.append(helper.make_node("Split", split_inputs, parts, axis=1, **equal))
    nodes += [helper.make_node("Relu", [p], [f"out{k}"]) for k, p in enumerate(parts)]
    outputs = [tensor(f"out{k}", []) for k in range(len(parts))]
    if extra_reader:
        nodes.append(helper.make_node("Neg", ["y"], ["neg"]))
        outputs.append(tensor("neg", []))
    return save(path, nodes, [tensor("x", [1, 8, 20, 24])], outputs, weights)


def dfl_like(path: Path, axis: int, opset: int = 18) -> Path:
    """Softmax over ``axis`` of [1, 16, 4, 60] logits, then the 16->1 expectation Conv: YOLOv8's box head."""
    nodes = [
        helper.make_node("Softmax", ["x"], ["p"], axis=axis, name="softmax"),
        helper.make_node("Conv", ["p", "bins"], ["out"]),
    ]
    bins = np.arange(16, dtype=np.float32).reshape(1, 16, 1, 1)
    return save(path, nodes, [tensor("x", [1, 16, 4, 60])], [tensor("out", [])], {"bins": bins}, opset)


def logits() -> np.ndarray:
    return (RNG.standard_normal((1, 16, 4, 60)) * 6).astype(np.float32)


def test_softmax_over_a_middle_axis_is_rewritten_to_the_same_function(tmp_path: Path) -> None:
    for opset in (13, 17, 18):  # ReduceMax's axes: an attribute before 18, an input from 18
        model = dfl_like(tmp_path / f"dfl{opset}.onnx", axis=1, opset=opset)
        graph = optimized(model)
        assert graph is not None
        assert ops(graph)["Softmax"] == 0 and ops(graph)["Exp"] == 1
        x = logits()
        before, after = run(model, x)[0], run(graph, x)[0]
        np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)
        assert np.ptp(before) > 1  # the expectations differ: the test sees a wrong axis


def test_softmax_left_alone_on_the_last_axis_and_before_opset_13(tmp_path: Path) -> None:
    assert optimized(dfl_like(tmp_path / "last.onnx", axis=3)) is None
    assert optimized(dfl_like(tmp_path / "last_neg.onnx", axis=-1)) is None
    assert (
        optimized(dfl_like(tmp_path / "old.onnx", axis=1, opset=12)) is None
    )  # flattens from axis: other function


def test_split_of_an_activated_conv_becomes_one_conv_per_part(tmp_path: Path) -> None:
    x = RNG.standard_normal((1, 8, 20, 24)).astype(np.float32)
    cases = {"silu_sizes": (True, [16, 16]), "silu_uneven": (True, [8, 24]), "plain_equal": (False, None)}
    for name, (activation, sizes) in cases.items():
        model = c2f_like(tmp_path / f"{name}.onnx", activation, sizes)
        graph = optimized(model)
        assert graph is not None, name
        found = ops(graph)
        assert found["Split"] == 0 and found["Conv"] == 2, name
        assert found["Sigmoid"] == (2 if activation else 0), name
        kept = {t.name for t in onnx.load_from_string(graph).graph.initializer}
        assert "w" not in kept and "b" not in kept, name  # the cut weights replace the whole
        for before, after in zip(run(model, x), run(graph, x), strict=True):
            np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-6)
            assert before.shape[1] in (8, 16, 24) and np.any(before > 0)


def test_split_left_alone_when_the_conv_output_has_another_reader(tmp_path: Path) -> None:
    assert (
        optimized(c2f_like(tmp_path / "shared.onnx", activation=True, sizes=[16, 16], extra_reader=True))
        is None
    )


def test_quantized_graph_is_loaded_as_it_is(tmp_path: Path) -> None:
    """A rounding difference before a quantization step can cross it: quantized graphs are not rewritten."""
    model = dfl_like(tmp_path / "dfl.onnx", axis=1)
    proto = onnx.load(str(model))
    proto.graph.initializer.extend(
        [numpy_helper.from_array(np.float32(0.1), "scale"), numpy_helper.from_array(np.uint8(128), "zero")]
    )
    proto.graph.node.insert(0, helper.make_node("QuantizeLinear", ["x", "scale", "zero"], ["q"]))
    proto.graph.node.insert(1, helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["xq"]))
    proto.graph.node[2].input[0] = "xq"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(model))
    assert optimized(model) is None


def test_the_cli_imports_onnx_only_to_load_a_model_and_scipy_only_to_track() -> None:
    """onnx's import is ~1 s of CPU (ml_dtypes), scipy.optimize's ~0.5 s and the tracker's colour table
    ~0.1 s: a command that loads no model and tracks nothing (a config check, a serve refused for its
    tokens) does not pay them; on a loaded machine each one took seconds more for them."""
    code = (
        "import sys, vision.cli; from vision.track import appearance; "
        "print(sorted({'onnx', 'ml_dtypes', 'scipy.optimize'} & set(sys.modules)), "
        "appearance.colour_bins.cache_info().currsize)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT, env=ENV
    )
    assert done.returncode == 0 and done.stdout.strip() == "[] 0", done.stdout + done.stderr
