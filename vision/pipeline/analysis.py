"""The analysis lanes' work: each camera's frames through its unit, in order, off the inference threads;
between two frames the commands for its cameras and the writer's failures; and every ``WAIT`` a look at
their health (a live camera that stopped seeing makes its zones unknown).

Everything after the detector (masks, tracking, scene models, rules, lifecycle) is one camera unit per
camera (vision/camera/unit.py); each camera belongs to one lane, so a unit is only ever touched by one
thread. What a lane produces goes to the store writer: detections (every storage.detection_interval),
transitions with the unit's state (vision/pipeline/commits.py), checkpoints.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from vision.camera.view import CameraView
from vision.config import StorageConfig
from vision.events.clips import ClipRecorder
from vision.events.evidence import EvidenceGate
from vision.ingest.health import CameraHealth, CameraState
from vision.pipeline.commits import Commits
from vision.pipeline.lanes import END, Command, Failed, Lane
from vision.pipeline.worker import CameraWorker
from vision.stats import PipelineStats
from vision.store import EventStore
from vision.store.writer import Job, StoreWriter
from vision.types import Detections, Frame

WAIT = 0.2  # seconds between a lane's looks at its cameras' health, and the longest it waits for a frame
DARK_TICK = 10.0  # seconds of stream time between UNKNOWNs fed to a camera that stays dark (expiry)


def detections_due(last: float | None, pts: float, interval: float | None, transition: bool) -> bool:
    """Whether a frame's boxes are stored (storage.detection_interval): ``interval`` seconds after the
    last stored frame's ``last`` (or when the clock went back), with every transition, never with None."""
    if interval is None:
        return False
    return transition or last is None or not 0 <= pts - last < interval


class Analysis:
    """The lanes' shared parts: the cameras, the writer, the commits, the views the API reads."""

    def __init__(
        self,
        workers: dict[str, CameraWorker],
        writer: StoreWriter,
        commits: Commits,
        evidence: EvidenceGate,
        clips: ClipRecorder,
        stats: PipelineStats,
        views: dict[str, CameraView],
        storage: StorageConfig,
        names: dict[int, str],
        on_health: Callable[[CameraHealth], None] | None = None,
        on_detections: Callable[[Frame, Detections], None] | None = None,
    ) -> None:
        """``views``: every camera's view as of its last frame, replaced here after each (the pipeline's);
        ``names``: the detector's labels, stored with the boxes."""
        self.workers, self.writer, self.commits, self.evidence = workers, writer, commits, evidence
        self.clips, self.stats, self.views, self.storage, self.names = clips, stats, views, storage, names
        self.on_health, self.on_detections = on_health, on_detections

    def serve(self, lane: Lane) -> None:
        """An analysis lane: its cameras' frames in order, commands and write failures between them.
        If it breaks, it still takes its frames until the end, so that inference never blocks on it."""
        watched = float("-inf")  # when the lane last looked at its cameras' health
        try:
            while True:
                if time.monotonic() - watched >= WAIT:  # every WAIT, as when idle, not per frame: a look
                    watched = time.monotonic()  # costs ~1 us a camera (100 a lane at 100 cameras)
                    self.watch(lane.workers)
                while not lane.control.empty():
                    self.control(lane.control.get())
                self.evidence.release(lane.cameras)  # transitions whose main-stream picture is in, or late
                try:
                    item = lane.frames.get(timeout=WAIT)
                except queue.Empty:
                    continue
                if item == END:
                    self.evidence.release(lane.cameras, wait=True)
                    return
                if isinstance(item, tuple):
                    self.analyse(*item)
        except BaseException:
            while lane.frames.get() != END:
                pass
            raise
        finally:
            lane.done.set()
            self.writer.wake()

    def control(self, item: Command | Failed) -> None:
        """A command (contained like a frame: it fails its camera only; done when what it caused is
        committed) or a write failure of a camera."""
        worker = self.workers[item.camera_id]
        if isinstance(item, Failed):
            if item.generation == worker.generation:  # not restarted since
                worker.fail(item.pts, item.error)
            return
        try:
            with worker.contain(worker.unit.last_pts or 0.0):
                item.apply()
        finally:  # done once what it caused is committed
            self.writer.submit(Job(None, 0, 0.0, None, after=lambda _: item.done.set()))

    def analyse(self, worker: CameraWorker, frame: Frame, detections: Detections | None) -> None:
        """One frame of a camera on its lane (``detections`` None: held by its motion gate): dropped
        while it rests, its unit restarted after a rest. Its states (an error, the recovery after it)
        are reported by the lane's look every ``WAIT``, which reports those it missed too."""
        if worker.resting(frame.pts):  # failed after inference took this frame
            return
        if worker.rested(frame.pts):
            with worker.contain(worker.unit.camera_time(frame.pts)):
                self.evidence.release((worker.camera_id,), wait=True)  # committed before it is read back
                committed = self.writer.call(
                    lambda store: (store.snapshot(worker.camera_id), store.open_events(worker.camera_id))
                )
                self.commits.emit(worker, worker.restart(committed, frame.pts), None)
            if worker.rest is not None:
                return
        frame = worker.unit.stamp(frame)
        if worker.unit.last_pts is not None and frame.pts < worker.unit.last_pts:
            return  # taken before its camera went dark: it must not follow the UNKNOWN
        with worker.contain(frame.pts):
            self.process(worker, frame, detections)

    def watch(self, workers: list[CameraWorker]) -> None:
        """Report state changes; a live camera that stopped seeing makes its rules' subjects UNKNOWN.
        States set since the last look and gone by now (a short stall, a rest) are reported too, in
        order: what a camera went through does not depend on how often its lane looks.

        A file read as fast as possible is never dark between its frames (it only ends), and
        its frames may still be queued when its reader ends: it gets no UNKNOWN, so a replay
        stays exactly repeatable.
        """
        for worker in workers:
            worker.changes, passed = worker.reader.monitor.passed(worker.changes)
            state = worker.reader.state
            if passed and passed[-1][0] is state:
                passed.pop()  # reported below, with its health as it is now
            for went, since in passed:
                if went is not worker.state:
                    self.changed(worker, went, replace(worker.reader.health(), state=went, since=since))
            if state is worker.state:
                if worker.reader.realtime and not state.sees and worker.dark_fed is not None:
                    with worker.contain(worker.dark_fed):
                        self.dark(worker, DARK_TICK)
                continue
            self.changed(worker, state)

    def changed(self, worker: CameraWorker, state: CameraState, health: CameraHealth | None = None) -> None:
        """A camera's new state, reported (with ``health``, else its health now); a live camera that
        stopped seeing (its stream, not its analysis) is dark."""
        if worker.reader.realtime and worker.state.sees and not state.sees and state is not CameraState.ERROR:
            worker.reader.discard()
            with worker.contain(worker.unit.last_pts or 0.0):
                self.dark(worker)
        worker.state = state
        if self.on_health:
            self.on_health(health or worker.reader.health())

    def dark(self, worker: CameraWorker, every: float = 0.0) -> None:
        """Tell the unit its camera cannot see (at most once per ``every`` seconds of stream time)."""
        pts = worker.reader.stream_time()
        if pts is None or worker.unit.last_pts is None:
            return
        pts = max(worker.unit.camera_time(pts), worker.unit.last_pts)
        if worker.dark_fed is not None and pts - worker.dark_fed < every:
            return
        worker.dark_fed = pts
        with worker.planning:  # its next frame is detected: no verdict is carried over unknown time
            worker.gate.reset()
        self.commits.emit(worker, worker.unit.unknown(pts), worker.unit.analysis.scene.last_frame)

    def process(self, worker: CameraWorker, frame: Frame, detections: Detections | None) -> None:
        """One frame through the camera's unit; ``detections`` None: held by its motion gate, so
        nothing new to store or count as detected (the last detections stand for it in the unit, and
        are what ``on_detections`` hears of it)."""
        started = time.monotonic()
        worker.dark_fed = None
        detected = detections is not None
        tracked, transitions = worker.unit.process(frame, detections)
        camera_id, names = frame.camera_id, self.names
        held = bool(transitions) and worker.main is not None  # its transitions wait for the main stream
        if detected:
            worker.stats.frames_detected += 1
            worker.stats.detections += len(tracked)

        def stored(_: Any) -> None:
            if self.on_detections:  # a held frame's: the last detections, which stand for it
                self.on_detections(frame, tracked)
            if not held:  # else its results count as stored with its transitions
                self.stats.stored(camera_id, frame.captured)
            worker.reader.analysed(worker.unit.stream_pts(frame.pts))

        def store_detections(store: EventStore, _: Any) -> None:
            store.add_detections(camera_id, frame.pts, tracked, names)

        interval = self.storage.detection_interval  # a held frame's boxes are not new: never kept
        kept = detected and detections_due(worker.detections_stored, frame.pts, interval, bool(transitions))
        worker.detections_stored = frame.pts if kept else worker.detections_stored
        writes = kept and len(tracked) > 0  # a kept frame of no box counts as stored, with no row to write
        self.writer.submit(  # a frame whose boxes are not kept still reports in order that it is done
            Job(camera_id, worker.generation, frame.pts, store_detections if writes else None, after=stored)
        )
        self.clips.feed(frame)
        self.commits.emit(worker, transitions, frame, evidence=True)
        self.views[frame.camera_id] = worker.view()
        interval = self.storage.checkpoint_interval
        due = worker.checkpointed is None or frame.pts - worker.checkpointed >= interval
        if due and not self.evidence.waiting(worker.camera_id):  # never a state ahead of its transitions
            worker.checkpointed = frame.pts
            snapshot = worker.snapshot()
            job = Job(
                camera_id,
                worker.generation,
                frame.pts,
                lambda store, _: store.checkpoint(camera_id, snapshot),
            )
            self.writer.submit(job)
        self.stats.analysed(camera_id, started)
