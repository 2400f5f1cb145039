"""People counted on the crossing of vtest.avi at its annotated frames, against the truth's count.

The crowd rule counts the people whose feet are in its zone, per frame, and opens on the
median of those counts over its window. This replays vtest.avi (../shared/data/footage) at
the truth's 5 frames/s through the detector with the camera's own plan (detect_regions:
auto, learning as it goes, unless a plan is given) and the camera's real analysis (masks,
tracker, the crowd rule), and at the 20 frames of tests/footage_suite/vtest.boxes.json
compares with the people annotated in the zone: the frame's own count (the rule's
``instant_count``) and the rule's count (the window's median).

Usage: ``python benchmarks/footage_counts.py [CARD[@tiles=SIZE] ...]`` (default: the embedded
SSD; ``@tiles=320``: tiles of 320 px over the whole frame plus the whole frame, by hand);
writes footage_counts.md beside it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np

from vision.camera.analysis import CameraAnalysis
from vision.config import RegionsConfig
from vision.detect.card import load_card
from vision.detect.detector import Detector
from vision.detect.planner import Planner
from vision.evaluate.annotations import load_coco
from vision.evaluate.truth import load_truth
from vision.scene.zones import points_in_polygon
from vision.types import Frame

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "tests" / "footage_suite"


def feet(xyxy: np.ndarray) -> np.ndarray:
    return np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 3]], axis=1)


def counts(spec: str) -> tuple[list[tuple[int, int, int, int]], float, float]:
    """(frame, annotated, the frame's count, the rule's median count) per annotated frame; inferences
    per frame; CPU seconds per frame."""
    card_path, _, tiles = spec.partition("@tiles=")
    truth = load_truth(SUITE / "vtest.truth.yaml")
    card = load_card(card_path)
    detector = Detector(card, threads=2, min_score=truth.detector.min_score)
    analysis = CameraAnalysis("vtest", truth.camera, detector.names, truth.events)
    regions = RegionsConfig(mode="tiles", tile_size=int(tiles)) if tiles else truth.camera.detect_regions
    planner = Planner.for_camera(regions, analysis.scene.zones, analysis.scene.ground, card)
    marked = load_coco(SUITE / "vtest.boxes.json")
    polygon = np.asarray(truth.camera.zones["crossing"].polygon)
    capture = cv2.VideoCapture(str(truth.video))
    fps = capture.get(cv2.CAP_PROP_FPS)
    step = round(fps / truth.camera.detect_fps)
    annotated, rows, index, inferences, frames = set(marked.frames.tolist()), [], 0, 0, 0
    start = time.process_time()
    while (got := capture.read())[0]:
        image = got[1]
        height, width = image.shape[:2]
        if index % step == 0:
            boxes = planner.boxes(width, height)
            found = detector.detect([image], [boxes])[0]
            planner.observe(found, width, height)
            inferences += 1 if boxes is None else len(boxes)
            frames += 1
            _, observations = analysis.process(Frame("vtest", index / fps, image), found)
            if index in annotated:
                crowd = next(o for o in observations if o.rule == "crowd")
                people = marked.xyxy[(marked.frame == index) & ~marked.ignore]
                inside = points_in_polygon(feet(people), polygon * [width, height]) if len(people) else []
                rows.append((index, int(np.sum(inside)), int(crowd.details["instant_count"]), crowd.count))
        index += 1
    return rows, inferences / frames, (time.process_time() - start) / frames


def summary(rows: list[tuple[int, int, int, int]], column: int) -> str:
    truth, found = sum(r[1] for r in rows), sum(r[column] for r in rows)
    errors = [abs(r[column] - r[1]) / max(r[1], 1) for r in rows]
    return (
        f"{found} of {truth} ({(found - truth) / truth:+.1%}); per frame off by {np.mean(errors):.1%} on "
        f"average, by at most {max(errors):.0%}; within 10% on {sum(e <= 0.1 for e in errors)} of "
        f"{len(rows)} frames"
    )


def main(specs: list[str]) -> None:
    lines = [
        "# People on vtest's crossing at the annotated frames",
        "",
        "Written by benchmarks/footage_counts.py (2 shared CPU cores; CPU seconds per analysed frame).",
    ]
    crowd = load_truth(SUITE / "vtest.truth.yaml").camera.zones["crossing"].rules.crowd
    assert crowd is not None, "vtest's crossing has a crowd rule"
    for spec in specs:
        rows, inferences, cpu = counts(spec)
        card, _, tiles = spec.partition("@tiles=")
        name = "embedded SSD (default)" if card == "default" else Path(card).stem
        plan = f"tiles of {tiles} px by hand" if tiles else "detect_regions: auto (the default)"
        lines += ["", f"## {name}, {plan}", ""]
        lines += [
            f"{inferences:.1f} inferences per frame, {cpu:.2f} CPU s per frame.",
            "",
            f"- the frame's count: {summary(rows, 2)}.",
            f"- the crowd rule's count (median over its {crowd.window:g} s window): {summary(rows, 3)}.",
            "",
            "| frame | annotated | the frame's count | the rule's count |",
            "|---|---|---|---|",
            *(f"| {k} | {marked} | {seen} | {median} |" for k, marked, seen, median in rows),
        ]
    Path(__file__).with_name("footage_counts.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:] or ["default"])
