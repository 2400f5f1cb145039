"""What the API may see of a running camera: an immutable view the pipeline publishes.

The API never touches the pipeline's objects (the unit, its scene, its tracker): after
every frame, and after every configuration change, the pipeline publishes a new view
holding the camera's configuration as applied, its active zones, the newest analysed
frame and a snapshot of its heatmap (sharing a grid the camera never changes in place:
it makes a new one each frame, vision/scene/heatmap.py). A reader in another thread (or,
in a cluster, another process) gets a consistent picture without a lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vision.config import CameraConfig
from vision.scene.heatmap import Heatmap
from vision.types import Frame


@dataclass(frozen=True, slots=True)
class CameraView:
    """One camera as of its last analysed frame; never changed after it is published."""

    camera_id: str
    config: CameraConfig  # as the pipeline applies it (an edit shows here once swapped in)
    active_zones: tuple[str, ...]
    frame: Frame | None = None  # the newest analysed frame
    heatmap: Heatmap | None = None  # a snapshot, as of that frame
    detection: dict[str, Any] | None = None  # the detection plan for its frames (DetectionPlan.to_record)

    def heatmap_png(self) -> bytes | None:
        """The heatmap over the newest frame, or None before the first frame."""
        if self.frame is None or self.heatmap is None:
            return None
        return self.heatmap.png(self.frame.image)
