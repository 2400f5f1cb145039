"""What a rule is handed for one frame of one camera, and all it may read.

Rules read nothing implicitly from the scene or the pipeline: one FrameContext carries
the frame, its tracked detections, the track table, the static-object blobs, the
camera's zones and ground plane, and the camera's *sight clock*. So a rule can be driven
by arrays and timestamps alone, and a camera unit can move between processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from vision.track import TrackTable
from vision.types import Detections, Frame

if TYPE_CHECKING:  # the scene imports the config, which imports the rules, which import this
    from vision.scene.calibration import GroundPlane
    from vision.scene.static_objects import Blobs
    from vision.scene.zones import Zone


@dataclass(frozen=True, slots=True)
class FrameContext:
    """One analysed frame of one camera, as every rule of that camera sees it.

    ``sight`` counts the seconds this camera has actually been watching (stream time
    between frames seen in a row, never the time it was dark), so a rule that forgets
    unseen subjects does not forget them because the camera was offline. ``keep`` names
    the subjects (zone, rule, subject) whose events are pending or open: a rule keeps
    their memory however long they go unseen.
    """

    frame: Frame
    detections: Detections  # tracked, masks applied
    tracks: TrackTable
    blobs: Blobs
    zones: dict[str, Zone]
    ground: GroundPlane | None
    sight: float
    keep: frozenset[tuple[str, str, str]] = field(default_factory=frozenset)

    @property
    def pts(self) -> float:
        return self.frame.pts

    def above(self, min_score: float) -> FrameContext:
        """The same frame with only the detections at or above ``min_score`` (a rule's own floor)."""
        if min_score <= 0 or not len(self.detections):  # none below it (no box at all: a quiet street)
            return self
        return replace(self, detections=self.detections[self.detections.score >= min_score])
