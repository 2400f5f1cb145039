"""How tall a person is in each zone, in frame pixels: what the detection planner sizes its tiles by.

Two sources. A calibrated camera knows it from geometry: along the image's x axis the
ground is not foreshortened, so the ground plane's pixels per metre sideways at a point
are also the pixels per metre of an upright person standing there. Without calibration
each zone learns it from the people it is shown: the heights of the person boxes whose
anchor lies in the zone, kept as fractions of the frame height so a change of decode
size does not throw the estimate away. A zone nobody walks into (a lawn watched for
litter) takes the heights of the people seen anywhere in the frame.

The planner asks for every zone's estimate before every frame, so an estimate is kept
until its source sees someone new (a calibrated one for good), and the two percentiles
are taken from one sort rather than by ``np.percentile``, whose set-up costs far more than
sorting 256 heights; the values are np.percentile's own, bit for bit.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vision.geometry import anchors_of
from vision.scene.calibration import GroundPlane
from vision.scene.zones import Zone
from vision.types import Detections, member_of

PERSON_HEIGHT_M = 1.7  # an adult, standing
KEEP = 256  # person heights remembered per zone (a ring)
MIN_SAMPLES = 12  # boxes seen in a zone before its estimate is trusted
SMALL, LARGE = 20, 90  # percentiles of the heights: the far people and the near ones
STEP = 0.01  # normalized x step at which the ground scale is measured
ANYWHERE = ""  # the key of the people seen anywhere in the frame (a zone name is never empty)
QUANTILES = (SMALL / 100, LARGE / 100)  # as np.percentile turns them into quantiles


def small_and_large(values: np.ndarray) -> tuple[float, float]:
    """``np.percentile(values, [SMALL, LARGE])`` of a non-empty 1-D float32 array, computed as its default
    (linear) method does, step for step and in the same precision, from one sort."""
    ordered = np.sort(values)
    last = len(ordered) - 1
    out = []
    for q in QUANTILES:
        virtual = last * q  # numpy's virtual index
        below = math.floor(virtual)
        lower, upper = (last, last) if virtual >= last else (below, below + 1)
        low, high, t = ordered[lower], ordered[upper], virtual - below
        step = float(high - low)  # subtracted in float32, as numpy does, then interpolated in float64
        out.append(float(high) - step * (1 - t) if t >= 0.5 else float(low) + step * t)
    return out[0], out[1]


def ring_put(ring: np.ndarray, seen: int, values: np.ndarray) -> int:
    """Write ``values`` into ``ring`` after the ``seen`` written so far (the oldest overwritten once it
    is full; of more values than it holds, the last ones), as at most two slices; return the new count."""
    keep = len(ring)
    new = values[-keep:]
    start = seen % keep
    head = min(len(new), keep - start)
    ring[start : start + head] = new[:head]
    ring[: len(new) - head] = new[head:]
    return seen + len(new)


def calibrated_heights(ground: GroundPlane, polygon: np.ndarray, width: int) -> np.ndarray:
    """Person height in frame pixels at each corner of a normalized ``polygon``, from the ground scale."""
    points = np.asarray(polygon, np.float64)
    step = np.where(points[:, :1] > 0.5, -STEP, STEP) * np.array([[1.0, 0.0]])
    metres = np.linalg.norm(ground.to_world(points + step) - ground.to_world(points), axis=1)
    return PERSON_HEIGHT_M * STEP * width / np.maximum(metres, 1e-9)


class ObjectSizes:
    """Per zone: the heights of the people seen there, or the calibration's."""

    def __init__(self, zones: dict[str, Zone], people: np.ndarray, ground: GroundPlane | None) -> None:
        self.zones = zones
        self.people = people  # class ids of people
        self.ground = ground
        self._heights = {name: np.zeros(KEEP, np.float32) for name in [*zones, ANYWHERE]}
        self._seen = dict.fromkeys([*zones, ANYWHERE], 0)
        self._fractions: dict[str, tuple[int, tuple[float, float]]] = {}  # source -> seen, percentiles
        self._calibrated: dict[tuple[str, int], tuple[float, float]] = {}  # (zone, width) -> heights

    def carry(self, old: ObjectSizes) -> None:
        """Keep what ``old`` learnt for zones that are still here in the same place (a zone edit)."""
        self._heights[ANYWHERE], self._seen[ANYWHERE] = old._heights[ANYWHERE], old._seen[ANYWHERE]
        for name, zone in self.zones.items():
            before = old.zones.get(name)
            if before is not None and np.array_equal(before.polygon, zone.polygon):
                self._heights[name], self._seen[name] = old._heights[name], old._seen[name]

    def state(self) -> dict[str, Any]:
        """What was learnt, JSON-ready, for the camera's snapshot: without it a restarted camera surveys
        and runs whole-frame again until it has seen MIN_SAMPLES people, missing the small ones meanwhile."""
        polygons = {name: zone.polygon.tolist() for name, zone in self.zones.items()} | {ANYWHERE: None}
        return {
            name: {
                "polygon": polygons[name],
                "seen": seen,
                "heights": [round(float(v), 5) for v in self._heights[name][: min(seen, KEEP)]],
            }
            for name, seen in self._seen.items()
            if seen
        }

    def load(self, state: dict[str, Any]) -> None:
        """Take back :meth:`state` for the zones still in the same place (as :meth:`carry`)."""
        for name, saved in state.items():
            zone = self.zones.get(name)
            if name != ANYWHERE and (zone is None or zone.polygon.tolist() != saved["polygon"]):
                continue
            heights = np.asarray(saved["heights"], np.float32)[:KEEP]
            self._heights[name] = np.zeros(KEEP, np.float32)
            self._heights[name][: len(heights)] = heights
            self._seen[name] = max(int(saved["seen"]), len(heights))
            self._fractions.pop(name, None)

    def observe(self, detections: Detections, width: int, height: int) -> None:
        """Remember the heights of the people in each zone (the anchors of each kind taken once for
        all zones: this runs on every detected frame)."""
        if not len(detections):  # most frames of a quiet street: no selection of nothing
            return
        xyxy = detections.xyxy[member_of(detections.class_id, self.people)]  # their boxes alone
        if len(xyxy) == 0:
            return
        tall = (xyxy[:, 3] - xyxy[:, 1]) / height
        anchors = {kind: anchors_of(xyxy, kind) for kind in {zone.anchor for zone in self.zones.values()}}
        for name, zone in self.zones.items():
            self._remember(name, tall[zone.inside(anchors[zone.anchor], width, height)])
        self._remember(ANYWHERE, tall)

    def _remember(self, name: str, heights: np.ndarray) -> None:
        """Put the newest KEEP of ``heights`` in ``name``'s ring, after the ones seen so far."""
        self._seen[name] = ring_put(self._heights[name], self._seen[name], heights)

    def seen(self, names: list[str]) -> int:
        """People seen so far in these zones."""
        return sum(self._seen[name] for name in names)

    def estimate(self, name: str, width: int, height: int) -> tuple[float, float, str] | None:
        """(small, large) person height in frame pixels in zone ``name`` and where it comes from;
        None while it is not known (no calibration, and fewer than MIN_SAMPLES people seen in the zone
        and in the whole frame)."""
        if self.ground is not None:
            known = self._calibrated.get((name, width))
            if known is None:
                heights = calibrated_heights(self.ground, self.zones[name].polygon, width)
                known = self._calibrated[(name, width)] = float(heights.min()), float(heights.max())
            return *known, "calibration"
        where = "" if self._seen[name] >= MIN_SAMPLES else " in the frame"
        source = name if not where else ANYWHERE
        seen = self._seen[source]
        if seen < MIN_SAMPLES:
            return None
        cached = self._fractions.get(source)
        if cached is None or cached[0] != seen:
            cached = self._fractions[source] = seen, small_and_large(self._heights[source][: min(seen, KEEP)])
        small, large = cached[1]
        return small * height, large * height, f"{min(seen, KEEP)} people seen{where}"
