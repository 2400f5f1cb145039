"""What a detection plan is made of: the model's scale, areas of the frame covered by tiles, the plan.

Values only, so the planner (vision/detect/planner.py) that chooses them, the detector that sizes its
inputs by the model's scale and the benchmarks that lay tiles by hand share one definition.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from vision.detect.card import InputSpec
from vision.detect.regions import fit, tile_boxes

ALIGN = 32  # tile sides are multiples of this (stable plans, friendly to strided models)
GROW = 1.25  # tile growth per step when a plan is over its inference budget


@dataclass(frozen=True)
class ModelScale:
    """How much the model shrinks what it is fed."""

    width: int
    height: int
    stretch: bool
    min_object_px: float
    looks: int = 1  # tile grids of different sides over each zone of small people (the card's ``looks``)

    @classmethod
    def of(cls, spec: InputSpec, min_object_px: float, looks: int = 1) -> ModelScale:
        return cls(spec.width, spec.height, spec.resize == "stretch", min_object_px, looks)

    @property
    def side(self) -> int:
        """The side of the square tile the model takes at its native scale."""
        return self.height if self.stretch else min(self.width, self.height)

    def frame_scale(self, width: int, height: int) -> float:
        """Model pixels per frame pixel, vertically (people are measured by their height)."""
        return self.height / height if self.stretch else min(self.width / width, self.height / height)


@dataclass(frozen=True)
class DetectionPlan:
    """One camera's detection for frames of one size: crop boxes (None: whole frame) and why."""

    mode: str  # full, tiles (auto); zones, tiles (by hand)
    boxes: np.ndarray | None
    zones: dict[str, str] = field(default_factory=dict)  # zone -> what it needs and why

    @property
    def inferences(self) -> int:
        """Model inputs per frame: its cost relative to the whole frame."""
        return 1 if self.boxes is None else len(self.boxes)

    def to_record(self) -> dict[str, Any]:
        return {"mode": self.mode, "inferences_per_frame": self.inferences, "zones": dict(self.zones)}


FULL = DetectionPlan("full", None)


@dataclass(frozen=True)
class Area:
    """A box of a ``frame`` (width, height) to cover for the zones ``names`` with tiles of ``side``
    overlapping by ``overlap`` (a fraction of the side); a box smaller than a tile is one tile about it."""

    box: tuple[int, ...]
    side: int
    overlap: float
    frame: tuple[int, int]
    names: tuple[str, ...] = ()

    def grid(self) -> np.ndarray:
        """[R, 4] tiles over the box, in frame pixels."""
        x1, y1, x2, y2 = fit(*self.box, *self.frame, self.side)
        return tile_boxes(x2 - x1, y2 - y1, self.side, self.overlap) + np.array([x1, y1, x1, y1], np.int32)

    def snug(self, least: int) -> Area:
        """The same area with its tile shrunk to the box where the whole box fits in one tile (to no less
        than ``least``): still one inference, and the people in it seen larger for nothing."""
        x1, y1, x2, y2 = self.box
        side = max(least, math.ceil(max(x2 - x1, y2 - y1) / ALIGN) * ALIGN)
        return replace(self, side=side) if side < self.side else self

    def larger(self) -> Area:
        """The same area in tiles GROW times larger (at most the frame's longer side): a second look."""
        return replace(self, side=min(max(self.frame), math.ceil(self.side * GROW / ALIGN) * ALIGN))

    def join(self, other: Area) -> Area:
        """One area over both, with the smaller tile side (both zones' people seen at least as large as
        each needs) and the wider overlap in pixels."""
        a, b = self.box, other.box
        box = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
        side = min(self.side, other.side)
        overlap = min(0.5, max(self.overlap * self.side, other.overlap * other.side) / side)
        return Area(box, side, overlap, self.frame, self.names + other.names)


def joined(areas: list[Area]) -> list[Area]:
    """Areas joined where one grid over both costs no more tiles than a grid each: zones side by side
    (a crossing, the lawn beside it, a signpost on it) share their tiles instead of each laying its own
    grid over the same people, even where their people's sizes ask for slightly different tiles."""
    areas = list(areas)
    for i, j in itertools.combinations(range(len(areas)), 2):
        a, b = areas[i], areas[j]
        if len((both := a.join(b)).grid()) <= len(a.grid()) + len(b.grid()):
            return joined([x for k, x in enumerate(areas) if k not in (i, j)] + [both])
    return areas
