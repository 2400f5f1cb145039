"""People counted on the crossing of vtest.avi at its annotated frames, against the truth's count.

The crowd rule counts the people whose feet are in its zone, per frame, and opens on the
median of those counts over its window. This replays vtest.avi (../shared/data/footage) at
the truth's 5 frames/s through the detector with the camera's own plan (detect_regions:
auto, learning as it goes, unless a plan is given) and the camera's real analysis (masks,
tracker, the crowd rule), and at the 20 frames of tests/footage_suite/vtest.boxes.json
compares with the people annotated in the zone: the frame's own count (the rule's
``instant_count``) and the rule's count (the window's median).

Where a frame's count is off it says why, person by person: each annotated person in the
zone is matched to the detector's best box (IoU >= 0.3, best first); an unmatched one is
*hidden* (a tenth or more of his box behind another annotated person), *at the frame's
edge* (his box touches the border: walking in or out), *boxed loosely* (an unmatched box
overlaps him, IoU 0.1-0.3: one box over two people of a group, or half of him) or
*missed*; an unmatched box in the zone is a *second box* (half or more of it inside a
matched box: a fragment or double of someone counted), a *loose box* (the other side of
"boxed loosely") or *astray* (on no one annotated).

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
from vision.detect.nms import pairwise_iou
from vision.detect.planner import Planner
from vision.evaluate.annotations import load_coco
from vision.evaluate.truth import load_truth
from vision.scene.zones import points_in_polygon
from vision.types import Frame

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "tests" / "footage_suite"


def feet(xyxy: np.ndarray) -> np.ndarray:
    return np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 3]], axis=1)


MATCH = 0.3  # IoU at which a box is the annotated person's
HIDDEN = 0.1  # share of a person's box behind another annotated person that makes him hidden
LOOSE = 0.1  # IoU of an unmatched box with an unmatched person: the detector saw him, boxed badly
SECOND = 0.5  # share of an unmatched box inside a matched one that makes it a second box of that person


def why_off(people: np.ndarray, boxes: np.ndarray, polygon: np.ndarray, width: int) -> str:
    """The annotated people in the zone that no box found, and the boxes in the zone that found no one."""
    iou = pairwise_iou(people, boxes) if len(people) and len(boxes) else np.zeros((len(people), len(boxes)))
    pairs = sorted(zip(*np.nonzero(iou >= MATCH), strict=True), key=lambda ij: -iou[ij])
    person, box = np.full(len(people), -1), np.full(len(boxes), -1)
    for i, j in pairs:
        if person[i] < 0 and box[j] < 0:
            person[i], box[j] = j, i
    notes = []
    for i in np.flatnonzero((person < 0) & in_polygon(people, polygon)):
        others = np.delete(people, i, axis=0)
        behind = pairwise_iou(people[i : i + 1], others, smaller=True).max() if len(others) else 0.0
        edge = people[i, 0] <= 2 or people[i, 2] >= width - 2
        loose = bool(np.any(iou[i, box < 0] >= LOOSE))
        reason = "boxed loosely" if loose else "missed"
        notes.append("hidden" if behind >= HIDDEN else "at the frame's edge" if edge else reason)
    kept = boxes[box >= 0]
    for j in np.flatnonzero((box < 0) & in_polygon(boxes, polygon)):
        inside = pairwise_iou(boxes[j : j + 1], kept, smaller=True).max() if len(kept) else 0.0
        loose = bool(np.any(iou[person < 0, j] >= LOOSE))
        notes.append("second box" if inside >= SECOND else "loose box" if loose else "astray")
    return ", ".join(notes)


def counts(spec: str) -> tuple[list[tuple[int, int, int, int, str]], float, float]:
    """(frame, annotated, the frame's count, the rule's median count, why the frame's count is off) per
    annotated frame; inferences per frame; CPU seconds per frame."""
    card_path, _, tiles = spec.partition("@tiles=")
    truth = load_truth(SUITE / "vtest.truth.yaml")
    card = load_card(card_path)
    detector = Detector(card, threads=2, min_score=truth.detector.min_score)
    analysis = CameraAnalysis("vtest", truth.camera, detector.names, truth.events)
    regions = RegionsConfig(mode="tiles", tile_size=int(tiles)) if tiles else truth.camera.detect_regions
    planner = Planner.for_camera(regions, analysis.scene.zones, analysis.scene.ground, card)
    marked = load_coco(SUITE / "vtest.boxes.json")
    polygon = np.asarray(truth.camera.zones["crossing"].polygon)
    person = [k for k, v in detector.names.items() if v == "person"]
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
            tracked, observations = analysis.process(Frame("vtest", index / fps, image), found)
            if index in annotated:
                crowd = next(o for o in observations if o.rule == "crowd")
                people = marked.xyxy[(marked.frame == index) & ~marked.ignore]
                zone = polygon * [width, height]
                boxes = tracked.xyxy[np.isin(tracked.class_id, person)]
                seen = int(crowd.details["instant_count"])
                why = why_off(people, boxes, zone, width)
                rows.append((index, int(np.sum(in_polygon(people, zone))), seen, crowd.count, why))
        index += 1
    return rows, inferences / frames, (time.process_time() - start) / frames


def in_polygon(xyxy: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Bool [N]: boxes whose feet (bottom centre) are in the polygon (pixels)."""
    return points_in_polygon(feet(xyxy), polygon) if len(xyxy) else np.zeros(0, bool)


def reasons(rows: list[tuple[int, int, int, int, str]]) -> str:
    """How often each reason came up over the annotated frames."""
    notes = [note for row in rows for note in row[4].split(", ") if note]
    return ", ".join(f"{notes.count(n)} {n}" for n in dict.fromkeys(sorted(notes))) or "none"


def summary(rows: list[tuple[int, int, int, int, str]], column: int) -> str:
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
        "Written by benchmarks/footage_counts.py on 2 CPU cores shared with other work (a loaded machine:",
        "the CPU seconds per analysed frame are preliminary; the counts do not depend on the load).",
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
            f"- unmatched in the zone over the {len(rows)} frames: {reasons(rows)}.",
            "",
            "| frame | annotated | the frame's count | the rule's count | unmatched in the zone |",
            "|---|---|---|---|---|",
            *(f"| {k} | {marked} | {seen} | {median} | {why} |" for k, marked, seen, median, why in rows),
        ]
    Path(__file__).with_name("footage_counts.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:] or ["default"])
