"""One camera's scene: its zones (with ground areas), masks and people heatmap, built from config."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vision.config import CameraConfig
from vision.scene.calibration import GroundPlane
from vision.scene.heatmap import Heatmap
from vision.scene.masks import Masks
from vision.scene.static_objects import Blobs, StaticObjects
from vision.scene.zones import Zone
from vision.types import Detections, Frame, member_of

REGION_MARGIN = 0.03  # share of the frame around the litter zones that the static-object model also sees
LOOK_SLACK = 1e-3  # seconds: a frame due at exactly one look later is looked at despite rounding


@dataclass
class Scene:
    """Geometry of one camera; the per-frame work is the mask filter and the heatmap update."""

    zones: dict[str, Zone]
    masks: Masks
    heatmap: Heatmap
    people: np.ndarray  # class ids that heat the map
    ground: GroundPlane | None = None
    static: StaticObjects | None = None
    last_frame: Frame | None = None

    @classmethod
    def from_config(cls, camera: CameraConfig, names: dict[int, str]) -> Scene:
        ground = None
        if camera.calibration is not None:
            ground = GroundPlane(np.asarray(camera.calibration.image), np.asarray(camera.calibration.world))
        people = np.array([k for k, v in names.items() if v in camera.heatmap.classes], np.int32)
        masks = Masks(camera.masks)
        scene = cls({}, masks, Heatmap(camera.heatmap.half_life), people, ground)
        scene.reconfigure(camera)
        return scene

    def reconfigure(self, camera: CameraConfig) -> None:
        """Take the camera's zones (again); the heatmap and a running background model are kept."""
        zones = {}
        for name, cfg in camera.zones.items():
            polygon = np.asarray(cfg.polygon, np.float64)
            area = self.ground.area_m2(polygon) if self.ground else None
            zones[name] = Zone(name, polygon, cfg.anchor, area)
        self.zones = zones
        litter = [
            np.asarray(z.polygon, np.float64)
            for z in camera.zones.values()
            if z.rules.litter and z.rules.litter.static_objects
        ]
        region = litter_region(litter)
        if self.static is not None and self.static.region != region:
            self.static = None  # the litter zones moved: a model of the new region starts afresh
        if self.static is None and litter:
            self.static = StaticObjects(camera.static_objects, self.masks, region)

    def static_arrays(self) -> dict[str, np.ndarray]:
        """The static-object model's state (empty without one, or before its first frame)."""
        return {} if self.static is None else self.static.arrays()

    def load_static_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        if self.static is not None and arrays:
            self.static.load_arrays(arrays)

    def unmasked(self, frame: Frame, detections: Detections) -> Detections:
        """Drop detections in masked areas, before they are tracked."""
        if self.masks:
            detections = detections[self.masks.outside(detections, frame.width, frame.height)]
        return detections

    def update(self, frame: Frame, detections: Detections) -> Blobs:
        """Take in one tracked frame (heatmap, static-object model); return the static blobs now."""
        people = detections[member_of(detections.class_id, self.people)]
        self.heatmap.add(people.anchors(), frame.width, frame.height, frame.pts)
        self.last_frame = frame
        static = self.static
        if static is None:
            return Blobs.empty()
        if static.fast is None or frame.pts - static.last_pts >= static.cfg.look_every - LOOK_SLACK:
            return static.update(frame.image, frame.pts)
        return static.blobs  # between two looks: what it saw last


def litter_region(polygons: list[np.ndarray]) -> tuple[float, float, float, float] | None:
    """The box around the litter zones (with a margin for the morphology at its edges), as fractions of
    the frame; None when it is most of the frame anyway (or there is no zone)."""
    if not polygons:
        return None
    points = np.concatenate(polygons)
    x0, y0 = np.clip(points.min(axis=0) - REGION_MARGIN, 0.0, 1.0)
    x1, y1 = np.clip(points.max(axis=0) + REGION_MARGIN, 0.0, 1.0)
    if (x1 - x0) * (y1 - y0) > 0.9:
        return None
    return round(float(x0), 4), round(float(y0), 4), round(float(x1), 4), round(float(y1), 4)
