"""The tracker on real pixels: the embedded detector on vtest.avi, at the demo's 5 detected frames per second.

The walkers' boxes below were checked by eye on crops of those frames (five people:
three walking alone, then a couple walking side by side, partly hiding each other).
"""

from __future__ import annotations

import sqlite3
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from vision.config import DecodeConfig, load_config
from vision.detect.detector import Detector
from vision.ingest.decoder import VideoDecoder
from vision.pipeline import Pipeline
from vision.secrets import SecretUrl
from vision.store import Store
from vision.track import Tracker, TrackerConfig
from vision.track.match import iou

from .conftest import FOOTAGE, SAMPLE, require

# walker -> {source frame index (10 fps): box in pixels}
WALKERS = {
    "grey jacket": {2: (263, 217, 298, 305), 12: (321, 211, 357, 284), 22: (371, 195, 399, 267)},
    "black coat": {2: (636, 245, 676, 320), 12: (525, 240, 563, 318), 20: (437, 224, 478, 311)},
    "jeans": {2: (498, 164, 528, 232), 8: (481, 169, 509, 236), 14: (446, 169, 474, 245)},
    "red jacket": {20: (682, 275, 721, 371), 36: (590, 241, 621, 324), 50: (504, 221, 538, 299),
                   66: (452, 197, 482, 272), 76: (454, 185, 478, 257)},
    "blonde": {20: (718, 272, 759, 368), 36: (608, 246, 650, 329), 50: (543, 218, 575, 299),
               66: (485, 198, 514, 271), 76: (479, 180, 508, 255)},
}  # fmt: skip


@pytest.fixture(scope="module")
def tracked(detector: Detector) -> dict[int, tuple[float, np.ndarray, np.ndarray]]:
    """Every second frame of the first 12 s: {frame index: (pts, person boxes, track ids)}; the tracker
    gets each frame, as in the pipeline, so its appearance check must not split a walker's track."""
    require(FOOTAGE)
    person = next(k for k, v in detector.names.items() if v == "person")
    tracker = Tracker(TrackerConfig())
    out = {}
    with VideoDecoder("vtest", SecretUrl(str(FOOTAGE)), DecodeConfig()).open() as source:
        for index, (frame, pts) in enumerate(islice(source.frames(), 120)):
            if index % 2:
                continue
            image = source.image(frame)
            dets = detector.detect([image])[0]
            dets = tracker.update(dets[dets.class_id == person], pts, image)
            out[index] = (pts, dets.xyxy, dets.track_id)
    return out


def test_each_walker_keeps_one_id(tracked: dict[int, tuple[float, np.ndarray, np.ndarray]]) -> None:
    ids = {}
    for name, keyframes in WALKERS.items():
        seen = set()
        for index, box in keyframes.items():
            _, xyxy, track_id = tracked[index]
            overlap = iou(np.asarray(box, np.float32)[None], xyxy)
            assert overlap.size and overlap.max() >= 0.5, f"{name} not detected at frame {index}"
            seen.add(int(track_id[overlap.argmax()]))
        assert len(seen) == 1 and -1 not in seen, f"{name} had ids {sorted(seen)}"
        ids[name] = seen.pop()
    assert len(set(ids.values())) == len(WALKERS), ids  # five people, five ids


def test_person_tracks_are_long_lived(tracked: dict[int, tuple[float, np.ndarray, np.ndarray]]) -> None:
    lengths: dict[int, int] = {}
    for _, _, track_id in tracked.values():
        for tid in track_id[track_id >= 0].tolist():
            lengths[tid] = lengths.get(tid, 0) + 1
    frames = len(tracked)
    assert frames == 60
    assert len(lengths) <= 16, lengths  # about ten people pass in these 12 s (12 tracks when measured)
    assert np.median(list(lengths.values())) >= 10, lengths  # half the tracks last 2 s or more (16.5)
    assert max(lengths.values()) >= 50, lengths  # someone in view all along keeps one id (57 of 60)


def test_pipeline_stores_track_ids(tmp_path: Path) -> None:
    config = tmp_path / "cam.yaml"
    config.write_text(
        f"cameras:\n  plaza:\n    url: {SAMPLE}\n    detect_fps: 2\n"
        "detector: {classes: [person]}\nstorage: {data_dir: data}\n"
    )
    cfg = load_config(config)
    store = Store(cfg.storage.data_dir)
    Pipeline(cfg, Detector.from_config(cfg.detector), store).run()
    store.close()
    db = sqlite3.connect(tmp_path / "data" / "street-vision.sqlite")
    rows = db.execute("SELECT track_id >= 0, score >= 0.6, COUNT(*) FROM detections GROUP BY 1, 2").fetchall()
    count = {(bool(t), bool(s)): n for t, s, n in rows}
    confident = count[(True, True)] + count[(False, True)]
    assert count[(True, True)] >= 0.75 * confident  # confident boxes belong to tracks (not the first box)
    spans = db.execute(
        "SELECT MAX(pts) - MIN(pts), COUNT(*), COUNT(DISTINCT pts) FROM detections WHERE track_id >= 0 "
        "GROUP BY track_id"
    ).fetchall()
    assert max(span for span, _, _ in spans) >= 20.0  # someone followed for 20 s of stream time
    assert all(boxes == frames for _, boxes, frames in spans)  # never two boxes with one id in a frame
