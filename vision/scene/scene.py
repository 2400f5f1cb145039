"""One camera's scene: its zones (with ground areas), masks, people heatmap and static-object models.

Each zone with a litter rule has its own static-object model over its box, at the zone's
analysis scale: from the people's height there, which the scene learns from the people
it is shown (as the detection planner does, vision/detect/sizes.py, but from the frames
it analyses, so a replay scales alike) or takes from the calibration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vision.config import CameraConfig
from vision.detect.sizes import ObjectSizes
from vision.geometry import box_of
from vision.scene.calibration import GroundPlane
from vision.scene.heatmap import Heatmap
from vision.scene.masks import Masks
from vision.scene.static_objects import Blobs, StaticObjects
from vision.scene.zones import Zone
from vision.types import Detections, Frame, member_of

LOOK_SLACK = 1e-3  # seconds: a frame due at exactly one look later is looked at despite rounding
NO_POINTS = np.zeros((0, 2), np.float32)  # the heatmap's points of a frame with no box


@dataclass
class Scene:
    """Geometry of one camera; the per-frame work is the mask filter and the heatmap update."""

    zones: dict[str, Zone]
    masks: Masks
    heatmap: Heatmap
    people: np.ndarray  # class ids that heat the map
    ground: GroundPlane | None = None
    persons: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # whose height sizes zones
    names: dict[int, str] = field(default_factory=dict)  # the detector's labels
    blockers: dict[str, np.ndarray] = field(default_factory=dict)  # per litter zone: its exclude_classes' ids
    passed: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # boxes, classes since a look
    static: dict[str, StaticObjects] = field(default_factory=dict)  # per zone with a litter rule
    sizes: ObjectSizes | None = None  # the people's heights in those zones
    blobs: Blobs = field(default_factory=Blobs.empty)  # the models' blobs at their last look
    looked: float | None = None  # pts of the models' last look
    last_frame: Frame | None = None

    @classmethod
    def from_config(cls, camera: CameraConfig, names: dict[int, str]) -> Scene:
        ground = None
        if camera.calibration is not None:
            ground = GroundPlane(np.asarray(camera.calibration.image), np.asarray(camera.calibration.world))
        people = np.array([k for k, v in names.items() if v in camera.heatmap.classes], np.int32)
        masks = Masks(camera.masks)
        persons = np.array([k for k, v in names.items() if v == "person"], np.int32)
        scene = cls({}, masks, Heatmap(camera.heatmap.half_life), people, ground, persons, dict(names))
        scene.reconfigure(camera)
        return scene

    def reconfigure(self, camera: CameraConfig) -> None:
        """Take the camera's zones (again); the heatmap, and the static-object model and people's sizes
        of a litter zone still in the same place, are kept."""
        zones = {}
        for name, cfg in camera.zones.items():
            polygon = np.asarray(cfg.polygon, np.float64)
            area = self.ground.area_m2(polygon) if self.ground else None
            zones[name] = Zone(name, polygon, cfg.anchor, area)
        self.zones = zones
        litter = {
            name: box_of(zones[name].polygon)
            for name, z in camera.zones.items()
            if z.rules.litter and z.rules.litter.static_objects
        }
        self.blockers = {
            name: np.array(
                [k for k, v in self.names.items() if v in z.rules.litter.exclude_classes], np.int32
            )
            for name, z in camera.zones.items()
            if name in litter and z.rules.litter is not None
        }
        old = self.static
        self.static = {
            name: old[name]
            if name in old and old[name].region == region
            else StaticObjects(camera.static_objects, self.masks, region, name)  # new, or moved: afresh
            for name, region in litter.items()
        }
        sizes = ObjectSizes({name: zones[name] for name in litter}, self.persons, self.ground)
        if self.sizes is not None:
            sizes.carry(self.sizes)
        self.sizes = sizes

    def static_arrays(self) -> dict[str, np.ndarray]:
        """The static-object models' state, as ``zone:array`` (empty before their first frame)."""
        return {f"{zone}:{k}": v for zone, model in self.static.items() for k, v in model.arrays().items()}

    def load_static_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Take back :meth:`static_arrays` for the zones still here in the same place."""
        by_zone: dict[str, dict[str, np.ndarray]] = {}
        for key, value in arrays.items():
            zone, _, name = key.rpartition(":")
            by_zone.setdefault(zone, {})[name] = value
        for zone, model in self.static.items():
            if zone in by_zone:
                model.load_arrays(by_zone[zone])

    def unmasked(self, frame: Frame, detections: Detections) -> Detections:
        """Drop detections in masked areas, before they are tracked."""
        if self.masks:
            detections = detections[self.masks.outside(detections, frame.width, frame.height)]
        return detections

    def due(self, pts: float) -> bool:
        """Whether the static-object models look at a frame of this time (one look every ``look_every``)."""
        if not self.static:
            return False
        look_every = next(iter(self.static.values())).cfg.look_every
        return self.looked is None or pts - self.looked >= look_every - LOOK_SLACK

    def update(self, frame: Frame, detections: Detections, unseen: float = 0.0) -> Blobs:
        """Take in one tracked frame (heatmap; at each look the people's sizes and the static-object
        models, shown the people and vehicles of the frames since the last look); return the static
        blobs now. ``unseen``: the camera's stream time minus its sight clock (its dark seconds so
        far), which the static-object timers do not count."""
        boxes = len(detections) > 0  # most frames of a quiet street have none: no selections of nothing
        people = detections.anchors()[member_of(detections.class_id, self.people)] if boxes else NO_POINTS
        self.heatmap.add(people, frame.width, frame.height, frame.pts)  # their anchors, not a Detections
        self.last_frame = frame
        if not self.static or self.sizes is None:
            return Blobs.empty()
        self.passed.append((detections.xyxy, detections.class_id))
        if not self.due(frame.pts):
            return self.blobs  # between two looks: what they saw last
        self.looked = frame.pts
        self.sizes.observe(detections, frame.width, frame.height)
        if len(self.passed) == 1:  # a look every frame (a keyframes-only camera's): nothing to join
            xyxy, class_id = self.passed[0]
        else:
            xyxy, class_id = (np.concatenate(a) for a in zip(*self.passed, strict=True))
        self.passed = []
        parts = []
        for zone, model in self.static.items():
            estimate = self.sizes.estimate(zone, frame.width, frame.height)
            cover = xyxy[member_of(class_id, self.blockers[zone])] if len(class_id) else xyxy
            parts.append(
                model.update(frame.image, frame.pts, None if estimate is None else estimate[0], cover, unseen)
            )
        self.blobs = Blobs.concatenate(parts)
        return self.blobs
