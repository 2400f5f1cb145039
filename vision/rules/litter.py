"""Litter: a new object that stays on the ground in a zone.

Two kinds of evidence, either enough: a static blob of the camera's dual-background
model (any object, named or not) and a detection of a class configured as litter
(COCO stand-ins bottle and cup, or the class of a model tuned for litter). A blob
under a person or a vehicle is that person or vehicle standing still, not litter;
an object hidden behind one is occluded, so its condition is unknown, never false.
Subjects keep their identity by position, so a flickering blob keeps one ticket. A blob's
size limits are in analysis pixels of its zone's static-object model, which analyses the
zone at a scale set by the people's height there (vision/scene/static_objects.py), so they
mean the same share of an expected object for a distant camera and a near one.

A subject is a place, not an item: evidence boxes nearer each other than ``place_margin``
of their size are one heap, so a second bag dropped beside the first grows the same
ticket (its count is the items seen there) instead of opening another. A blob's timer
says how long it has lain there, and the ticket's dwell counts from then: it opens
``min_duration`` after the object landed, not after the model first called it static. The
model's timers count only time in view (a dark spell's or a restart's gap is not credited,
vision/scene/static_objects.py), so a ticket opens after ``min_duration`` of watched time:
a bag seen for 5 s before an outage is ticketed ``min_duration - 5`` seconds after the
camera comes back, neither at once nor a whole ``min_duration`` later.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from vision.camera.context import FrameContext
from vision.geometry import anchors_of, covered
from vision.rules.base import Rule, RuleConfig
from vision.rules.subjects import Places, Subject, places
from vision.scene.static_objects import Blobs
from vision.scene.zones import Zone
from vision.types import NO_CLASS, Condition, Detections, Frame, Observation, member_of

if TYPE_CHECKING:  # vision.config imports the rules' registry
    from vision.config import CameraConfig, EventsConfig

BLOB_CONFIDENCE = 0.5  # a blob alone: something is there, but we cannot say what


class LitterConfig(RuleConfig):
    """What counts as litter in this zone."""

    min_duration: float = Field(30.0, ge=0, description="Seconds an object must stay before a ticket opens.")
    classes: list[str] = Field(
        default_factory=lambda: ["bottle", "cup"],
        description="Detector labels that are litter (COCO stand-ins, or `litter` of a tuned model).",
    )
    static_objects: bool = Field(
        True, description="Also use class-agnostic static blobs of the camera's dual-background model."
    )
    min_blob_area: float = Field(
        36.0,
        ge=1,
        description="Smallest blob, in analysis pixels of the zone's static-object model (where an expected "
        "litter item spans `item_px`, 10 by default: 36 is 6x6, a bit over a third of an item's area), so "
        "the same share of an expected object at any distance and frame size; smaller blobs are mostly "
        "what passing cars leave at the frame's edge.",
    )
    max_blob_area: float = Field(
        6400.0,
        ge=1,
        description="Largest blob, in analysis pixels (6400 is 80x80: two people's heights square).",
    )
    min_area: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Also: smallest blob as a share of the frame's area (the limit before zones had their "
        "own scale; older configs keep it). `min_blob_area` says the same for any distance.",
    )
    max_area: float | None = Field(
        None, gt=0, le=1, description="Also: largest blob as a share of the frame's area (older configs)."
    )
    min_area_m2: float | None = Field(None, ge=0, description="Calibrated camera: smallest blob in m².")
    max_area_m2: float | None = Field(None, gt=0, description="Calibrated camera: largest blob in m².")
    exclude_classes: list[str] = Field(
        default_factory=lambda: ["person", "bicycle", "car", "motorcycle", "bus", "truck", "dog"],
        description="A blob mostly under a box of these labels is that object, not litter.",
    )
    exclude_overlap: float = Field(
        0.3, gt=0, le=1, description="Fraction of a blob's box covered by such a box that excludes it."
    )
    match_iou: float = Field(0.2, gt=0, le=1, description="Box overlap that makes evidence the same subject.")
    place_margin: float = Field(
        1.0,
        ge=0,
        le=10,
        description="Items closer than this many of their own sizes are one place: one ticket, its count "
        "the items there (several bags dropped one after another by one bin).",
    )

    def close_time(self, camera: CameraConfig, events: EventsConfig) -> float:
        """A blob's absence is seen at the static-object model's next look, ``look_every`` later."""
        return super().close_time(camera, events) + camera.static_objects.look_every


class LitterRule(Rule):
    """One subject per object lying in the zone."""

    name = "litter"
    Config = LitterConfig

    def __init__(self, camera_id: str, zone: Zone, config: LitterConfig, names: dict[int, str]) -> None:
        super().__init__(camera_id, zone, config, names)
        self.cfg = config
        self.litter = np.array(self.class_ids(config.classes), np.int32)
        self.blockers = np.array([k for k, v in names.items() if v in config.exclude_classes], np.int32)
        self.places = Places("object", config.match_iou, self.forget_after)

    def state(self) -> dict[str, Any]:
        return self.places.state()

    def load(self, state: dict[str, Any]) -> None:
        self.places.load(state)

    def observe(self, ctx: FrameContext) -> list[Observation]:
        frame = ctx.frame
        evidence, blockers = self._evidence(ctx)
        if not len(evidence) and not self.places.subjects:  # nothing lying, nothing remembered: no subject
            return []
        heaps = places(evidence.xyxy, self.cfg.place_margin)
        union = np.array(
            [[*evidence.xyxy[h, :2].min(axis=0), *evidence.xyxy[h, 2:].max(axis=0)] for h in heaps]
        )
        found = self.places.assign(union.reshape(-1, 4), ctx.sight)
        self.places.forget_old(ctx.sight, self.kept(ctx))
        out = []
        for subject in self.places.subjects:
            heap_rows = found.get(subject.name)
            if heap_rows is not None:
                boxes = evidence[np.concatenate([heaps[i] for i in heap_rows])]
                blob = boxes.class_id == NO_CLASS
                score = float(boxes.score[~blob].max(initial=0.0))
                confidence = 1 - (1 - score) * (1 - BLOB_CONFIDENCE) if blob.any() else score
                kind = ("blob+class" if score else "blob") if blob.any() else "class"
                items = max(int(blob.sum()), int((~blob).sum()))
                age = boxes.data["static_seconds"][blob].max() if blob.any() else 0.0
                observation = self._obs(frame, subject, Condition.TRUE, confidence, boxes, {"evidence": kind})
                since = frame.pts - float(age) if age > 0 else None  # age: seconds in view
                out.append(replace(observation, count=items, since=since))
                continue
            hidden = covered(subject.box[None, :], blockers)[0] >= self.cfg.exclude_overlap
            out.append(self._obs(frame, subject, Condition.UNKNOWN if hidden else Condition.FALSE, 0.0))
        return out

    def _evidence(self, ctx: FrameContext) -> tuple[Detections, np.ndarray]:
        """Litter-class detections and static blobs in the zone, minus what people and vehicles cover.
        Most frames have no litter-class box: their empty selection is not tested again, and the blobs'
        boxes are then the evidence as they are (a concatenation would copy them: a Detections' dtypes
        are fixed, and the empty selection brings no data keys)."""
        detections, w, h = ctx.detections, ctx.frame.width, ctx.frame.height
        if not len(detections):  # no box (a quiet street's usual frame): nothing to select from
            blockers, items = detections.xyxy, detections
        else:
            blockers = detections.xyxy[member_of(detections.class_id, self.blockers)]
            items = detections[member_of(detections.class_id, self.litter)]
        if len(items):
            items = items[self.zone.contains(items, w, h)]
            items = items[covered(items.xyxy, blockers) < self.cfg.exclude_overlap]
        if not self.cfg.static_objects or not len(ctx.blobs):
            return items, blockers
        blobs = self.blob_evidence(ctx, blockers)
        if not len(items) and not items.data:
            return blobs, blockers
        return Detections.concatenate([items, blobs]), blockers

    def blob_evidence(self, ctx: FrameContext, blockers: np.ndarray) -> Detections:
        """The static blobs this rule takes as litter: in the zone, of a litter's size, not under a
        ``blockers`` box (people, vehicles). Also the tuning workflow's `litter` pre-labels. Chosen
        on the blobs' arrays; only the chosen become boxes."""
        blobs, w, h = ctx.blobs, ctx.frame.width, ctx.frame.height
        xyxy = np.asarray(blobs.xyxy, np.float32)  # as a box has it: its anchor is tested against the zone
        keep = blobs.zone == self.zone.name  # the zone's own model (zones that overlap each have one)
        keep &= self._size_ok(ctx, blobs)
        keep &= covered(blobs.xyxy, blockers) < self.cfg.exclude_overlap
        rows = np.flatnonzero(keep)
        if len(rows):  # the anchors' ray casting only for the blobs that pass the rest (most frames: none)
            keep[rows] = self.zone.inside(anchors_of(xyxy[rows], self.zone.anchor), w, h)
        n = int(np.count_nonzero(keep))
        return Detections(  # in a Detections' dtypes already: not through from_arrays' conversions
            xyxy[keep],
            np.full(n, BLOB_CONFIDENCE, np.float32),
            np.full(n, NO_CLASS, np.int32),
            np.full(n, -1, np.int64),
            {
                "source": np.full(n, "static_object"),
                "area_px": blobs.area_px[keep],
                "static_seconds": blobs.static_seconds[keep],
            },
        )

    def _size_ok(self, ctx: FrameContext, blobs: Blobs) -> np.ndarray:
        xyxy, area = blobs.xyxy, blobs.work_area
        ok = (area >= self.cfg.min_blob_area) & (area <= self.cfg.max_blob_area)
        share = blobs.area_px / float(ctx.frame.width * ctx.frame.height)
        if self.cfg.min_area is not None:
            ok &= share >= self.cfg.min_area
        if self.cfg.max_area is not None:
            ok &= share <= self.cfg.max_area
        ground, w, h = ctx.ground, ctx.frame.width, ctx.frame.height
        if ground is not None and (self.cfg.min_area_m2 is not None or self.cfg.max_area_m2 is not None):
            norm = xyxy / np.array([w, h, w, h], np.float64)
            corners = norm[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 4, 2)
            areas = np.array([ground.area_m2(c) for c in corners])
            ok &= areas >= (self.cfg.min_area_m2 or 0.0)
            if self.cfg.max_area_m2 is not None:
                ok &= areas <= self.cfg.max_area_m2
        return ok

    def _obs(
        self,
        frame: Frame,
        subject: Subject,
        condition: Condition,
        confidence: float,
        boxes: Detections | None = None,
        details: dict[str, object] | None = None,
    ) -> Observation:
        return Observation(
            self.name,
            self.camera_id,
            self.zone.name,
            subject.name,
            frame.pts,
            condition,
            confidence=confidence,
            count=int(condition is Condition.TRUE),
            boxes=boxes if boxes is not None else Detections.empty(),
            details=details or {},
        )
