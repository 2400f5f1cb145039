"""detector.backend openvino runs the same ONNX cards as ONNX Runtime: at float32 the same boxes, at
OpenVINO's own precision (bfloat16 on a CPU with AMX) the same objects; one request per inference
thread; and a clear error for what it cannot run."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

from vision.config import DetectorConfig
from vision.detect.card import ModelError, load_card
from vision.detect.compare import match
from vision.detect.detector import Detector, engine_hint
from vision.detect.threads import cpu_flags
from vision.detect.yolo_card import write_card
from vision.types import Detections

from .conftest import ROOT, SHARED, cli, package
from .test_yolo import assert_same, sample_frames, shapes_and_photos


@pytest.fixture(scope="module")
def openvino():
    return package("openvino")


def demo(folder: Path, detector: dict[str, str]) -> Path:
    """configs/demo.yaml with ``detector`` over its detector settings and its store in ``folder``."""
    config = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    config["cameras"]["plaza"]["url"] = str(ROOT / "sample_videos" / "plaza.mp4")
    config["detector"] |= detector
    config["storage"]["data_dir"] = str(folder / "data")
    path = folder / "demo.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    ("arch", "variant", "min_score", "least"),
    [("coco", "cocodyn", 0.25, 30), ("coco", "coco480", 0.25, 30), ("yolov8n.yaml", "square", 0.05, 6)],
)
def test_float32_gives_onnx_runtimes_boxes(openvino, zoo, coco, arch, variant, min_score, least) -> None:
    """Same classes, IoU >= 0.99, scores within 1e-3, box for box (a dynamic batch, a fixed 640x480
    export, a tiny trained model)."""
    card = load_card(write_card(zoo.export(arch, variant)))
    frames = sample_frames() if arch == "coco" else shapes_and_photos()
    ours = Detector(card, threads=1, min_score=min_score, backend="openvino", precision="f32")
    assert ours.engine.model.precision == "f32"  # type: ignore[attr-defined]
    reference = Detector(card, threads=1, min_score=min_score).detect(frames)
    assert assert_same(ours.detect(frames), reference) >= least


def test_own_precision_finds_the_same_objects(openvino, zoo, coco) -> None:
    """OpenVINO's choice (bfloat16 where the CPU computes in it) finds at least 95% of ONNX Runtime's
    boxes of score >= 0.4 at IoU >= 0.8 and adds at most 5% of its own; the precision is named."""
    card = load_card(write_card(zoo.export("coco", "cocodyn")))
    frames = sample_frames()
    ours = Detector(card, threads=1, min_score=0.4, backend="openvino")
    assert ours.engine.model.precision in ("bf16", "f32", "f16")  # type: ignore[attr-defined]
    found = ours.detect(frames)
    reference = Detector(card, threads=1, min_score=0.4).detect(frames)
    total = sum(len(r) for r in reference)
    pairs = [match(a, b, min_iou=0.8) for a, b in zip(found, reference, strict=True)]
    paired = sum(len(ia) for ia, _, _ in pairs)
    extra = sum(len(a) for a in found) - paired
    assert total > 30 and paired >= 0.95 * total, f"{paired} of {total} found"
    assert extra <= 0.05 * total, f"{extra} boxes of its own"


def test_inference_threads_each_get_their_request(openvino, zoo, coco) -> None:
    """Two threads calling one detector at once (detector.parallel 2) get what one thread gets."""
    card = load_card(write_card(zoo.export("coco", "cocodyn")))
    detector = Detector(card, threads=1, min_score=0.25, backend="openvino", precision="f32", parallel=2)
    frames = sample_frames()
    alone = detector.detect(frames)
    results: dict[int, list[Detections]] = {}

    def detect(index: int) -> None:
        results[index] = [detector.detect([frame])[0] for frame in frames]

    threads = [threading.Thread(target=detect, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert set(results) == {0, 1}
    for together in results.values():
        assert assert_same(together, alone) > 30


def test_embedded_ssd_runs_on_openvino(openvino) -> None:
    """The embedded SSD (uint8 NHWC input, a dynamic batch) loads and finds the people ONNX Runtime
    finds on the shared photos and footage."""
    frames = sample_frames()
    found = Detector(load_card("default"), threads=1, backend="openvino", precision="f32").detect(frames)
    reference = Detector(load_card("default"), threads=1).detect(frames)
    people = [(a[a.class_id == 0], b[b.class_id == 0]) for a, b in zip(found, reference, strict=True)]
    total = sum(len(b) for _, b in people)
    paired = sum(len(match(a, b, min_iou=0.8)[0]) for a, b in people)
    assert total > 10 and paired >= 0.9 * total, f"{paired} of {total} people"


def test_what_openvino_cannot_run_is_a_clear_error(openvino, zoo, coco, tmp_path: Path) -> None:
    card = load_card(write_card(zoo.export("coco", "cocodyn")))
    with pytest.raises(ModelError, match=r"detector\.precision fp8"):
        Detector(card, backend="openvino", precision="fp8")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    (tmp_path / "broken.yaml").write_text(
        yaml.safe_dump({**yaml.safe_load(card.card_path.read_text()), "file": "broken.onnx", "sha256": None})
    )
    with pytest.raises(ModelError, match="OpenVINO cannot read it"):
        Detector(load_card(tmp_path / "broken.yaml"), backend="openvino")
    for detector, message in [
        ({"backend": "openvino", "device": "cuda"}, "the openvino backend runs on the cpu"),
        ({"precision": "bf16"}, "only the openvino backend takes a precision"),
    ]:
        result = cli("check", demo(tmp_path, detector))
        assert result.returncode == 2 and message in result.stdout + result.stderr, result.stdout


def test_without_openvino_the_error_says_what_to_install(openvino, tmp_path: Path) -> None:
    """Loading the model and `street-vision check` (exit 2, before any camera starts) both say it."""
    blocked = "import sys; sys.modules['openvino'] = None\n"
    config = str(demo(tmp_path, {"backend": "openvino"}))
    for code in [
        "from vision.detect.card import load_card; from vision.detect.detector import Detector\n"
        "Detector(load_card('default'), backend='openvino')\n",
        f"from vision.cli import main; sys.exit(main(['check', {config!r}]))\n",
    ]:
        result = subprocess.run(
            [sys.executable, "-c", blocked + code], capture_output=True, text=True, timeout=120, cwd=ROOT
        )
        assert result.returncode != 0 and "needs the `openvino` extra" in result.stderr, result.stderr


def test_check_says_what_runs_the_model(openvino, tmp_path: Path) -> None:
    """`check` names the engine, and for OpenVINO the precision it will compute in on this CPU."""
    onnx = cli("check", demo(tmp_path, {}))
    assert onnx.returncode == 0 and "  detector: ssd_mobilenet_v2_coco on ONNX Runtime (cpu)\n" in onnx.stdout
    chosen = openvino.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()
    auto = cli("check", demo(tmp_path, {"backend": "openvino"}))
    assert f"on OpenVINO (cpu), precision auto ({chosen} on this CPU)\n" in auto.stdout, auto.stdout
    f32 = cli("check", demo(tmp_path, {"backend": "openvino", "precision": "f32"}))
    assert "on OpenVINO (cpu), precision f32\n" in f32.stdout, f32.stdout


def test_check_hints_openvino_for_a_float_model_on_an_amx_cpu(zoo, coco, tmp_path: Path) -> None:
    """Only for a float ONNX model on ONNX Runtime's CPU, and only where the CPU has AMX (where OpenVINO's
    bfloat16 was measured): not for the embedded SSD (uint8), the shared INT8 YOLOv8n (float input, integer
    graph), another engine or another CPU."""
    amx = frozenset({"avx512f", "amx_bf16", "amx_tile"})
    floating = load_card(zoo.export("coco", "cocodyn"))
    int8 = tmp_path / "yolov8n_coco_int8.onnx"
    int8.write_bytes((SHARED / "models" / "yolov8n_coco_int8.onnx").read_bytes())
    hint = engine_hint(DetectorConfig(), floating, amx)
    assert hint is not None and "`detector.backend: openvino`" in hint and "0.35" in hint
    assert engine_hint(DetectorConfig(), floating, frozenset({"avx512f"})) is None
    assert engine_hint(DetectorConfig(backend="openvino"), floating, amx) is None
    assert engine_hint(DetectorConfig(device="cuda"), floating, amx) is None
    assert engine_hint(DetectorConfig(), load_card("default"), amx) is None
    assert engine_hint(DetectorConfig(), load_card(int8), amx) is None
    checked = cli("check", demo(tmp_path, {"model": str(zoo.export("coco", "cocodyn"))}))
    assert checked.returncode == 0, checked.stderr
    assert ("  hint: this CPU has AMX" in checked.stdout) == ("amx_bf16" in cpu_flags()), checked.stdout


def test_run_on_openvino_opens_and_closes_the_demo_ticket(openvino, tmp_path: Path) -> None:
    """`street-vision run` on the bundled sample with detector.backend openvino: the crowd ticket opens
    and closes itself, as with ONNX Runtime (tests/test_run.py)."""
    result = cli("run", demo(tmp_path, {"backend": "openvino"}), "--jsonl")
    assert result.returncode == 0, result.stderr[-2000:]
    events = [line for line in map(yaml.safe_load, result.stdout.splitlines()) if line.get("kind") == "event"]
    transitions = [(e["transition"], e["event"]["type"]) for e in events]
    assert ("open", "crowd") in transitions and ("close", "crowd") in transitions, transitions
    opened = next(e["pts"] for e in events if e["transition"] == "open")
    assert 12.0 <= opened <= 20.0, opened
    assert np.isfinite(opened)
