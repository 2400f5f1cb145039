"""Replay one recording through the live pipeline and keep what it reported.

The same Pipeline as ``street-vision run`` (source, sampler, detector, tracker, rules,
lifecycle, store), built afresh per video so tracker and rule state never leak between
recordings; time is the frames' timestamps. The store goes to a temporary folder: an
evaluation leaves nothing in the data folder.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import av
import numpy as np

from vision.detect.detector import Detector
from vision.evaluate.annotations import FrameBoxes
from vision.evaluate.detection import FrameDetections
from vision.evaluate.match import Ticket
from vision.evaluate.progress import Progress
from vision.evaluate.truth import GroundTruth
from vision.pipeline import Pipeline
from vision.store import Store
from vision.types import Detections, Frame, Transition


@dataclass
class Replay:
    """What the system did on one video."""

    name: str
    tickets: list[Ticket]
    video_end: float  # timestamp of the last frame it processed
    frames: int  # frames that went through the detector
    wall_seconds: float
    error: str | None
    detections: FrameDetections | None  # on annotated frames only, when the video has boxes
    held: int = 0  # frames its motion gate held: analysed with the last detections, not detected

    @property
    def fps(self) -> float | None:
        return self.frames / self.wall_seconds if self.wall_seconds > 0 else None


def camera_name(path: Path) -> str:
    """A camera id from a file name: ``plaza.truth.yaml`` -> ``plaza``."""
    stem = path.name.split(".")[0]
    return re.sub(r"[^A-Za-z0-9_-]", "_", stem)[:64] or "video"


def video_rate(path: Path) -> tuple[float, float]:
    """Frames per second and duration in seconds of a video file (0 where the file does not say)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or 0)
        if stream.duration is not None and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = (container.duration or 0) / av.time_base
    return rate, duration


def frame_times(path: Path) -> np.ndarray:
    """Seconds of every frame of a video from its first one, in display order: frame N is at times[N].

    The pipeline's clock for a file (see vision.ingest.clock), read from the packets without
    decoding, so annotated frame numbers find their frames on variable-frame-rate video and on
    video whose timestamps do not start at 0. Packets without a timestamp fall back to N / fps.
    """
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        base = float(stream.time_base or 0)
        pts = [p.pts for p in container.demux(stream) if p.size]
        rate = float(stream.average_rate or 25)
    if not pts or not base or any(t is None for t in pts):
        return np.arange(len(pts)) / rate
    times = np.sort(np.array(pts, np.float64)) * base
    return times - times[0]


class Recorder:
    """Callbacks for the pipeline: tickets from transitions, detections of annotated frames."""

    def __init__(
        self, names: dict[int, str], boxes: FrameBoxes | None, times: np.ndarray | None, progress: Progress
    ):
        """``times``: :func:`frame_times` of the video, to number the frames (needed with ``boxes``)."""
        self.names = names
        self.annotated = None if boxes is None else set(boxes.frames.tolist())
        self.times = times
        self.progress = progress
        self.opened: dict[str, Ticket] = {}
        self.closed: dict[str, float] = {}
        self.last_pts = 0.0
        self.rows: list[tuple[int, Detections]] = []

    def transition(self, transition: Transition, payload: dict[str, Any]) -> None:
        event = transition.event
        if transition.kind == "open":
            xyxy = transition.boxes.xyxy
            box = None
            if len(xyxy):
                box = (*map(float, xyxy[:, :2].min(axis=0)), *map(float, xyxy[:, 2:].max(axis=0)))
            self.opened[event["event_id"]] = Ticket(
                event["event_id"], event["type"], event["zone"], event["subject"], transition.pts, None, box
            )
        elif transition.kind == "close":
            self.closed[event["event_id"]] = transition.pts
        elif transition.kind == "reopen":  # the same ticket again: its close was premature
            ticket = self.opened[event["event_id"]]
            early = (*ticket.reopened_after, self.closed.pop(event["event_id"]))
            self.opened[event["event_id"]] = replace(ticket, reopened_after=early)

    def detections(self, frame: Frame, detections: Detections) -> None:
        self.progress.step()
        self.last_pts = max(self.last_pts, frame.pts)
        if self.annotated is not None and self.times is not None and len(self.times):
            times = self.times
            index = int(np.searchsorted(times, frame.pts))  # the frame at or after pts, then the nearest
            if index == len(times) or (index and frame.pts - times[index - 1] < times[index] - frame.pts):
                index -= 1
            if index in self.annotated:
                self.rows.append((index, detections))

    def tickets(self) -> list[Ticket]:
        out = []
        for event_id, ticket in self.opened.items():
            closed = self.closed.get(event_id)
            out.append(ticket if closed is None else replace(ticket, resolved_at=closed))
        return sorted(out, key=lambda t: t.opened_at)

    def frame_detections(self) -> FrameDetections | None:
        if self.annotated is None:
            return None
        n = [len(d) for _, d in self.rows]
        merged = Detections.concatenate([d for _, d in self.rows])
        labels = np.array([self.names.get(int(c), "") for c in merged.class_id], dtype=object)
        return FrameDetections(
            frames=np.array(sorted({f for f, _ in self.rows}), np.int64),
            frame=np.repeat(np.array([f for f, _ in self.rows], np.int64), n),
            xyxy=merged.xyxy,
            score=merged.score,
            label=labels.astype(str),
        )


def replay(
    name: str, truth: GroundTruth, detector: Detector, boxes: FrameBoxes | None, progress: Progress
) -> Replay:
    """Run one video through a fresh pipeline."""
    rate, duration = video_rate(truth.video)
    times = None if boxes is None else frame_times(truth.video)
    recorder = Recorder(detector.names, boxes, times, progress)
    expected = duration * min(truth.camera.detect_fps, rate or truth.camera.detect_fps)
    progress.start(name, round(expected))
    with tempfile.TemporaryDirectory(prefix="street-vision-eval-") as tmp:
        store = Store(Path(tmp))
        try:
            pipeline = Pipeline(
                truth.to_config(name, Path(tmp)),
                detector,
                store,
                on_transition=recorder.transition,
                on_detections=recorder.detections,
            )
            summary = pipeline.run()
        finally:
            store.close()
    stats = summary.cameras[name]
    result = Replay(
        name=name,
        tickets=recorder.tickets(),
        video_end=recorder.last_pts,
        frames=stats.frames_detected,
        wall_seconds=summary.wall_seconds,
        error=stats.error,
        detections=recorder.frame_detections(),
        held=stats.frames_held,
    )
    progress.finish(f"{len(result.tickets)} ticket(s)" + (f", error: {result.error}" if result.error else ""))
    return result
