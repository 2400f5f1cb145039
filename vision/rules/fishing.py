"""Riverbank fishing: a person staying in a no-fishing zone.

Loitering is the evidence: a tracked person inside the zone for ``min_duration``
seconds, moving or not (configurable). A fishing-rod class from a tuned model raises
the confidence but is not needed: COCO has no rods, and a rod is often too thin to
see. One subject per person track; an occluded person is unknown, not gone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from vision.camera.context import FrameContext
from vision.geometry import covered
from vision.rules.base import Rule, TrackRuleConfig
from vision.scene.zones import Zone
from vision.types import Condition, Detections, Frame, Observation, member_of


class FishingConfig(TrackRuleConfig):
    """Who may not stay in this zone, and for how long."""

    min_duration: float = Field(60.0, ge=0, description="Seconds a person must stay before a ticket opens.")
    classes: list[str] = Field(default_factory=lambda: ["person"], description="Labels of people.")
    rod_classes: list[str] = Field(
        default_factory=lambda: ["fishing_rod"],
        description="Labels of rods, if the model has them: a rod at a person raises the confidence.",
    )
    stationary_only: bool = Field(
        False, description="Count only people at rest (the tracker's stationary flag), not walkers."
    )


class FishingRule(Rule):
    """One subject per person track in the zone."""

    name = "fishing"
    Config = FishingConfig

    def __init__(self, camera_id: str, zone: Zone, config: FishingConfig, names: dict[int, str]) -> None:
        super().__init__(camera_id, zone, config, names)
        self.cfg = config
        self.people = np.array(self.class_ids(config.classes), np.int32)
        self.rods = np.array([k for k, v in names.items() if v in config.rod_classes], np.int32)
        self.known: dict[int, float] = {}  # track id -> sight clock when it was last in the zone

    def state(self) -> dict[str, Any]:
        return {"known": [[tid, last] for tid, last in self.known.items()]}

    def load(self, state: dict[str, Any]) -> None:
        self.known = {int(tid): float(last) for tid, last in state["known"]}

    def observe(self, ctx: FrameContext) -> list[Observation]:
        frame, detections = ctx.frame, ctx.detections
        tracks, rows = self.tracked(ctx, self.people, self.cfg)
        if self.cfg.stationary_only:
            rows = rows[tracks.stationary[rows]]
        rods = detections[member_of(detections.class_id, self.rods)]
        out = []
        inside = set()
        for row in rows:
            tid = int(tracks.track_id[row])
            inside.add(tid)
            self.known[tid] = ctx.sight
            box = tracks.box[row]
            if tracks.last_seen[row] < frame.pts:  # lost for now: hidden behind someone, or missed
                out.append(self._obs(frame, tid, Condition.UNKNOWN, 0.0, Detections.empty()))
                continue
            confidence = float(tracks.median_score[row])
            near_rod = covered(rods.xyxy, _grown(box[None, :])) if len(rods) else None  # most frames: no rod
            details: dict[str, object] = {"dwell": round(frame.pts - float(tracks.first_seen[row]), 1)}
            if near_rod is not None and near_rod.max() > 0.5:
                rod_score = float(rods.score[near_rod > 0.5].max())
                confidence = 1 - (1 - confidence) * (1 - rod_score)
                details["rod"] = True
            boxes = detections[detections.track_id == tid]
            out.append(self._obs(frame, tid, Condition.TRUE, confidence, boxes, details))
        keep = self.kept(ctx)
        for tid, last in list(self.known.items()):
            if tid in inside:
                continue
            if ctx.sight - last > self.forget_after and f"person-{tid}" not in keep:
                del self.known[tid]
            out.append(self._obs(frame, tid, Condition.FALSE, 0.0, Detections.empty()))
        return out

    def _obs(
        self,
        frame: Frame,
        tid: int,
        condition: Condition,
        confidence: float,
        boxes: Detections,
        details: dict[str, object] | None = None,
    ) -> Observation:
        return Observation(
            self.name,
            self.camera_id,
            self.zone.name,
            f"person-{tid}",
            frame.pts,
            condition,
            confidence=confidence,
            count=int(condition is Condition.TRUE),
            boxes=boxes,
            details=details or {},
        )


def _grown(boxes: np.ndarray, factor: float = 0.5) -> np.ndarray:
    """Boxes widened by ``factor`` of their size on each side: a rod sticks out of its angler."""
    w = (boxes[:, 2] - boxes[:, 0]) * factor
    h = (boxes[:, 3] - boxes[:, 1]) * factor
    return boxes + np.stack([-w, -h, w, h], axis=1)
