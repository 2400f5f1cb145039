"""How the embedded SSD counts the distant plaza's crowd with one look per person, and with two.

The plaza sample scaled to a third inside a 1920x1080 frame (as tests/test_footage_suite.py makes
it, the frames its camera analyses, 5 a second), driven frame by frame through the detection planner
and the SSD as the pipeline does, with the plaza's three zones. Per plan: its inferences a frame,
the mean number of person boxes in the crossing over the crowd's 11.4-36.7 s (the truth recounted by
eye, sample_videos/plaza.truth.yaml: 7-8 people until 28 s, 6 from 29 s), and when their median over
2 s (the crowd rule's count with ``coast: 0, untracked_score: 0``, its default before it counted
tracks) first reaches 7 (before 11.4 s is before the crowd formed), its lowest from 15 s to 36.7 s
and the longest it stays at 5 or less there (3 s closes the ticket while the crowd stands). Two
fixed grids of the same six 160 px tiles, 33 px apart vertically, show how much the count owes to
the tiles' offsets alone; the original 768x576 clip, whole frame, is the reference (the distant
clip's plans count their inferences from 10 s on, once the zones are sized). The last planner row
lays the second look's grid 1.25x smaller instead of larger (people seen above the card's
``min_object_px`` in both looks); the row "without the min_object_px rule" merges the crops' boxes
as before that rule (a person drawn below the card's ``min_object_px`` in its tile kept even where
another tile shows them at that size or more). The rows at the tile merge's default
(``regions.MERGE_OVERLAP``) count the same run twice: the frame's boxes, and "counting tracks", the
crowd rule's own count with its defaults (a camera's tracker and rules on the plaza truth's zones: the
boxes of confirmed tracks, a box of no track scoring ``untracked_score``, a track hidden for at most
``coast``), the count a camera's crowd ticket follows now. Counts, not speed: the numbers do not
depend on the machine's load.

Usage: ``python benchmarks/tile_looks.py`` (writes tile_looks.md and tile_looks.json beside it).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from vision.camera.analysis import CameraAnalysis
from vision.config import RegionsConfig
from vision.detect import regions
from vision.detect.card import load_card
from vision.detect.detector import Detector
from vision.detect.planner import Planner
from vision.detect.plans import ALIGN, GROW, Area, ModelScale
from vision.detect.regions import tile_boxes
from vision.detect.sizes import ObjectSizes
from vision.evaluate.truth import load_truth
from vision.scene.zones import Zone
from vision.types import Frame

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_videos" / "plaza.mp4"
THIRD = (256, 192, 832, 444)  # the plaza's 768x576 at a third, at (x, y) in 1920x1080
RATE = 5.0  # frames a second the camera analyses
CLASSES = ["person", "bicycle", "motorcycle", "bottle", "cup"]  # the plaza truth's detector classes
CROWD = (11.4, 36.7)  # the crowd incident of sample_videos/plaza.truth.yaml, seconds


def distant_clip(folder: Path) -> Path:
    w, h, x, y = THIRD
    keep = rf"select=not(mod(n\,2)),scale={w}:{h}:flags=area,pad=1920:1080:{x}:{y}:color=0x646464"
    out = folder / "distant.mp4"
    command = ["ffmpeg", "-v", "error", "-y", "-i", str(SAMPLE), "-vf", keep, "-fps_mode", "passthrough"]
    subprocess.run([*command, "-crf", "18", str(out)], check=True, timeout=300)
    return out


def zones(distant: bool) -> dict[str, Zone]:
    w, h, x, y = THIRD
    out = {}
    for name, zone in yaml.safe_load((SAMPLE.parent / "plaza.truth.yaml").read_text())["camera"][
        "zones"
    ].items():
        polygon = np.array(zone["polygon"], np.float64)
        out[name] = Zone(name, (polygon * [w, h] + [x, y]) / [1920, 1080] if distant else polygon)
    return out


def count(
    video: Path,
    step: int,
    crossing: Zone,
    detector: Detector,
    plan: Planner | np.ndarray | None,
    analysis: CameraAnalysis | None = None,
) -> tuple[list[int], list[int], float]:
    """People in the crossing per analysed frame (every ``step``-th): the frame's boxes, and with
    ``analysis`` the crowd rule's own count of the frame (its defaults: tracks); and the mean inferences
    a frame from 10 s on. ``plan``: a planner (asked and taught frame by frame), fixed crops or the whole
    frame."""
    capture, counts, tracked, cost, index = cv2.VideoCapture(str(video)), [], [], [], 0
    while (got := capture.read())[0]:
        index += 1
        if (index - 1) % step:
            continue
        image = got[1]
        height, width = image.shape[:2]
        boxes = plan.boxes(width, height) if isinstance(plan, Planner) else plan
        found = detector.detect([image], [boxes])[0]
        if isinstance(plan, Planner):
            plan.observe(found, width, height)
        people = found[found.class_id == 0]
        counts.append(int(crossing.contains(people, width, height).sum()))
        cost.append(1 if boxes is None else len(boxes))
        if analysis is not None:
            frame = Frame("plaza", (len(cost) - 1) / RATE, image)
            crowd = next(o for o in analysis.process(frame, found)[1] if o.rule == "crowd")
            tracked.append(int(crowd.details["instant_count"]))
    return counts, tracked, float(np.mean(cost[int(10 * RATE) :]))


def summary(counts: list[int]) -> dict[str, float | None]:
    window = int(2 * RATE)
    median = [float(np.median(counts[max(0, i - window) : i + 1])) for i in range(len(counts))]
    first = next((i / RATE for i, m in enumerate(median) if m >= 7), None)
    crowd = counts[round(CROWD[0] * RATE) : round(CROWD[1] * RATE)]
    late = median[int(15 * RATE) : round(CROWD[1] * RATE)]
    calm = max((len(list(run)) for low, run in itertools.groupby(m <= 5 for m in late) if low), default=0)
    return {
        "mean_count_crowd": round(float(np.mean(crowd)), 2),
        "median_first_7_at_s": first,
        "low": min(late),
        "longest_calm_s": calm / RATE,
    }


def tracking(far: dict[str, Zone], detector: Detector) -> CameraAnalysis:
    """The plaza truth's camera with its zones where the distant clip has them: its tracker and rules, so
    that the crowd rule counts the crossing as a camera does now (tracks: ``coast``, ``untracked_score``)."""
    truth = load_truth(SAMPLE.parent / "plaza.truth.yaml")
    moved = {
        name: zone.model_copy(update={"polygon": far[name].polygon.tolist()})
        for name, zone in truth.camera.zones.items()
    }
    camera = truth.camera.model_copy(update={"zones": moved})
    return CameraAnalysis("plaza", camera, detector.names, truth.events)


def finer(area: Area) -> Area:
    """The second look the other way: tiles GROW times smaller than the first's, people seen larger."""
    return replace(area, side=max(ALIGN, math.floor(area.side / GROW / ALIGN) * ALIGN))


def main() -> None:
    load = [round(x, 2) for x in os.getloadavg()]
    card = load_card("default")
    detector = Detector(card, threads=2, min_score=0.4, classes=CLASSES)
    scale = ModelScale.of(card.input, card.min_object_px)
    people = np.array([0], np.int32)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        distant, near = distant_clip(Path(tmp)), zones(False)
        counts, _, cost = count(SAMPLE, 2, near["crossing"], detector, None)
        rows.append({"plan": "original 768x576, whole frame", "inferences": cost} | summary(counts))
        far = zones(True)
        larger, default = Area.larger, regions.MERGE_OVERLAP
        plans = (
            (1, 0.5, larger, True),
            (2, 0.6, larger, True),
            (2, 0.5, larger, False),
            (2, 0.5, larger, True),
            (2, default, larger, True),
        )
        for looks, merge, second, rule in (*plans, (2, 0.5, finer, True)):
            regions.MERGE_OVERLAP = merge
            Area.larger = second  # type: ignore[method-assign]
            detector.people = people if rule else None  # type: ignore[assignment]
            model = ModelScale(scale.width, scale.height, scale.stretch, scale.min_object_px, looks)
            planner = Planner(RegionsConfig(), far, model, ObjectSizes(far, people, None))
            analysis = tracking(far, detector) if merge == default else None
            counts, tracked, cost = count(distant, 1, far["crossing"], detector, planner, analysis)
            name = f"distant, planner, {looks} look(s), merge at {merge}"
            name += ", second grid 1.25x smaller" if second is finer else ""
            name += "" if rule else ", without the min_object_px rule"
            rows.append({"plan": name, "inferences": cost} | summary(counts))
            if tracked:
                rows.append({"plan": f"{name}, counting tracks", "inferences": cost} | summary(tracked))
        regions.MERGE_OVERLAP, Area.larger, detector.people = default, larger, people  # type: ignore[method-assign]
        for top in (429, 462):  # six 160 px tiles over the plaza's zones, and the whole frame
            grid = tile_boxes(286, 663 - top, 160, 0.25) + np.array([817, top, 817, top], np.int32)
            boxes = np.concatenate([np.array([[0, 0, 1920, 1080]], np.int32), grid])
            counts, _, cost = count(distant, 1, far["crossing"], detector, boxes)
            rows.append({"plan": f"distant, fixed grid of 160 px tiles from y {top}", "inferences": cost})
            rows[-1] |= summary(counts)
    after = [round(x, 2) for x in os.getloadavg()]
    record = {"load": f"load average {load} before, {after} after", "rows": rows}
    here = Path(__file__).with_suffix("")
    here.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    here.with_suffix(".md").write_text(markdown(record))


def markdown(record: dict[str, Any]) -> str:
    lines = [
        "# The SSD's crowd count on the distant plaza, by tile plan",
        "",
        f"Written by benchmarks/tile_looks.py ({sys.platform}); counts, not timings, so the machine's load",
        f"does not change them ({record['load']}).",
        "",
        f"The crowd is {CROWD[0]}-{CROWD[1]} s",
        "(sample_videos/plaza.truth.yaml, recounted by eye: 6 people on the crossing from 4 s, 7-8 from",
        "11.4 s to 28 s, 6 from 29 s to 36.6 s, 5 from 36.7 s); the crowd rule opens at a 2 s median of 7",
        "and closes after 3 s at 5 or fewer. The count: person boxes in the crossing (the frame's boxes,",
        'the crowd rule\'s count before it counted tracks); in the rows "counting tracks", the crowd',
        "rule's own count with its defaults (confirmed tracks, a box of no track scoring untracked_score,",
        "a track hidden for at most coast), on the same run as the row above it (the tile merge's",
        f"default, {regions.MERGE_OVERLAP}).",
        "",
        f"| plan | inferences a frame | mean count, {CROWD[0]}-{CROWD[1]} s | median first 7 at (s) "
        f"| lowest median 15-{CROWD[1]} s | longest at 5 or fewer there (s) |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['plan']} | {r['inferences']:.1f} | {r['mean_count_crowd']:.2f} | "
            f"{r['median_first_7_at_s']} | {r['low']:g} | {r['longest_calm_s']:g} |"
            for r in record["rows"]
        ),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
