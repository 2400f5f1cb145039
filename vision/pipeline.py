"""Wire the stages for N cameras: source -> sampler -> detector -> tracker -> rules -> lifecycle -> store.

Each transition's snapshots are written to disk, then the transition is committed
(with its outbox message when dispatch is on); the dispatcher sends it from there.

Frames from all cameras are gathered into one batch per round and detected in one
call; everything after the detector (tracking, rules) is per camera. One camera's
failure (a corrupt file, a bad frame) is logged and ends that camera only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from vision.analysis import CameraAnalysis
from vision.config import Config
from vision.detect.detector import Detector
from vision.detect.regions import RegionPlan
from vision.events.lifecycle import Lifecycle, Timers
from vision.events.recorder import TransitionRecorder
from vision.ingest.file_source import FileSource, SourceError
from vision.ingest.sampler import Sampler
from vision.store import Store
from vision.types import Detections, Frame, Transition

log = logging.getLogger(__name__)


@dataclass
class CameraStats:
    """What one camera did during a run."""

    frames_decoded: int = 0
    frames_detected: int = 0
    detections: int = 0
    error: str | None = None


@dataclass
class RunSummary:
    """Totals of one run, printed at the end of ``street-vision run``."""

    cameras: dict[str, CameraStats] = field(default_factory=dict)
    transitions: dict[str, int] = field(default_factory=dict)
    open_events: int = 0
    wall_seconds: float = 0.0

    def to_record(self) -> dict[str, Any]:
        frames = sum(c.frames_detected for c in self.cameras.values())
        return {
            "cameras": {k: vars(v) for k, v in self.cameras.items()},
            "transitions": self.transitions,
            "open_events": self.open_events,
            "frames_detected": frames,
            "wall_seconds": round(self.wall_seconds, 2),
            "detect_fps": round(frames / self.wall_seconds, 1) if self.wall_seconds else None,
        }


class CameraWorker:
    """Per-camera state: its source, sampler and analysis."""

    def __init__(
        self, camera_id: str, source: FileSource, fps: float, analysis: CameraAnalysis, regions: RegionPlan
    ) -> None:
        self.camera_id = camera_id
        self.frames: Iterator[Frame] = source.frames()
        self.sampler = Sampler(fps)
        self.analysis = analysis
        self.regions = regions
        self.stats = CameraStats()

    def next_frame(self) -> Frame | None:
        """The next frame due for detection, or None when the source has ended or failed."""
        try:
            for frame in self.frames:
                self.stats.frames_decoded += 1
                if self.sampler.due(frame.pts):
                    return frame
        except SourceError as exc:
            self.stats.error = str(exc)
            log.error("%s", exc)
        return None


class Pipeline:
    """All enabled cameras of one config, run until their sources end."""

    def __init__(
        self,
        config: Config,
        detector: Detector,
        store: Store,
        on_transition: Callable[[Transition, dict[str, Any]], None] | None = None,
        on_detections: Callable[[Frame, Detections], None] | None = None,
    ) -> None:
        self.config = config
        self.detector = detector
        self.store = store
        self.on_transition = on_transition
        self.on_detections = on_detections
        self.workers: dict[str, CameraWorker] = {}
        timers: dict[tuple[str, str, str], Timers] = {}
        for camera_id, cam in config.cameras.items():
            if not cam.enabled:
                continue
            analysis = CameraAnalysis(camera_id, cam, detector.names, config.events)
            timers |= analysis.timers
            source = FileSource(camera_id, cam.url, cam.decode)
            regions = RegionPlan(cam.detect_regions, [z.polygon for z in analysis.scene.zones.values()])
            self.workers[camera_id] = CameraWorker(camera_id, source, cam.detect_fps, analysis, regions)
        self.lifecycle = Lifecycle(timers)
        self.recorder = TransitionRecorder.for_config(config, store, detector.names)
        self.summary = RunSummary(cameras={k: w.stats for k, w in self.workers.items()})

    def run(self) -> RunSummary:
        """Process every camera to the end of its video."""
        start = time.perf_counter()
        active = dict(self.workers)
        while active:
            batch: list[Frame] = []
            for camera_id, worker in list(active.items()):
                frame = worker.next_frame()
                if frame is None:
                    del active[camera_id]
                else:
                    batch.append(frame)
            if batch:
                for frame, detections in zip(batch, self._detect(batch), strict=True):
                    if detections is not None:
                        self._process(frame, detections)
        self.summary.open_events = len(self.lifecycle.open_events())
        self.summary.wall_seconds = time.perf_counter() - start
        return self.summary

    def _detect(self, batch: list[Frame]) -> list[Detections | None]:
        """One call for the batch; if a frame is bad, retry one by one so only that camera loses it."""
        regions = [self.workers[f.camera_id].regions.boxes(f.width, f.height) for f in batch]
        try:
            return list(self.detector.detect([f.image for f in batch], regions))
        except ValueError:
            results: list[Detections | None] = []
            for frame, region in zip(batch, regions, strict=True):
                try:
                    results.append(self.detector.detect([frame.image], [region])[0])
                except ValueError as exc:
                    log.error("camera %s: frame at %.3fs skipped: %s", frame.camera_id, frame.pts, exc)
                    results.append(None)
            return results

    def _process(self, frame: Frame, detections: Detections) -> None:
        worker = self.workers[frame.camera_id]
        detections, observations = worker.analysis.process(frame, detections)
        worker.stats.frames_detected += 1
        worker.stats.detections += len(detections)
        self.store.add_detections(frame.camera_id, frame.pts, detections, self.detector.names)
        if self.on_detections:
            self.on_detections(frame, detections)
        for obs in observations:
            for transition in self.lifecycle.update(obs):
                self._emit(transition, frame)

    def _emit(self, transition: Transition, frame: Frame) -> None:
        payload = self.recorder.record(transition, frame)
        self.summary.transitions[transition.kind] = self.summary.transitions.get(transition.kind, 0) + 1
        if self.on_transition:
            self.on_transition(transition, payload)
