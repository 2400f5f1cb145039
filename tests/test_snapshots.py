"""Snapshots: a clean and an annotated JPEG per transition, under the data folder by event id."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vision.events.snapshots import SnapshotWriter
from vision.types import Detections, Frame, Transition


def test_clean_and_annotated_pictures_by_event_id(tmp_path: Path) -> None:
    ramp = np.linspace(60, 120, 320, dtype=np.float32)[None, :, None]
    image = np.broadcast_to(ramp + np.linspace(0, 20, 240, dtype=np.float32)[:, None, None], (240, 320, 3))
    image = np.ascontiguousarray(image.astype(np.uint8))
    zone = np.array([[40, 40], [280, 40], [280, 200], [40, 200]], np.float32)
    boxes = Detections.from_arrays(np.array([[100, 80, 140, 180]]), np.array([0.9]), np.array([0]))
    transition = Transition("open", 12.5, {"event_id": "abc123"}, boxes)

    paths = SnapshotWriter(tmp_path, {0: "person"}).write(transition, Frame("cam", 12.5, image), zone)

    assert paths.clean == "snapshots/abc123/000012.500-open.jpg"
    assert paths.annotated == "snapshots/abc123/000012.500-open-annotated.jpg"
    assert sorted(p.name for p in (tmp_path / "snapshots" / "abc123").iterdir()) == [
        "000012.500-open-annotated.jpg",
        "000012.500-open.jpg",
    ]  # no partial files left behind
    clean = cv2.imread(str(tmp_path / paths.clean)).astype(int)
    annotated = cv2.imread(str(tmp_path / paths.annotated)).astype(int)
    assert np.abs(clean - image).mean() < 3  # the frame as it was (up to JPEG loss)
    drawn = annotated[40, 60:260] - clean[40, 60:260]  # the zone's top edge turned amber: G and R up
    assert drawn[:, 1].mean() > 60 and drawn[:, 2].mean() > 60 and abs(drawn[:, 0].mean()) < 30
    box_edge = annotated[130, 99:102] - clean[130, 99:102]  # the box's left edge, drawn in red: R up, B down
    assert box_edge[:, 2].max() > 60 and box_edge[:, 0].min() < -20
    untouched = annotated[220:, :30]
    assert np.abs(untouched - clean[220:, :30]).mean() < 3
