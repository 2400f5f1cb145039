"""Crowd heat: too many people in a zone for too long.

The count is the median over a sliding window of stream time, so one missed or
doubled detection does not flip the state; entering and leaving use two levels
(hysteresis) so a count hovering at the limit does not open and close tickets.
A frame's count is the people as the tracker sees them: a person hidden behind another
for a moment still counts (his confirmed track, at the box the tracker predicts, for
``coast`` seconds), and a fragment or second box of someone already counted, which scores
too low to start a track (``untracked_score``), does not. Two people do not stand in one box,
so a person is counted once: a box of no track lying mostly inside a counted track's box
(``second_box``) is a second box of that person, and a hidden track predicted onto another
track's box (``same_place_iou``, the SSD's own NMS overlap) is that person's second track (the
tracker gave his box to another id; a person wholly hidden behind another at nearly his box is
then not counted: the frame cannot tell the two apart). A hidden track does not count either where
the tracker has found the person again under a new id (a newer track's box on his predicted box,
``refound_iou``), or where he walked out of the frame (his predicted box at its border, ``walked_out``):
both would count someone twice, or someone gone, for ``coast``. On vtest it is right where
people pass behind others, where the frame's boxes alone (``coast: 0, untracked_score: 0, second_box:
null``) let the median go calm while six people stood there; its tickets close a right count's
lag later, within the rule's close time (docs/evaluation.md).
The levels hold as the lifecycle times them: while the zone's ticket is closing (its episode under way)
the rule stays at its exit level, so the ticket closes only after ``close_after`` at or below it; leaving
that level at the first calm median made counts between the levels calm, and a one-second dip closed
a crowd that stood on at ``exit_count`` + 1 (the distant plaza, docs/evaluation.md).
Frames further apart than ``tracked_interval`` (a camera detecting 0.5 frames/s) are counted by
their boxes alone: a person walking moves past his own box between two looks, so the tracker
confirms few people, and a box left out for scoring under ``untracked_score`` is then a person.
On a calibrated camera the levels are densities in people per m², with defaults
from Fruin's pedestrian levels of service for walkways.
"""

from __future__ import annotations

import statistics
from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field, model_validator

from vision.camera.context import FrameContext
from vision.detect.regions import EDGE
from vision.geometry import covered, pairwise_iou
from vision.rules.base import Rule, RuleConfig
from vision.scene.zones import Zone
from vision.types import Condition, Detections, Observation, member_of

if TYPE_CHECKING:  # vision.config imports the rules' registry
    from vision.config import CameraConfig, EventsConfig

# Fruin's walkway levels of service: the lowest density (people/m²) of each level.
FRUIN_LEVELS = (("A", 0.0), ("B", 0.31), ("C", 0.43), ("D", 0.72), ("E", 1.08), ("F", 2.17))


def level_of_service(density: float) -> str:
    """Fruin's letter for a density in people per m²."""
    return next(letter for letter, low in reversed(FRUIN_LEVELS) if density >= low)


class CrowdConfig(RuleConfig):
    """People count (or density, on a calibrated camera) levels of one zone."""

    classes: list[str] = Field(default_factory=lambda: ["person"], description="Labels counted as people.")
    enter_count: int = Field(
        10, ge=1, description="Uncalibrated camera: crowded at or above this many people (window median)."
    )
    exit_count: int | None = Field(
        None,
        ge=0,
        description="Uncalibrated: calm again at or below this count; default 70% of enter_count.",
    )
    enter_density: float = Field(
        1.08, gt=0, description="Calibrated camera: crowded at or above this many people/m² (Fruin level E)."
    )
    exit_density: float = Field(
        0.72, ge=0, description="Calibrated: calm again at or below this density (Fruin level D)."
    )
    window: float = Field(
        3.0, gt=0, description="Seconds of stream time over which the count's median is taken."
    )
    coast: float = Field(
        1.0,
        ge=0,
        description="Seconds a person's confirmed track still counts after it lost its box (hidden "
        "behind someone), at the box the tracker predicts; 0 counts only people with a box on the frame "
        "(with untracked_score 0 and second_box null: the frame's boxes, the count before; "
        "docs/evaluation.md).",
    )
    untracked_score: float = Field(
        0.6,
        ge=0,
        le=1,
        description="A box of no confirmed track counts only at or above this score: 0.6 (the tracker's "
        "new_track_score, the score that starts a track) counts a person's first box but not a fragment "
        "or second box of someone counted, scoring less; 0 counts every box (but second boxes: second_box).",
    )

    second_box: float | None = Field(
        0.6,
        gt=0,
        le=1,
        description="A box of no confirmed track with at least this share of its area inside the box of a "
        "counted track (its box on the frame, or the one predicted for it while hidden) is a second box of "
        "that person (a fragment, or the detector's second box on him) and does not count; null counts it "
        "(docs/evaluation.md).",
    )
    same_place_iou: float | None = Field(
        0.6,
        gt=0,
        le=1,
        description="A hidden track whose predicted box overlaps a box of another confirmed track on the "
        "frame at least this much (IoU; 0.6: the embedded SSD's own NMS, at which the detector keeps one "
        "box) is the same person, whose box the tracker gave to the other id: it does not count; null "
        "counts it.",
    )

    refound_iou: float | None = Field(
        0.01,
        gt=0,
        le=1,
        description="A hidden track whose predicted box overlaps the box of a newer track at least this "
        "much (IoU; a track started after the hidden one was lost, or a box of no track scoring "
        "untracked_score: a track starting) is that person refound under a new id: it does not count; "
        "0.01 (any overlap) tuned on vtest (benchmarks/footage_counts.md); null counts it.",
    )
    walked_out: bool = Field(
        True,
        description="A hidden track whose predicted box touches the frame's border (within 2 px) has walked "
        "out of the frame and does not count; false counts it for coast seconds.",
    )

    tracked_interval: float = Field(
        1.5,
        gt=0,
        description="Longest gap (seconds) between two frames at which the count is the tracker's "
        "(coast, untracked_score, second_box, same_place_iou, refound_iou, walked_out); after a longer "
        "gap (0.5 detections/s) people walking are past their boxes, the tracker confirms few of them, "
        "and every box counts (the frame's boxes).",
    )

    @model_validator(mode="after")
    def _levels(self) -> CrowdConfig:
        if self.exit_count is None:
            self.exit_count = int(self.enter_count * 0.7)
        if self.exit_count >= self.enter_count:
            raise ValueError(f"exit_count ({self.exit_count}) must be below enter_count ({self.enter_count})")
        if self.exit_density >= self.enter_density:
            raise ValueError(
                f"exit_density ({self.exit_density}) must be below enter_density ({self.enter_density})"
            )
        return self

    def close_time(self, camera: CameraConfig, events: EventsConfig) -> float:
        """The window's median goes calm once half the window is calm: ``window`` / 2 after the crowd
        thinned, with a count that is right, and ``coast`` later where a person out of sight still counts."""
        return super().close_time(camera, events) + self.coast + self.window / 2


class CrowdRule(Rule):
    """Observes one subject, the zone itself, with the median people count and density."""

    name = "crowd"
    Config = CrowdConfig

    def __init__(self, camera_id: str, zone: Zone, config: CrowdConfig, names: dict[int, str]) -> None:
        super().__init__(camera_id, zone, config, names)
        self.cfg = config
        self.people = np.array(self.class_ids(config.classes), np.int32)
        self.counts: deque[tuple[float, int]] = deque()
        self.crowded = False

    def state(self) -> dict[str, Any]:
        return {"crowded": self.crowded, "counts": [list(c) for c in self.counts]}

    def load(self, state: dict[str, Any]) -> None:
        self.crowded = bool(state["crowded"])
        self.counts = deque((float(t), int(c)) for t, c in state["counts"])

    def people_in_zone(self, ctx: FrameContext) -> Detections:
        """The people in the zone now: the boxes of confirmed tracks; each confirmed track that lost
        its box at most ``coast`` seconds ago (at its predicted box, its median score, its id) unless
        it is predicted onto another track's box, a newer track's, or the frame's border
        (:meth:`_not_there`); a box of no track that scores ``untracked_score`` unless it lies
        inside a counted track's box (``second_box``); after a gap over ``tracked_interval``, every
        box of a person."""
        cfg, dets = self.cfg, ctx.detections
        people = dets[member_of(dets.class_id, self.people)] if len(dets) else dets
        if not len(people) and not len(ctx.tracks.track_id):
            return people  # no box, no track to coast (a quiet street's usual frame): nobody, as below
        if self.counts and ctx.pts - self.counts[-1][0] > cfg.tracked_interval:
            return people[self.zone.contains(people, ctx.frame.width, ctx.frame.height)]
        known = people[people.track_id >= 0]
        new = people[(people.track_id < 0) & (people.score >= cfg.untracked_score)]
        coasting = self._coasting(ctx, known, new) if cfg.coast > 0 else Detections.empty()  # coast 0: none
        tracks = Detections.concatenate([known, coasting])
        if cfg.second_box is not None:
            new = new[covered(new.xyxy, tracks.xyxy) < cfg.second_box]
        boxes = Detections.concatenate([tracks, new])
        return boxes[self.zone.contains(boxes, ctx.frame.width, ctx.frame.height)]

    def _coasting(self, ctx: FrameContext, known: Detections, new: Detections) -> Detections:
        """Confirmed people tracks with no box on this frame, lost at most ``coast`` seconds ago, at the
        box the tracker predicts for them, but for those that are someone counted or out of the frame
        (:meth:`_not_there`)."""
        tracks = ctx.tracks
        hidden = np.flatnonzero(
            tracks.lost
            & (ctx.pts - tracks.last_seen <= self.cfg.coast)
            & member_of(tracks.class_id, self.people)
            & (tracks.median_score >= self.cfg.min_score)
            & ~member_of(tracks.track_id, ctx.detections.track_id)
        )
        hidden = hidden[~self._not_there(ctx, hidden, known, new)]
        return Detections.from_arrays(
            tracks.predicted[hidden],
            tracks.median_score[hidden],
            tracks.class_id[hidden],
            tracks.track_id[hidden],
        )

    def _not_there(
        self, ctx: FrameContext, hidden: np.ndarray, known: Detections, new: Detections
    ) -> np.ndarray:
        """Bool per row of ``hidden`` (lost tracks of the table): predicted onto the box of another confirmed
        track (``same_place_iou``: the tracker gave his box to another id), onto the box of a track newer
        than it (``refound_iou``: the tracker lost him and starts him again beside his old box, which then
        counts him twice for ``coast``), or onto the frame's border (``walked_out``: gone out of sight)."""
        cfg, tracks = self.cfg, ctx.tracks
        predicted = tracks.predicted[hidden]
        gone = np.zeros(len(hidden), bool)
        if not len(hidden):
            return gone
        if cfg.same_place_iou is not None and len(known):
            gone |= pairwise_iou(predicted, known.xyxy).max(axis=1) >= cfg.same_place_iou
        if cfg.refound_iou is not None and len(known) + len(new):
            # a box of no track scoring untracked_score starts a track now: newer than any lost one
            started = np.concatenate(
                [tracks.first_seen[tracks.rows(known.track_id)], np.full(len(new), ctx.pts)]
            )
            newer = started[None] > tracks.last_seen[hidden, None]
            overlap = pairwise_iou(predicted, np.concatenate([known.xyxy, new.xyxy])) >= cfg.refound_iou
            gone |= (overlap & newer).any(axis=1)
        if cfg.walked_out:
            width, height = ctx.frame.width, ctx.frame.height
            gone |= (predicted[:, :2] <= EDGE).any(axis=1) | (predicted[:, 2] >= width - EDGE)
            gone |= predicted[:, 3] >= height - EDGE
        return gone

    def observe(self, ctx: FrameContext) -> list[Observation]:
        frame = ctx.frame
        inside = self.people_in_zone(ctx)
        self.counts.append((frame.pts, len(inside)))
        while self.counts[0][0] < frame.pts - self.cfg.window:
            self.counts.popleft()
        count = int(statistics.median(c for _, c in self.counts))  # np.median's: ~50x its cost on a few ints
        details: dict[str, object] = {"instant_count": len(inside)}
        # the exit level while the zone's episode is under way (its ticket closing: see the module's doc)
        held = self.crowded or "zone" in self.kept(ctx)
        if self.zone.area_m2:
            density = count / self.zone.area_m2
            crowded = density > self.cfg.exit_density if held else density >= self.cfg.enter_density
            details |= {
                "density": round(density, 3),
                "area_m2": round(self.zone.area_m2, 1),
                "level_of_service": level_of_service(density),
            }
        else:
            crowded = count > self.cfg.exit_count if held else count >= self.cfg.enter_count
        self.crowded = crowded
        confidence = float(np.mean(inside.score)) if len(inside) else 0.0
        return [
            Observation(
                rule=self.name,
                camera_id=self.camera_id,
                zone=self.zone.name,
                subject="zone",
                pts=frame.pts,
                condition=Condition.TRUE if self.crowded else Condition.FALSE,
                confidence=confidence,
                count=count,
                boxes=inside,
                details=details,
            )
        ]
