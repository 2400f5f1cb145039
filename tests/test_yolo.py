"""YOLO on ONNX Runtime agrees with Ultralytics' own predict on the same file.

Same classes, box IoU >= 0.99 and scores within 1e-3, on every shared image and on
frames of the shared footage, for every head and export variant Ultralytics makes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from vision.detect.card import ModelError, load_card
from vision.detect.compare import match
from vision.detect.detector import Detector
from vision.detect.yolo_card import write_card
from vision.types import Detections

from .conftest import FOOTAGE, IMAGES, ROOT, SHARED, cli, require

COCO_INT8 = SHARED / "models" / "yolov8n_coco_int8.onnx"


def footage_frames(count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(FOOTAGE))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    frames = []
    for index in np.linspace(0, total - 1, count).astype(int):
        capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        ok, frame = capture.read()
        assert ok, f"cannot read frame {index} of {FOOTAGE}"
        frames.append(frame)
    return frames


def sample_frames() -> list[np.ndarray]:
    return [cv2.imread(str(p)) for p in sorted(IMAGES.glob("*.jpg"))] + footage_frames(4)


def ultralytics_predict(
    model: Path, images: list[np.ndarray], card_path: Path, **kw: float
) -> list[Detections]:
    from ultralytics import YOLO

    spec = load_card(card_path).input
    yolo = YOLO(str(model), task="detect")
    out = []
    for image in images:
        r = yolo.predict(image, imgsz=(spec.height, spec.width), verbose=False, **kw)[0]
        out.append(Detections.from_arrays(r.boxes.xyxy.numpy(), r.boxes.conf.numpy(), r.boxes.cls.numpy()))
    return out


def assert_same(ours: list[Detections], theirs: list[Detections]) -> int:
    """Every box paired one to one, same class, IoU >= 0.99, score within 1e-3; returns the box count."""
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        ia, ib, _ = match(a, b, min_iou=0.99)
        assert len(a) == len(b) == len(ia), (
            f"image {i}: {len(a)} ours, {len(b)} Ultralytics, {len(ia)} paired"
        )
        assert np.all(np.abs(a.score[ia] - b.score[ib]) <= 1e-3), f"image {i}: scores differ"
    return sum(len(b) for b in theirs)


def agree(model: Path, images: list[np.ndarray], min_score: float, iou: float = 0.7) -> int:
    card = write_card(model)
    ours = Detector(load_card(card), threads=2, min_score=min_score, iou=iou).detect(images)
    theirs = ultralytics_predict(model, images, card, conf=min_score, iou=iou)
    return assert_same(ours, theirs)


def test_real_coco_model_agrees_with_ultralytics(zoo, tmp_path: Path) -> None:
    model = tmp_path / COCO_INT8.name
    model.symlink_to(require(COCO_INT8))
    assert agree(model, sample_frames(), 0.25) > 30  # persons, a bus, a dog, a bicycle, horses...


def shapes_and_photos() -> list[np.ndarray]:
    from .yolo_zoo import shapes_image

    rng = np.random.default_rng(7)
    return [shapes_image(rng)[0] for _ in range(6)] + sample_frames()


@pytest.mark.parametrize(
    ("arch", "variant"),
    [
        ("yolov8n.yaml", "square"),
        ("yolov8n.yaml", "rect"),
        ("yolov8n.yaml", "dynamic"),
        ("yolov8n.yaml", "nms"),
        ("yolo11n.yaml", "square"),
        ("yolov5nu.yaml", "square"),
        ("yolo26n.yaml", "square"),
        ("yolo26n.yaml", "end2end"),
    ],
)
def test_trained_models_agree_with_ultralytics(zoo, arch: str, variant: str) -> None:
    boxes = agree(zoo.export(arch, variant), shapes_and_photos(), 0.05)
    # the tiny models do find their shapes, so the agreement is checked on real boxes (YOLO26's
    # one-to-one head keeps fewer of them: 3 with Ultralytics 8.4.190 after 15 epochs)
    assert boxes >= (3 if arch.startswith("yolo26") else 6)


@pytest.mark.parametrize("variant", ["coco480", "cocodyn"])
def test_rect_and_dynamic_exports_agree_with_ultralytics(zoo, coco, variant: str) -> None:
    assert agree(zoo.export("coco", variant), sample_frames(), 0.25) > 30


@pytest.mark.parametrize("variant", ["coco480", "cocodyn"])
def test_rewritten_graph_detects_what_the_file_does(zoo, coco, variant: str) -> None:
    """The detector runs the graph as vision/detect/graph.py rewrites it: the same boxes, classes and
    scores as the exported file run as it is, to float rounding (boxes within 1e-2 px)."""
    import onnx
    import onnxruntime as ort

    from vision.detect.graph import optimized
    from vision.detect.onnx_backend import session_options
    from vision.detect.preprocess import place, to_tensor
    from vision.detect.yolo import decode_yolo_v8

    model = zoo.export("coco", variant)
    graph = optimized(model)
    assert graph is not None
    ops = {n.op_type for n in onnx.load_from_string(graph).graph.node}
    assert "Softmax" not in ops and "Split" not in ops
    detector = Detector(load_card(write_card(model)), threads=1, min_score=0.25)
    plain = ort.InferenceSession(str(model), session_options(1, False))
    frames = sample_frames()
    boxes = 0
    for i, (frame, ours) in enumerate(zip(frames, detector.detect(frames), strict=True)):
        tensor, geometry = place(frame, detector.card.input)
        raw = plain.run(None, {plain.get_inputs()[0].name: to_tensor([tensor], detector.card.input)})
        theirs = decode_yolo_v8(raw, [geometry], detector.params)[0]
        ia, ib, _ = match(ours, theirs, min_iou=0.99)
        assert len(ours) == len(theirs) == len(ia), f"image {i}: {len(ours)} rewritten, {len(theirs)} file"
        assert np.abs(ours.xyxy[ia] - theirs.xyxy[ib]).max(initial=0) <= 1e-2, f"image {i}: boxes moved"
        assert np.abs(ours.score[ia] - theirs.score[ib]).max(initial=0) <= 1e-4, f"image {i}: scores moved"
        boxes += len(ours)
    assert boxes > 30


def test_dynamic_batch_runs_several_cameras_in_one_call(zoo, coco) -> None:
    detector = Detector(load_card(write_card(zoo.export("coco", "cocodyn"))), threads=2, min_score=0.25)
    assert detector.engine.model.batch_size is None  # dynamic batch axis
    frames = [*footage_frames(4), cv2.imread(str(IMAGES / "bus.jpg"))]  # two sizes: two rect shapes
    together = detector.detect(frames)
    for frame, batched in zip(frames, together, strict=True):
        alone = detector.detect([frame])[0]
        assert len(alone) > 0
        assert_same([batched], [alone])


def v5_layout(v8_file: Path, out: Path) -> Path:
    """The same network with the original YOLOv5 head layout: [B, anchors, 5+nc], class = objectness x p.

    objectness is the best class score and p = score / objectness, so Ultralytics' v8
    decode of the original file is the reference for our v5 decode of this one.
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(v8_file))
    graph = model.graph
    nc = graph.output[0].type.tensor_type.shape.dim[1].dim_value - 4
    const = [
        helper.make_tensor("v5_start", TensorProto.INT64, [2], [0, 4]),
        helper.make_tensor("v5_split", TensorProto.INT64, [1], [4]),
        helper.make_tensor("v5_end", TensorProto.INT64, [1], [4 + nc]),
        helper.make_tensor("v5_axis", TensorProto.INT64, [1], [2]),
        helper.make_tensor("v5_reduce", TensorProto.INT64, [1], [-1]),
    ]
    graph.initializer.extend(const)
    graph.node.extend(
        [
            helper.make_node("Transpose", ["output0"], ["v5_t"], perm=[0, 2, 1]),
            helper.make_node("Slice", ["v5_t", "v5_start[:1]", "v5_split", "v5_axis"], ["v5_box"]),
            helper.make_node("Slice", ["v5_t", "v5_split", "v5_end", "v5_axis"], ["v5_cls"]),
            helper.make_node("ReduceMax", ["v5_cls", "v5_reduce"], ["v5_obj"], keepdims=1),
            helper.make_node("Div", ["v5_cls", "v5_obj"], ["v5_p"]),
            helper.make_node("Concat", ["v5_box", "v5_obj", "v5_p"], ["output_v5"], axis=2),
        ]
    )
    graph.initializer.append(helper.make_tensor("v5_start[:1]", TensorProto.INT64, [1], [0]))
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("output_v5", TensorProto.FLOAT, None))
    onnx.save(model, str(out))
    return out


def test_original_yolov5_head_layout(zoo, tmp_path: Path) -> None:
    v8_file = zoo.export("yolov8n.yaml", "square")
    v8_card = yaml.safe_load(write_card(v8_file).read_text())
    v5_file = v5_layout(v8_file, tmp_path / "v5.onnx")
    card = tmp_path / "v5.yaml"
    assert v5_file.is_file()
    card.write_text(
        yaml.safe_dump(
            v8_card | {"file": "v5.onnx", "sha256": None, "family": "yolo-v5", "outputs": ["output_v5"]}
        )
    )
    images = shapes_and_photos()
    ours = Detector(load_card(card), min_score=0.05).detect(images)
    assert assert_same(ours, ultralytics_predict(v8_file, images, card, conf=0.05, iou=0.7)) >= 6


def test_card_that_does_not_match_a_yolo_file(zoo, tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.symlink_to(zoo.export("yolov8n.yaml", "square"))
    good = yaml.safe_load(write_card(model).read_text())
    card = tmp_path / "m.yaml"

    def fails(**changes: object) -> str:
        card.write_text(yaml.safe_dump(good | changes))
        with pytest.raises(ModelError) as info:
            Detector(load_card(card))
        assert str(model) in str(info.value) and str(card) in str(info.value)
        return str(info.value)

    assert "returns [1, 7, 525]" in fails(
        labels={0: "square", 1: "circle"}
    )  # 2 labels, 3 classes in the file
    assert "'triangle' vs 'bottle'" in fails(labels={0: "square", 1: "circle", 2: "bottle"})
    assert "[B, max_det, 6]" in fails(nms_embedded=True)
    assert "takes input [1, 3, 160, 160]" in fails(input=good["input"] | {"width": 320})
    assert "asks for rect inputs" in fails(input=good["input"] | {"rect": True})
    card.write_text(yaml.safe_dump(good | {"format": "pt"}))
    with pytest.raises(ModelError, match=r"runs on detector\.backend: ultralytics"):
        Detector(load_card(card))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vision.cli", *args], capture_output=True, text=True, timeout=300, cwd=ROOT
    )


def test_bring_your_own_yolo_is_one_command(zoo, coco, tmp_path: Path) -> None:
    model = tmp_path / "my_yolo.onnx"
    model.write_bytes(zoo.export("coco", "coco480").read_bytes())
    result = run_cli("models", "card", str(model))
    assert result.returncode == 0, result.stderr
    assert "80 classes, family yolo-v8, input 640x480" in result.stdout
    result = run_cli("detect", str(IMAGES / "bus.jpg"), "--model", str(tmp_path / "my_yolo.yaml"), "--json")
    assert result.returncode == 0, result.stderr
    labels = [d["label"] for d in json.loads(result.stdout)["detections"]]
    assert labels.count("person") >= 3 and "bus" in labels
    model.write_bytes(b"not a model")
    result = run_cli("models", "card", str(model))
    assert result.returncode == 2 and "ONNX Runtime cannot load it" in result.stderr


def test_an_export_runs_without_a_card(zoo, coco, tmp_path: Path) -> None:
    """`--model my_yolo.onnx` and `detector.model: my_yolo.onnx`, as Ultralytics takes a file: the card its
    metadata describes, the same boxes as with the card `models card` writes."""
    model = tmp_path / "my_yolo.onnx"
    model.write_bytes(zoo.export("coco", "coco480").read_bytes())
    bare = run_cli("detect", str(IMAGES / "bus.jpg"), "--model", str(model), "--json")
    assert bare.returncode == 0, bare.stderr
    assert load_card(model).model_dump() == load_card(write_card(model)).model_dump()
    carded = run_cli("detect", str(IMAGES / "bus.jpg"), "--model", str(model.with_suffix(".yaml")), "--json")
    assert json.loads(bare.stdout)["detections"] == json.loads(carded.stdout)["detections"]
    assert "person" in [d["label"] for d in json.loads(bare.stdout)["detections"]]
    model.with_suffix(".yaml").unlink()
    config = tmp_path / "cameras.yaml"
    config.write_text(
        f"cameras:\n  plaza:\n    url: {ROOT / 'sample_videos' / 'plaza.mp4'}\n"
        "detector:\n  model: my_yolo.onnx\n"
    )
    checked = run_cli("check", str(config))
    assert checked.returncode == 0, checked.stderr
    assert "detector: my_yolo on ONNX Runtime" in checked.stdout


def test_ultralytics_backend_runs_pt_like_the_onnx_path(zoo, coco) -> None:
    card = load_card(write_card(coco))
    assert card.format == "pt" and len(card.labels) == 80
    assert load_card(coco).model_dump() == card.model_dump()  # a bare checkpoint: the same card
    torch_path = Detector(card, min_score=0.25, backend="ultralytics").detect(sample_frames())
    onnx_path = Detector(load_card(write_card(zoo.export("coco", "cocodyn"))), min_score=0.25).detect(
        sample_frames()
    )
    assert assert_same(torch_path, onnx_path) > 30


def test_ultralytics_backend_without_ultralytics_is_a_clear_error(zoo, coco) -> None:
    code = (
        "import sys; sys.modules['ultralytics'] = None\n"
        "from vision.detect.card import load_card; from vision.detect.detector import Detector\n"
        f"Detector(load_card({str(coco.with_suffix('.yaml'))!r}), backend='ultralytics')\n"
    )
    write_card(coco)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode != 0 and "needs the `yolo` extra" in result.stderr


def test_quantize_calibrates_on_footage_and_reports_drift(zoo, coco, tmp_path: Path) -> None:
    model = tmp_path / "coco.onnx"
    model.write_bytes(zoo.export("coco", "coco480").read_bytes())
    write_card(model)
    out = tmp_path / "coco_int8.onnx"
    result = run_cli(
        "models", "quantize", str(tmp_path / "coco.yaml"), "--calibrate", str(FOOTAGE), "--out", str(out),
        "--frames", "6", "--threads", "2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["frames"] == 6 and report["reference_boxes"] > 20
    assert report["matched"] >= 0.7 * report["reference_boxes"] and report["mean_iou"] > 0.8
    card = load_card(tmp_path / "coco_int8.yaml")
    found = Detector(card, min_score=0.25).detect([cv2.imread(str(IMAGES / "bus.jpg"))])[0]
    assert [card.labels[int(c)] for c in found.class_id].count("person") >= 3


def test_rebuild_gives_back_the_network_of_an_export(zoo, coco, tmp_path: Path) -> None:
    """``models rebuild`` of a float export computes what the export computes (every weight and bias
    found, BatchNorms as identities), and refuses what is not an export of the architecture."""
    import onnxruntime as ort
    import torch

    exported = zoo.export("coco", "coco640")
    checkpoint = tmp_path / "again.pt"
    result = cli("models", "rebuild", exported, "--arch", "yolov8n.yaml", "--out", checkpoint)
    assert result.returncode == 0, result.stderr
    net = torch.load(checkpoint, weights_only=False)["model"].float().eval()
    image = cv2.resize(cv2.imread(str(IMAGES / "bus.jpg")), (640, 640))
    x = np.ascontiguousarray(image[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255
    with torch.no_grad():
        ours = net(torch.from_numpy(x))[0].numpy()
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    theirs = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert ours.shape == theirs.shape == (1, 84, 8400)
    np.testing.assert_allclose(ours[:, :4], theirs[:, :4], atol=0.05)  # box pixels
    np.testing.assert_allclose(ours[:, 4:], theirs[:, 4:], atol=1e-3)  # class scores
    assert theirs[:, 4:].max() > 0.5  # the bus photo: something is seen, so the comparison means something
    wrong = cli("models", "rebuild", exported, "--arch", "yolov8s.yaml", "--out", tmp_path / "s.pt")
    assert wrong.returncode == 2 and "do not fit yolov8s.yaml" in wrong.stderr
    junk = cli("models", "rebuild", ROOT / "README.md", "--arch", "yolov8n.yaml", "--out", tmp_path / "j.pt")
    assert junk.returncode == 2 and "not an ONNX model" in junk.stderr and not (tmp_path / "j.pt").exists()
