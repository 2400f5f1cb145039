"""Tuning workflow on real pictures: mine frames from footage and a store, pre-label, hand off to
CVAT/COCO and back, fine-tune a tiny YOLO on park-my-bike, export it and run it through our detector.

Nothing is downloaded: the YOLO is trained from Ultralytics' yolov8n.yaml for two epochs at
128 px on 40 tiles (a few seconds on two cores); its numbers mean nothing, its plumbing does.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from vision.detect.card import load_card
from vision.detect.detector import Detector
from vision.evaluate.annotations import load_coco, load_cvat
from vision.tuning.label import split_by_camera
from vision.tuning.layout import load_dataset, read_labels
from vision.tuning.mine import fair_share, select
from vision.tuning.phash import dhash, distances

from .conftest import IMAGES, ROOT, SAMPLE, SHARED, cli, package, require

PARK = SHARED / "datasets" / "park-my-bike"
FOOTAGE_DIR = SHARED / "footage"


def manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


def test_dhash_tells_a_new_object_from_noise() -> None:
    frame = cv2.imread(str(IMAGES / "dog.jpg"))
    lighter = cv2.convertScaleAbs(frame, alpha=1.05, beta=6)
    _, jpeg = cv2.imencode(".jpg", lighter, [cv2.IMWRITE_JPEG_QUALITY, 60])
    noisy = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    changed = frame.copy()
    person = cv2.imread(str(IMAGES / "person.jpg"))
    changed[100:300, 50:250] = cv2.resize(person, (200, 200))  # someone steps into view
    codes = np.stack([dhash(noisy), dhash(changed)])
    near, far = distances(codes, dhash(frame)).tolist()
    assert near <= 10 < far


def test_fair_share_gives_what_small_groups_cannot_use_to_the_others() -> None:
    assert fair_share({"a": 3, "b": 100, "c": 100}, 30) == {"a": 3, "b": 13, "c": 14}
    assert fair_share({"a": 3, "b": 4}, 30) == {"a": 3, "b": 4}


def test_balance_per_camera_then_per_hour_events_first() -> None:
    def record(camera: str, pts: float, source: str = "uniform", hour: int | None = None) -> dict:
        wall = None if hour is None else f"2026-05-01T{hour:02d}:{int(pts) % 60:02d}:00Z"
        return {"camera": camera, "pts": pts, "source": source, "wall_time": wall}

    night = [record("quay", float(i), hour=2) for i in range(40)]
    day = [record("quay", 100.0 + i, hour=14) for i in range(4)] + [record("quay", 200.0, "event", 14)]
    other = [record("bridge", float(i)) for i in range(40)] + [record("bridge", 7.5, "uncertain")]
    chosen = select(night + day + other, 20)
    quay = [r for r in chosen if r["camera"] == "quay"]
    assert len(quay) == 10 and len(chosen) == 20
    assert sum(r["wall_time"][11:13] == "14" for r in quay) == 5  # the day hour keeps all it has, event too
    bridge = [r for r in chosen if r["camera"] == "bridge"]
    assert bridge[0]["source"] == "uncertain"
    uniform = sorted(r["pts"] for r in bridge if r["source"] == "uniform")
    assert uniform[0] == 0.0 and uniform[-1] == 39.0  # spread over the whole recording


def test_split_by_camera_keeps_cameras_whole() -> None:
    records = [
        {"index": i, "camera": camera, "pts": float(i)}
        for i, camera in enumerate(["a"] * 10 + ["b"] * 10 + ["c"] * 10 + ["d"] * 10)
    ]
    split, note = split_by_camera(records, 0.2)
    val_cameras = {records[i]["camera"] for i in split["val"]}
    assert val_cameras and val_cameras.isdisjoint(records[i]["camera"] for i in split["train"])
    assert len(split["val"]) >= 8 and note.startswith("val cameras:")
    split, _ = split_by_camera(records, 0.2, ["b"])
    assert split["val"] == list(range(10, 20))
    alone = [r | {"camera": "a"} for r in records]
    split, note = split_by_camera(alone, 0.25)
    assert split["val"] == list(range(30, 40)) and "last 10 frames" in note


def test_mine_sample_videos_and_footage(tmp_path: Path) -> None:
    footage = sorted(p for p in require(FOOTAGE_DIR).iterdir() if p.suffix in {".mp4", ".avi"})
    videos = sorted((ROOT / "sample_videos").glob("*.mp4")) + footage
    out = tmp_path / "mined"
    result = cli("dataset", "mine", *videos, "--out", out, "--every", "2", "--max-frames", "48")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    records = manifest(out)
    cameras = {v.stem for v in videos}
    assert summary["frames"] == len(records) == 48 and set(summary["cameras"]) == cameras
    kept = {c: sum(r["camera"] == c for r in records) for c in cameras}
    for camera, stats in summary["cameras"].items():
        assert stats["kept"] == kept[camera] <= stats["offered"] - stats["near_duplicates"]
        if stats["offered"] - stats["near_duplicates"] >= 8:
            assert kept[camera] >= 8  # 48 over 6 cameras: each gets its share when it has it
    assert sorted(r["index"] for r in records) == list(range(48))
    for r in records:
        image = cv2.imread(str(out / r["image"]))
        assert image.shape[:2] == (r["height"], r["width"])
        assert r["source"] == "uniform" and Path(r["origin"]).stem == r["camera"]
        assert r["pts"] is not None and r["wall_time"] is None
        assert Path(r["image"]).stem.endswith(f"{r['index']:06d}")
    for camera in cameras:  # no two kept frames of a camera are near-duplicates
        codes = np.array(
            [np.frombuffer(bytes.fromhex(r["dhash"]), np.uint8) for r in records if r["camera"] == camera]
        )
        for i in range(len(codes) - 1):
            assert distances(codes[i + 1 :], codes[i]).min() > 10
    assert not list((out / "images").glob(".staged-*"))  # the frames left out are gone

    again = cli("dataset", "mine", videos[0], "--out", out)
    assert again.returncode == 2 and "already holds a dataset" in again.stderr
    broken = cli("dataset", "mine", FOOTAGE_DIR / "README.md", "--out", tmp_path / "other")
    assert broken.returncode == 2 and "README.md" in broken.stderr and "Traceback" not in broken.stderr


def test_mine_a_config_and_its_store(tmp_path: Path) -> None:
    """Events' clean snapshots and frames with uncertain detections come with their provenance."""
    config = tmp_path / "demo.yaml"
    demo = (ROOT / "configs" / "demo.yaml").read_text()
    config.write_text(
        demo.replace("../sample_videos/plaza.mp4", str(SAMPLE))
        .replace("../data", "data")
        .replace("detect_fps: 5", "detect_fps: 2")
    )
    assert cli("run", config).returncode == 0
    out = tmp_path / "mined"
    result = cli("dataset", "mine", config, "--out", out, "--every", "5", "--uncertain-band", "0.1")
    assert result.returncode == 0, result.stderr
    records = manifest(out)
    db = sqlite3.connect(tmp_path / "data" / "street-vision.sqlite")
    transitions = db.execute("SELECT event_id, kind, pts, payload FROM transitions ORDER BY seq").fetchall()
    events = [r for r in records if r["source"] == "event"]
    assert len(transitions) >= 2  # the crowd opened and closed
    assert [(e["event_id"], e["transition"], e["pts"]) for e in events] == [t[:3] for t in transitions]
    for event, (_, _, _, payload) in zip(events, transitions, strict=True):
        assert event["event_type"] == "crowd" and event["camera"] == "plaza"
        snapshot = cv2.imread(str(tmp_path / "data" / json.loads(payload)["snapshots"]["clean"])).astype(int)
        assert np.abs(cv2.imread(str(out / event["image"])).astype(int) - snapshot).mean() < 2
    uncertain = [r for r in records if r["source"] == "uncertain"]
    assert len(uncertain) >= 5
    for r in uncertain:  # the very frame the detector was unsure on
        scores = [s for (s,) in db.execute("SELECT score FROM detections WHERE pts = ?", (r["pts"],))]
        assert scores and 0.4 <= min(scores) < 0.5 and r["uncertain"]["score"] == round(min(scores), 3)
    uniform = [r["pts"] for r in records if r["source"] == "uniform"]
    assert uniform and all(p % 5 < 0.2 or p % 5 > 4.8 for p in uniform)


@pytest.fixture(scope="module")
def ultralytics_offline(tmp_path_factory: pytest.TempPathFactory) -> None:
    from .yolo_zoo import offline

    offline(tmp_path_factory.mktemp("ultralytics") / "config")
    package("ultralytics")


def park_subset(root: Path) -> dict[str, Path]:
    """40 train tiles and 16 val tiles with bicycles, as two 'cameras' (two folders); name -> label file."""
    truth = {}
    for split, camera, count in (("train", "bays_a", 40), ("val", "bays_b", 16)):
        folder = root / camera
        folder.mkdir(parents=True)
        labels = sorted(p for p in (require(PARK) / "labels" / split).glob("*.txt") if p.read_text().strip())
        for label in labels[:count]:
            shutil.copyfile(PARK / "images" / split / f"{label.stem}.jpg", folder / f"{label.stem}.jpg")
            truth[label.stem] = label
    return truth


def corrected_cvat(pre: Path, out: Path, origin_of: dict[str, str], truth: dict[str, Path]) -> Path:
    """What an annotator sends back: the pre-labelled task, boxes fixed, the class called 'bike'."""
    tree = ET.parse(pre)
    root = tree.getroot()
    root.find("meta/task/labels/label/name").text = "bike"
    for image in root.iterfind("image"):
        for box in list(image):
            image.remove(box)
        w, h = int(image.get("width")), int(image.get("height"))
        for line in truth[origin_of[image.get("name")]].read_text().splitlines():
            _, cx, cy, bw, bh = map(float, line.split())
            corners = ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)
            ET.SubElement(
                image,
                "box",
                dict(zip(("xtl", "ytl", "xbr", "ybr"), map(str, corners), strict=True), label="bike"),
            )
    images = root.findall("image")
    ET.SubElement(images[1], "box", xtl="1", ytl="1", xbr="30", ybr="30", label="sign")  # not a bicycle
    root.remove(images[0])  # not corrected yet
    tree.write(out)
    return out


def test_footage_to_a_promoted_model(tmp_path: Path, ultralytics_offline: None) -> None:
    from .test_yolo import assert_same, ultralytics_predict

    truth = park_subset(tmp_path / "cams")
    data = tmp_path / "bikes-data"
    result = cli("dataset", "mine", tmp_path / "cams" / "bays_a", tmp_path / "cams" / "bays_b", "--out", data)
    assert result.returncode == 0, result.stderr
    records = manifest(data)
    assert len(records) == 56 and {r["source"] for r in records} == {"image"}

    result = cli(
        "dataset", "label", data, "--classes", "bicycle", "--val-cameras", "bays_b", "--threads", "2"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["train"] == 40 and summary["val"] == 16 and summary["boxes"] > 10  # the SSD sees bicycles
    dataset = load_dataset(data)
    assert dataset.names == {0: "bicycle"}
    assert {p.parent.name for p in dataset.splits["val"]} == {"images"} and len(dataset.splits["val"]) == 16
    assert all(records[int(p.stem[-6:])]["camera"] == "bays_b" for p in dataset.splits["val"])
    cvat, coco = load_cvat(data / "annotations" / "cvat.xml"), load_coco(data / "annotations" / "coco.json")
    for handoff in (cvat, coco):  # both hand-off files carry exactly the pre-labels
        assert len(handoff) == summary["boxes"] and set(handoff.label) == {"bicycle"}
        assert handoff.frames.tolist() == list(range(56))
    r = records[int(cvat.frame[0])]
    xyxy, _ = read_labels(data / r["image"], r["width"], r["height"])
    assert np.abs(xyxy - cvat.xyxy[cvat.frame == r["index"]]).max() < 0.01

    again = cli("dataset", "label", data, "--classes", "bicycle")
    assert again.returncode == 2 and "--relabel" in again.stderr  # corrections are never overwritten silently
    origin_of = {Path(r["image"]).name: Path(r["origin"]).stem for r in records}
    fixed = corrected_cvat(data / "annotations" / "cvat.xml", tmp_path / "fixed.xml", origin_of, truth)
    result = cli("dataset", "import", data, "--from", fixed)
    assert result.returncode == 2 and "bike" in result.stderr and "--map" in result.stderr
    untouched = (data / "labels" / f"{Path(records[0]['image']).stem}.txt").read_text()
    result = cli("dataset", "import", data, "--from", fixed, "--map", "bike=bicycle", "--map", "sign=")
    assert result.returncode == 0, result.stderr
    imported = json.loads(result.stdout)
    assert imported["unchanged_images"] == 1 and imported["dropped_boxes"] == 1
    assert imported["boxes"] == sum(
        len(truth[origin_of[Path(r["image"]).name]].read_text().splitlines()) for r in records[1:]
    )
    assert (data / "labels" / f"{Path(records[0]['image']).stem}.txt").read_text() == untouched
    for r in records[1:]:
        ours, _ = read_labels(data / r["image"], 256, 256)
        label = truth[Path(r["origin"]).stem]
        expected = np.array([list(map(float, line.split()[1:])) for line in label.read_text().splitlines()])
        assert len(ours) == len(expected)
        centres = np.c_[(ours[:, 0] + ours[:, 2]) / 512, (ours[:, 1] + ours[:, 3]) / 512]
        assert np.abs(np.sort(centres, axis=0) - np.sort(expected[:, :2], axis=0)).max() < 1e-3

    models = tmp_path / "models" / "bikes"
    result = cli(
        "train", data, "--base", "yolov8n.yaml", "--epochs", "2", "--imgsz", "128", "--batch", "8",
        "--out", models, "--threads", "2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads(result.stdout.splitlines()[-1])
    version = models / "v001"
    assert record["version"] == "v001" and Path(record["model"]) == version / "bikes.yaml"
    assert record["dataset"]["train_images"] == 40 and record["dataset"]["val_images"] == 16
    assert (
        record["dataset"]["manifest_sha256"]
        == hashlib.sha256((data / "manifest.jsonl").read_bytes()).hexdigest()
    )
    metrics = record["metrics"]
    assert metrics["images"] == 16 and metrics["boxes"] == sum(
        len(truth[Path(r["origin"]).stem].read_text().splitlines())
        for r in records
        if r["camera"] == "bays_b"
    )
    assert set(metrics["ap50"]) == {"bicycle"} and 0 <= metrics["map50"] <= 1
    assert json.loads((version / "training.json").read_text()) == record

    card = load_card(version / "bikes.yaml")
    assert card.labels == {0: "bicycle"} and card.input.rect and card.name == "bikes-v001"
    images = [cv2.imread(str(p)) for p in dataset.splits["val"]]
    ours = Detector(card, threads=2, min_score=0.001).detect(images)
    theirs = ultralytics_predict(card.model_path, images, version / "bikes.yaml", conf=0.001, iou=0.7)
    assert assert_same(ours, theirs) >= 16  # the untrained-looking model still gives real, equal boxes
    assert yaml.safe_load((version / "bikes.yaml").read_text())["source"]["path"] == "yolov8n.yaml"

    result = cli("train", data, "--base", "missing.pt", "--out", models)
    assert result.returncode == 2 and "never downloads" in result.stderr

    # INT8 calibrated on the dataset, kept only if the gate passes it against the float model on val
    int8 = version / "bikes_int8.onnx"
    quantize = ("models", "quantize", version / "bikes.yaml", "--calibrate", data / "images", "--frames", "8")
    result = cli(*quantize, "--out", int8, "--data", data, "--margin", "0.99")
    assert result.returncode == 0, result.stderr[-3000:]
    kept = json.loads(result.stdout.splitlines()[-1])
    assert kept["card"] == str(int8.with_suffix(".yaml")) and int8.is_file() and "matched" in kept
    assert kept["gate"]["current"]["ap50"] == metrics["ap50"] and kept["gate"]["decision"] == "promote"
    assert (version / "bikes_int8_gate" / "gate.md").is_file()
    strict = version / "strict_int8.onnx"
    result = cli(*quantize, "--out", strict, "--data", data, "--margin", "0")
    report = json.loads((version / "strict_int8_gate" / "gate.json").read_text())
    lost = report["candidate"]["map50"] < report["current"]["map50"]
    assert report["decision"] == ("keep" if lost else "promote"), report
    assert result.returncode == (1 if lost else 0) and strict.is_file() != lost  # refused: removed
    result = cli(*quantize, "--out", tmp_path / "x.onnx", "--data", tmp_path / "nothing")
    assert result.returncode == 2 and "nothing" in result.stderr and not (tmp_path / "x.onnx").exists()

    # gate: side by side with the embedded SSD on the same val cameras, then against itself
    candidate = version / "bikes.yaml"
    result = cli(
        "models", "gate", candidate, "--against", "default", "--data", data, "--out", tmp_path / "g1"
    )
    report = json.loads((tmp_path / "g1" / "gate.json").read_text())
    assert json.loads(result.stdout.splitlines()[-1]) == report
    assert report["candidate"]["ap50"] == metrics["ap50"] and report["current"]["images"] == 16
    (row,) = report["classes"]
    assert row["class"] == "bicycle" and row["current"] == report["current"]["ap50"]["bicycle"]
    worse = row["candidate"] < row["current"] - 0.02
    assert report["decision"] == ("keep" if worse else "promote") and result.returncode == (1 if worse else 0)
    assert "| bicycle |" in (tmp_path / "g1" / "gate.md").read_text()
    result = cli(
        "models", "gate", candidate, "--against", candidate, "--data", data, "--out", tmp_path / "g2"
    )
    assert result.returncode == 0 and json.loads(result.stdout.splitlines()[-1])["decision"] == "promote"

    # promote: only with a passing gate report (or --force); the previous card is kept
    result = cli("models", "promote", candidate)
    assert result.returncode == 2 and "no gate report" in result.stderr
    result = cli("models", "promote", candidate, "--gate", tmp_path / "g2" / "gate.json")
    assert result.returncode == 0, result.stderr
    current = models / "current.yaml"
    assert yaml.safe_load(current.read_text())["file"] == "v001/bikes.onnx"
    result = cli("detect", IMAGES / "dog.jpg", "--model", current, "--min-score", "0.001", "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["detections"]
    first = current.read_text()
    assert cli("models", "promote", candidate, "--force").returncode == 0
    assert (models / "previous.yaml").read_text() == first
    history = [json.loads(line) for line in (models / "promotions.jsonl").read_text().splitlines()]
    assert [h["forced"] for h in history] == [False, True] and history[0]["gate"]["decision"] == "promote"
