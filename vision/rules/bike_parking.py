"""Misparked bicycles: a bicycle or motorcycle at rest where it blocks the way.

Parked means the tracker's stationary flag (its box keeps overlapping its resting
box, as Frigate judges stationary objects). The zone is a no-parking area, or, with
``allowed_zones``, any place in it outside the racks. Subjects are kept by place,
so a bicycle the detector misses for a while keeps its one ticket, and by track while
its track lasts, so a frame where someone in front of it cuts its box in half does not
make it a new subject (its episode seen gone and started again).

The tracker flags a vehicle parked only after its ``stationary_time``; the episode is dated
from when its track came to rest (the track table's ``stationary_since``), so a ticket opens
``min_duration`` after the vehicle stopped, not after the flag. Time the camera was dark is
never credited: the date is at most the frame the camera came back (or the rule started).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from vision.camera.context import FrameContext
from vision.geometry import covered
from vision.rules.base import CameBack, Rule, TrackRuleConfig
from vision.rules.subjects import Places
from vision.scene.zones import Zone
from vision.types import Condition, Detections, Observation


class BikeParkingConfig(TrackRuleConfig):
    """Which vehicles may not be parked in this zone."""

    min_duration: float = Field(60.0, ge=0, description="Seconds parked before a ticket opens.")
    classes: list[str] = Field(
        default_factory=lambda: ["bicycle", "motorcycle"], description="Labels of the vehicles watched."
    )
    threshold: float = Field(0.4, ge=0, le=1, description="Median score a track needs to count.")
    allowed_zones: list[str] = Field(
        default_factory=list,
        description="Zones of this camera where parking is allowed (racks): a vehicle in one of them "
        "is never misparked.",
    )
    match_iou: float = Field(
        0.3, gt=0, le=1, description="Box overlap that makes a sighting the same vehicle."
    )

    def problems(self, zone_names: set[str]) -> list[str]:
        missing = sorted(set(self.allowed_zones) - zone_names)
        if missing:
            return [f"allowed_zones names no zone of this camera: {', '.join(missing)}"]
        return []


class BikeParkingRule(Rule):
    """One subject per parked vehicle; the observation also carries the count parked in the zone."""

    name = "bike_parking"
    Config = BikeParkingConfig

    def __init__(self, camera_id: str, zone: Zone, config: BikeParkingConfig, names: dict[int, str]) -> None:
        super().__init__(camera_id, zone, config, names)
        self.cfg = config
        self.vehicles = np.array(self.class_ids(config.classes), np.int32)
        self.places = Places("vehicle", config.match_iou, self.forget_after)
        self.came_back = CameBack()

    def state(self) -> dict[str, Any]:
        return self.places.state()

    def load(self, state: dict[str, Any]) -> None:
        self.places.load(state)

    def observe(self, ctx: FrameContext) -> list[Observation]:
        frame, detections = ctx.frame, ctx.detections
        back = self.came_back.see(ctx)  # a track kept over a short dark spell (max_lost) rested unseen
        tracks, rows = self.tracked(ctx, self.vehicles, self.cfg)
        rows = rows[tracks.stationary[rows]]
        if self.cfg.allowed_zones and len(rows):
            parked = Detections.from_arrays(
                tracks.box[rows], tracks.median_score[rows], tracks.class_id[rows]
            )
            in_rack = np.zeros(len(rows), bool)
            for name in self.cfg.allowed_zones:
                in_rack |= ctx.zones[name].contains(parked, frame.width, frame.height)
            rows = rows[~in_rack]
        seen = rows[tracks.last_seen[rows] >= frame.pts]
        hidden = tracks.box[rows[tracks.last_seen[rows] < frame.pts]]
        found = self.places.assign(tracks.box[seen], ctx.sight, tracks.track_id[seen])
        self.places.forget_old(ctx.sight, self.kept(ctx))
        out = []
        for subject in self.places.subjects:
            if subject.name in found:
                row = seen[found[subject.name][0]]
                tid = int(tracks.track_id[row])
                details = {"parked_seconds": round(float(tracks.stationary_seconds[row]), 1), "track_id": tid}
                condition, confidence = Condition.TRUE, float(tracks.median_score[row])
                boxes = detections[detections.track_id == tid]
                since = max(float(tracks.stationary_since[row]), back)
            else:
                gone_from_view = len(hidden) and covered(subject.box[None, :], hidden)[0] > 0.5
                condition = Condition.UNKNOWN if gone_from_view else Condition.FALSE
                confidence, boxes, details, since = 0.0, Detections.empty(), {}, None
            out.append(
                Observation(
                    self.name,
                    self.camera_id,
                    self.zone.name,
                    subject.name,
                    frame.pts,
                    condition,
                    confidence=confidence,
                    count=len(seen),
                    boxes=boxes,
                    details={**details, "parked_in_zone": len(seen)},
                    since=since,
                )
            )
        return out
