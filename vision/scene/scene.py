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
from vision.types import Detections, Frame


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
        if self.static is None and any(
            z.rules.litter and z.rules.litter.static_objects for z in camera.zones.values()
        ):
            self.static = StaticObjects(camera.static_objects, self.masks)

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
        people = detections[np.isin(detections.class_id, self.people)]
        self.heatmap.add(people.anchors(), frame.width, frame.height, frame.pts)
        self.last_frame = frame
        return Blobs.empty() if self.static is None else self.static.update(frame.image, frame.pts)
