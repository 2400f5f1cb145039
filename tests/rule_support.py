"""A FrameContext for rule tests: what the camera unit hands a rule, from arrays alone."""

from __future__ import annotations

from vision.camera.context import FrameContext
from vision.scene.static_objects import Blobs
from vision.scene.zones import Zone
from vision.track import TrackTable
from vision.types import Detections, Frame


def context(
    frame: Frame,
    detections: Detections,
    zones: dict[str, Zone] | None = None,
    blobs: Blobs | None = None,
    tracks: TrackTable | None = None,
) -> FrameContext:
    """One frame as a rule sees it, with the sight clock at the frame's pts (a camera never dark)."""
    return FrameContext(
        frame,
        detections,
        tracks if tracks is not None else TrackTable.empty(),
        blobs if blobs is not None else Blobs.empty(),
        zones or {},
        None,
        frame.pts,
    )
