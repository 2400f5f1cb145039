"""Committing what the cameras' units produce: each frame's transitions, with their snapshots and
payloads and the unit's state after them, handed to the store writer in the camera's order; then
counted and reported (``on_transition``). A transition of a camera with a substream waits for the
main stream's picture (vision/events/evidence.py), behind any of that camera held before.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from vision.camera.unit import Snapshot
from vision.events.clips import ClipRecorder
from vision.events.evidence import EvidenceGate
from vision.events.recorder import TransitionRecorder
from vision.ingest.mainstream import Evidence
from vision.pipeline.worker import CameraWorker
from vision.stats import PipelineStats
from vision.store import EventStore
from vision.store.writer import Job, StoreWriter
from vision.types import Frame, Transition


class Commits:
    """Hands transitions to the store writer, and hears them committed."""

    def __init__(
        self,
        writer: StoreWriter,
        recorder: TransitionRecorder,
        clips: ClipRecorder,
        evidence: EvidenceGate,
        stats: PipelineStats,
        transitions: dict[str, int],
        on_transition: Callable[[Transition, dict[str, Any]], None] | None = None,
    ) -> None:
        """``transitions``: the run's count by kind (RunSummary.transitions), kept up here."""
        self.writer, self.recorder, self.clips, self.evidence = writer, recorder, clips, evidence
        self.stats, self.transitions, self.on_transition = stats, transitions, on_transition

    def emit(
        self,
        worker: CameraWorker,
        transitions: list[Transition],
        frame: Frame | None,
        applied: tuple[str, ...] = (),
        changed: tuple[dict[str, Any], ...] = (),
        evidence: bool = False,
    ) -> None:
        """Hand one frame's transitions (and the inbound reports that caused them) to the writer, with the
        unit's state after them: their snapshots are written, then all commit together; then reported.
        ``evidence``: a frame analysed on the camera's lane, whose transitions may wait for the main
        stream's picture behind any held before (vision/events/evidence.py; the lane releases them)
        while the camera goes on; anything else waits for those held first, so commits stay in order."""
        if not transitions and not applied:
            return
        # live cameras: when it happened, for humans (pts stays the clock)
        wall_time = worker.wall_time(transitions[-1].pts) if transitions else None
        state = worker.snapshot(False)
        generation = worker.generation
        record = partial(
            self._record, worker, generation, transitions, frame, wall_time, state, applied, changed
        )
        if frame is not None:  # the clip starts now, while the ring holds the seconds before
            self.clips.mark(frame.camera_id, transitions)
        if evidence and worker.main is not None and frame is not None and transitions:
            self.evidence.hold(worker.camera_id, worker.main, worker.unit.stream_pts(frame.pts), record)
        else:
            self.evidence.release((worker.camera_id,), wait=True)  # the camera's earlier transitions first
            record(None)

    def _record(
        self,
        worker: CameraWorker,
        generation: int,
        transitions: list[Transition],
        frame: Frame | None,
        wall_time: str | None,
        state: Snapshot,
        applied: tuple[str, ...],
        changed: tuple[dict[str, Any], ...],
        evidence: Evidence | None,
    ) -> None:
        """Hand the transitions to the writer (with the main stream's picture, or why there is none, for a
        camera with a substream); on their camera's lane, so its commits stay in order."""
        pts = transitions[-1].pts if transitions else worker.unit.last_pts or 0.0

        def record(store: EventStore, payloads: list[dict[str, Any]]) -> None:
            store.record(list(zip(transitions, payloads, strict=True)), state, applied, changed)

        def after(payloads: list[dict[str, Any]]) -> None:
            self.notify(transitions, payloads)
            if evidence is not None and frame is not None:  # held for its picture: stored only now
                self.stats.stored(frame.camera_id, frame.captured)

        self.writer.submit(
            Job(
                worker.camera_id,
                generation,
                pts,
                record,
                prepare=lambda: self.recorder.payloads(transitions, frame, wall_time, evidence),
                after=after,
            )
        )

    def notify(self, transitions: list[Transition], payloads: list[dict[str, Any]]) -> None:
        for transition, payload in zip(transitions, payloads, strict=True):
            self.transitions[transition.kind] = self.transitions.get(transition.kind, 0) + 1
            if self.on_transition:
                self.on_transition(transition, payload)
