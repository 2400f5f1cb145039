"""The litter rule's static-object blobs, offered as `litter` pre-labels.

A generic model has no `litter` class, yet the litter rule already finds what was dropped:
its dual-background model sees any new object that stays. Replaying a camera's video up to a
mined frame's time through the camera's own scene (the same model, looking as often as in the
pipeline) and keeping the blobs the rule itself takes (in a litter zone, of a litter's size,
not under a person or a vehicle the model sees on that frame) gives the annotator a box to
correct instead of one to draw. The replay runs the detector on the frames the models look at
(one a second), as the pipeline shows them its detections: the people's height sets each
zone's analysis scale, and a change that formed under a person is not timed until it is
seen alone (vision/scene/static_objects.py). Only file cameras can be replayed; a live
camera's frames get none.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from vision.camera.analysis import CameraAnalysis
from vision.camera.context import FrameContext
from vision.config import CameraConfig, EventsConfig
from vision.detect.detector import Detector
from vision.ingest.clock import StreamClock
from vision.ingest.decoder import SourceError, VideoDecoder
from vision.ingest.sampler import Sampler
from vision.rules.litter import LitterRule
from vision.scene.static_objects import Blobs
from vision.track import TrackTable
from vision.tuning.errors import TuningError
from vision.types import Detections, Frame

PTS_SLACK = 1e-3  # seconds: the mined frame's pts was rounded to the millisecond in the manifest


class LitterBlobs:
    """One file camera's static blobs at the mined frames' times, and the rule's choice among them."""

    def __init__(self, camera_id: str, camera: CameraConfig, detector: Detector) -> None:
        self.camera_id, self.camera, self.detector = camera_id, camera, detector
        self.analysis = CameraAnalysis(camera_id, camera, detector.names, EventsConfig())
        self.rules = [r for r in self.analysis.rules if isinstance(r, LitterRule) and r.cfg.static_objects]

    @classmethod
    def usable(cls, camera: CameraConfig) -> bool:
        """A camera whose zones have a litter rule with static objects, read from a file."""
        rules = (z.rules.litter for z in camera.zones.values())
        return camera.url.is_file and any(r is not None and r.static_objects for r in rules)

    def at(self, times: list[float]) -> list[Blobs]:
        """The model's blobs at each stream time (ascending), replaying the video from its start."""
        scene, sampler, clock = self.analysis.scene, Sampler(self.camera.detect_fps), StreamClock(live=False)
        found: list[Blobs] = []
        try:
            with VideoDecoder(self.camera_id, self.camera.url, self.camera.decode) as decoder:
                for av_frame, raw_pts in decoder.frames():
                    if len(found) == len(times):
                        break
                    pts = clock.stamp(raw_pts, time.monotonic())
                    wanted = pts >= times[len(found)] - PTS_SLACK
                    if not (sampler.due(pts) or wanted):
                        continue
                    image = decoder.image(av_frame)
                    looks = scene.due(pts)  # the models look: they are shown the people there
                    boxes = self.detector.detect([image])[0] if looks else Detections.empty()
                    blobs = scene.update(Frame(self.camera_id, pts, image), boxes)
                    while len(found) < len(times) and pts >= times[len(found)] - PTS_SLACK:
                        found.append(blobs)
        except SourceError as exc:
            raise TuningError(str(exc)) from None
        return found + [Blobs.empty()] * (len(times) - len(found))  # times past the video's end

    def litter(self, image: np.ndarray, pts: float, blobs: Blobs, detections: Detections) -> np.ndarray:
        """xyxy [N, 4] of the blobs a litter rule of the camera takes on this frame."""
        frame = Frame(self.camera_id, pts, image)
        ctx = FrameContext(
            frame,
            detections,
            TrackTable.empty(pts),
            blobs,
            self.analysis.scene.zones,
            self.analysis.scene.ground,
            pts,
        )
        boxes = [
            rule.blob_evidence(ctx, detections.xyxy[np.isin(detections.class_id, rule.blockers)]).xyxy
            for rule in self.rules
        ]
        xyxy = np.concatenate([np.zeros((0, 4), np.float32), *boxes])
        return np.unique(xyxy, axis=0)  # two litter zones sharing a blob offer it once


def litter_blobs_by_record(
    records: list[dict[str, Any]], cameras: dict[str, CameraConfig], detector: Detector
) -> tuple[dict[int, tuple[LitterBlobs, Blobs]], list[str]]:
    """Per manifest index, the camera's replayer and its blobs at that frame; and notes on cameras skipped."""
    out: dict[int, tuple[LitterBlobs, Blobs]] = {}
    notes = []
    for camera_id in sorted({r["camera"] for r in records}):
        camera = cameras.get(camera_id)
        if camera is None or not LitterBlobs.usable(camera):
            if camera is not None and not camera.url.is_file:
                notes.append(f"camera {camera_id}: a live stream cannot be replayed: no litter pre-labels")
            continue
        mine = sorted(
            (r for r in records if r["camera"] == camera_id and r["pts"] is not None), key=lambda r: r["pts"]
        )
        if not mine:
            continue
        replayer = LitterBlobs(camera_id, camera, detector)
        for r, blobs in zip(mine, replayer.at([float(r["pts"]) for r in mine]), strict=True):
            out[r["index"]] = (replayer, blobs)
    return out, notes
