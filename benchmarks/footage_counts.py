"""People counted on the crossing of vtest.avi at its annotated frames, against the truth's count.

The crowd rule counts the people whose feet are in its zone; this replays vtest.avi
(../shared/data/footage) at 5 frames/s through the detector with the camera's own plan
(detect_regions: auto, learning as it goes) and, at the 20 frames of
tests/footage_suite/vtest.boxes.json, compares the people found in the crossing zone with
the people annotated there (single frames, before the rule's median over its window).

Usage: ``python benchmarks/footage_counts.py [CARD ...]`` (default: the embedded SSD; writes
footage_counts.md beside it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import yaml

from vision.config import RegionsConfig
from vision.detect.card import load_card
from vision.detect.detector import Detector
from vision.detect.planner import Planner
from vision.evaluate.annotations import load_coco
from vision.scene.zones import Zone, points_in_polygon

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "tests" / "footage_suite"


def feet(xyxy: np.ndarray) -> np.ndarray:
    return np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 3]], axis=1)


def counts(card_path: str) -> list[tuple[int, int, int]]:
    """(frame, people annotated in the crossing, people found there) per annotated frame."""
    truth_file = yaml.safe_load((SUITE / "vtest.truth.yaml").read_text())
    card = load_card(card_path)
    detector = Detector(card, threads=2, min_score=truth_file["detector"]["min_score"])
    polygon = np.array(truth_file["camera"]["zones"]["crossing"]["polygon"])
    planner = Planner.for_camera(RegionsConfig(), {"crossing": Zone("crossing", polygon)}, None, card)
    truth = load_coco(SUITE / "vtest.boxes.json")
    capture = cv2.VideoCapture(str((SUITE / truth_file["video"]).resolve()))
    step = round(capture.get(cv2.CAP_PROP_FPS) / truth_file["camera"]["detect_fps"])
    annotated, rows, index = set(truth.frames.tolist()), [], 0
    while (got := capture.read())[0]:
        frame = got[1]
        height, width = frame.shape[:2]
        zone = polygon * [width, height]
        if index % step == 0:
            found = detector.detect([frame], [planner.boxes(width, height)])[0]
            planner.observe(found, width, height)
            if index in annotated:
                people = found.xyxy[found.class_id == 0]
                marked = truth.xyxy[(truth.frame == index) & ~truth.ignore]
                seen = int(points_in_polygon(feet(people), zone).sum()) if len(people) else 0
                rows.append((index, int(points_in_polygon(feet(marked), zone).sum()), seen))
        index += 1
    return rows


def main(cards: list[str]) -> None:
    lines = [
        "# People on vtest's crossing at the annotated frames",
        "",
        "Written by benchmarks/footage_counts.py.",
    ]
    for card in cards:
        rows = counts(card)
        truth, found = sum(r[1] for r in rows), sum(r[2] for r in rows)
        errors = [abs(seen - marked) / max(marked, 1) for _, marked, seen in rows]
        lines += ["", f"## {Path(card).stem if card != 'default' else 'embedded SSD (default)'}", ""]
        lines += [
            f"In all {truth} annotated, {found} found ({(found - truth) / truth:+.1%}); per frame the "
            f"count is off by {np.mean(errors):.1%} on average, by at most {max(errors):.0%}; within 10% on "
            f"{sum(e <= 0.1 for e in errors)} of {len(rows)} frames.",
            "",
            "| frame | annotated | found |",
            "|---|---|---|",
            *(f"| {k} | {marked} | {seen} |" for k, marked, seen in rows),
        ]
    Path(__file__).with_name("footage_counts.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:] or ["default"])
