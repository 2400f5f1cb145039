"""Wire the stages for N cameras: readers -> inference -> per-camera analysis -> one store writer.

Each camera has its own reader thread (vision/ingest/reader.py) that hands over frames
due at its detect fps. The inference thread gathers the frames ready from all cameras
into one batch per round and detects them in one call (whole frames, or crops and tiles
per camera, as each camera's planner says); on the CPU there is one such thread per core
(detector.parallel, vision/detect/threads.py), each gathering in turn its share of the
cameras, a camera's frames still detected in order. Everything after the detector (masks,
tracking, scene models, rules, lifecycle) is one camera unit per camera
(vision/camera/unit.py), run off the inference thread by an analysis lane: each camera
belongs to one lane, which takes its frames in order and applies its commands (zone
edits, inbound reports) between them, so a unit is only ever touched by one thread.
What a lane produces (detections, transitions with the unit's state after them,
checkpoints) goes to the store writer (vision/store/writer.py), which runs on the thread
that called :meth:`Pipeline.run` (the store's) and commits in batches: each transition's
snapshots are written to disk, then it commits with the unit's state (and its outbox
message when dispatch is on); the dispatcher is woken after the commit. So inference
never waits for analysis or the disk, only for a full lane (the cameras' backlog).

One camera's failure (a corrupt file, a dead stream, a bad frame, an exception in its
unit, its detection or its writes) is logged and touches that camera only: a camera
whose unit raised is in ``error``, its frames dropped for a backoff of stream time, then
its unit is restored from the store as at start. While a live camera is stalled or
offline its episodes are told UNKNOWN, so its zones pause instead of looking empty.

Before the first frame every camera unit is restored from the store (its snapshot and
its open events), and open events of cameras that left the config are closed with a
reason, so a restart never orphans or duplicates a ticket. Each unit's state is
checkpointed every ``storage.checkpoint_interval`` seconds of stream time and at the
end of the run, once every lane and the writer have drained.

Files read as fast as possible end the run when they end; with any live camera (a
stream, or a file with realtime) the run goes on until :meth:`Pipeline.stop` (Ctrl-C,
SIGTERM) or ``max_seconds`` of wall time.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import cv2

from vision.camera.analysis import CameraAnalysis
from vision.camera.unit import CameraUnit, Snapshot
from vision.camera.view import CameraView
from vision.config import CameraConfig, Config, HealthConfig
from vision.detect.detector import Detector
from vision.detect.planner import Planner
from vision.detect.threads import cores
from vision.events.clips import ClipRecorder
from vision.events.evidence import EvidenceGate
from vision.events.recorder import TransitionRecorder
from vision.ingest.backoff import Backoff
from vision.ingest.health import CameraHealth, CameraState
from vision.ingest.mainstream import Evidence, MainStream
from vision.ingest.reader import CameraReader
from vision.kernels import load_kernels
from vision.scene.motion import MotionGate
from vision.secrets import redact_text
from vision.stats import PipelineStats
from vision.store import EventStore
from vision.store.writer import Job, StoreWriter
from vision.types import CloseReason, Detections, Event, EventState, Frame, Report, Transition

log = logging.getLogger(__name__)
WAIT = 0.2  # seconds to sleep when no camera has a frame ready (bounds how late stop() is noticed)
JOIN_TIMEOUT = 3.0  # seconds, all readers together, at the end of a run
DARK_TICK = 10.0  # seconds of stream time between UNKNOWNs fed to a camera that stays dark (expiry)
LANE_FRAMES = 64  # frames waiting for a lane at most: past it, inference waits (the cameras' backlog)
Committed = tuple[tuple[Snapshot, float] | None, list[Event]]  # a camera's saved snapshot and open events


class Handed(threading.Event):
    """Set by a camera's reader with each frame it hands over; it also wakes the inference threads (the
    pipeline's shared event). Cleared just before a live camera's frame is taken; as a live hand-over
    holds only the newest frame, while it is clear the camera has nothing to take, and a gather passes
    it by without a lock of its reader (at 100 cameras, a take from each one per gather was most of
    the inference threads' own CPU)."""

    def __init__(self, wake: threading.Event) -> None:
        super().__init__()
        self.wake = wake

    def set(self) -> None:
        super().set()
        self.wake.set()


def opencv_threads(cameras: int) -> None:
    """No OpenCV thread pool (its calls run on the calling thread) in a process that runs more cameras
    than it has cores, as its decoders have no threads then (vision/ingest/decoder.py): the pipeline's
    own threads keep every core busy, and OpenCV's workers spend CPU waiting between calls
    (benchmarks/capacity_opencv_threads.md); its functions give the same pixels with or without them."""
    if cameras > cores():
        cv2.setNumThreads(1)


def detections_due(last: float | None, pts: float, interval: float | None, transition: bool) -> bool:
    """Whether a frame's boxes are stored (storage.detection_interval): ``interval`` seconds after the
    last stored frame's ``last`` (or when the clock went back), with every transition, never with None."""
    if interval is None:
        return False
    return transition or last is None or not 0 <= pts - last < interval


@dataclass
class CameraStats:
    """What one camera did during a run."""

    frames_decoded: int = 0
    frames_detected: int = 0
    frames_held: int = 0  # by its motion gate (analysed, not detected): nothing moved in its zones
    detections: int = 0
    errors: int = 0  # times its unit failed (each followed by a restart)
    error: str | None = None  # why the camera is not seeing at the end of the run (redacted)
    health: dict[str, Any] = field(default_factory=dict)  # CameraHealth.to_record() at the end


@dataclass
class RunSummary:
    """Totals of one run, printed at the end of ``street-vision run``."""

    cameras: dict[str, CameraStats] = field(default_factory=dict)
    transitions: dict[str, int] = field(default_factory=dict)
    open_events: int = 0
    wall_seconds: float = 0.0
    detect_fps: float | None = None  # frames analysed per second from the first one on (no start-up)

    def to_record(self) -> dict[str, Any]:
        frames = sum(c.frames_detected for c in self.cameras.values())
        return {
            "cameras": {k: vars(v) for k, v in self.cameras.items()},
            "transitions": self.transitions,
            "open_events": self.open_events,
            "frames_detected": frames,
            "wall_seconds": round(self.wall_seconds, 2),
            "detect_fps": None if self.detect_fps is None else round(self.detect_fps, 1),
        }


class CameraWorker:
    """Per-camera state: reader, detection regions, camera unit, and whether it saw when last looked at."""

    def __init__(
        self,
        camera_id: str,
        reader: CameraReader,
        unit: CameraUnit,
        regions: Planner,
        health: HealthConfig,
        handed: threading.Event | None = None,
    ) -> None:
        """``handed``: the event its reader sets with each frame it hands over (None: looked at always)."""
        self.camera_id = camera_id
        self.reader = reader
        self.handed = handed
        self.unit = unit
        self.regions = regions
        self.stats = CameraStats()
        zones = [z.polygon for z in unit.analysis.scene.zones.values()]
        self.gate = MotionGate(unit.camera.motion_gate, zones, 1 / unit.camera.detect_fps)
        self.state = CameraState.CONNECTING
        self.changes = 0  # its reader's state changes looked at so far (HealthMonitor.passed)
        self.checkpointed: float | None = None  # camera clock of the last checkpoint
        self.detections_stored: float | None = None  # camera clock of the last frame whose boxes were stored
        self.dark_fed: float | None = None  # camera clock of the last UNKNOWN fed while dark
        self.restarts = Backoff(health.restart_initial, health.restart_max)
        self.rest: tuple[float, float] | None = (
            None  # after a failure at camera time [0]: frames until [1] dropped
        )
        self.working_since: float | None = None  # camera time of the first frame that went through since
        self.logged: tuple[object, ...] = ()  # where the last failure logged with its traceback was raised
        self.main = MainStream(camera_id, reader.camera) if reader.camera.detect_url else None  # evidence
        self.generation = 0  # units so far: the writer drops jobs of a unit whose earlier write failed
        self.lock = threading.Lock()  # its failure state (set by inference, analysis and the writer)
        self.planning = threading.Lock()  # its planner and gate (used by inference, reconfigured by analysis)
        self.inferring = False  # a frame of it is with an inference thread: its next waits (order)

    def resting(self, stream_pts: float) -> bool:
        """True while the camera rests after a failure (drop its frame at ``stream_pts``). A frame from
        before the failure (detected before it, still on its way) is not dropped."""
        rest = self.rest
        return rest is not None and rest[0] <= self.unit.camera_time(stream_pts) < rest[1]

    def rested(self, stream_pts: float) -> bool:
        """True when the frame at ``stream_pts`` comes after a rest: the unit restarts before it."""
        rest = self.rest
        return rest is not None and self.unit.camera_time(stream_pts) >= rest[1]

    def restart(self, committed: Committed, stream_pts: float) -> list[Transition]:
        """After a failure, between frames: a fresh unit (of the configuration the failed one had applied)
        restored from what the store has committed as at start (its last snapshot and the camera's open
        events), its clock carried on to the frame at ``stream_pts``. What the failed unit did after its
        last commit is lost (it may be what broke) and counts as unknown time. Returns the closes the
        restore calls for."""
        now, old = self.unit.camera_time(stream_pts), self.unit
        unit = CameraUnit(self.camera_id, old.camera, old.analysis.names, old.events)
        saved, stored = committed
        closes: list[Transition] = []
        if saved is None and not stored:
            unit.offset = now - stream_pts
        else:
            last = saved[0].state.get("pts") if saved is not None else None
            gap = 0.0 if last is None else max(0.0, now - last)
            closes = unit.restore(saved[0] if saved is not None else None, stored, gap)
        with self.lock:
            self.unit, self.rest, self.dark_fed = unit, None, None
            self.generation += 1
        with self.planning:
            self.gate.reset()
        self.reader.monitor.recover()
        log.info("camera %s: unit restarted from its last committed state", self.camera_id)
        return closes

    def snapshot(self, with_arrays: bool = True) -> Snapshot:
        """The unit's snapshot, with where a looping file read in real time had got to (its
        ``position`` in seconds of content), so a restart resumes it there, not at its beginning, and
        the people's sizes its planner learnt, so a restarted camera plans its tiles at once."""
        snapshot = self.unit.snapshot(with_arrays)
        with self.planning:
            planner = self.regions.state()
        state = {**snapshot.state, "position": self.reader.position(), "planner": planner}
        return Snapshot(state, snapshot.arrays)

    def wall_time(self, pts: float) -> str | None:
        """When camera-clock ``pts`` happened by a live camera's wall anchor, ISO 8601 UTC."""
        wall = self.reader.wall_time(self.unit.stream_pts(pts))
        return None if wall is None else datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")

    def finish(self) -> None:
        """Copy the reader's final health into the run's stats."""
        health = self.reader.health()
        self.stats.frames_decoded = health.frames_in
        self.stats.frames_held = self.gate.skipped
        self.stats.errors = health.errors
        self.stats.health = health.to_record()
        if health.state in (CameraState.OFFLINE, CameraState.STALLED, CameraState.ERROR):
            self.stats.error = health.last_error


@dataclass
class _Command:
    """A command for one camera (a zone edit, inbound reports), applied by its lane between two frames."""

    camera_id: str
    apply: Callable[[], None]
    done: threading.Event


@dataclass
class _Failed:
    """The writer could not store a job of this camera's unit (of ``generation``) at camera time ``pts``."""

    camera_id: str
    generation: int
    pts: float
    error: Exception


END, WAKE = "end", "wake"  # markers in a lane's frame queue: no more frames; look at the control queue


class Lane:
    """One analysis thread and its cameras: their frames in order, commands and failures between them."""

    def __init__(self) -> None:
        self.frames: queue.Queue[tuple[CameraWorker, Frame, Detections] | str] = queue.Queue(LANE_FRAMES)
        self.control: queue.Queue[_Command | _Failed] = queue.Queue()  # unbounded: the writer puts here
        self.workers: list[CameraWorker] = []
        self.cameras: set[str] = set()  # the ids of its workers
        self.done = threading.Event()

    def tell(self, item: _Command | _Failed) -> None:
        """Queue a command or a failure, and wake the lane if it waits for frames (a busy one looks soon)."""
        self.control.put(item)
        with suppress(queue.Full):
            self.frames.put_nowait(WAKE)


class Pipeline:
    """All enabled cameras of one config, run until their sources end."""

    def __init__(
        self,
        config: Config,
        detector: Detector,
        store: EventStore,
        on_transition: Callable[[Transition, dict[str, Any]], None] | None = None,
        on_detections: Callable[[Frame, Detections], None] | None = None,
        on_health: Callable[[CameraHealth], None] | None = None,
        on_inference: Callable[[float, int], None] | None = None,
        lanes: int | None = None,
    ) -> None:
        """``lanes``: analysis threads (default: one per core beyond the first, 1 to 4)."""
        self.config = config
        self.detector = detector
        self.store = store
        self.on_transition = on_transition
        self.on_detections = on_detections
        self.on_health = on_health
        self.on_inference = on_inference  # seconds of one detector call, frames in its batch
        self._applying = threading.Lock()  # commands go to the lanes, or are applied here when not running
        self._running = False
        self._started = False  # run() has begun: its restore has applied, or will apply, every stored report
        self._ready = threading.Event()  # set by any reader with a frame ready
        self._gathering = threading.Lock()  # one inference thread gathers at a time
        self._ending = threading.Lock()
        self._inferring = 0  # inference threads still running (under _ending)
        self._turn = 0  # the camera the next gather starts at (after the last one a capped gather took)
        self._stop = threading.Event()
        self._crash: BaseException | None = None  # what broke a stage thread (raised by run())
        load_kernels()  # now: not in an edit that adds a litter rule, nor at a reader's first frame
        self.writer = StoreWriter(store, self._write_failed)
        count = lanes if lanes is not None else max(1, min(4, (os.cpu_count() or 1) - 1))
        self.lanes = [Lane() for _ in range(max(1, count))]
        self.workers: dict[str, CameraWorker] = {}
        self._lane_of: dict[str, Lane] = {}
        enabled = sum(cam.enabled for cam in config.cameras.values())  # sets decode.threads' default
        for camera_id, cam in config.cameras.items():
            if not cam.enabled:
                continue
            unit = CameraUnit(camera_id, cam, detector.names, config.events)
            scene = unit.analysis.scene
            regions = Planner.for_camera(
                cam.detect_regions, scene.zones, scene.ground, detector.card, len(self.workers)
            )
            clips = config.storage.clips
            clip_width = clips.width if clips.enabled else None
            handed = Handed(self._ready)
            reader = CameraReader(camera_id, cam, handed, enabled, clip_width, clips.fps)
            self.workers[camera_id] = CameraWorker(camera_id, reader, unit, regions, config.health, handed)
            lane = self.lanes[len(self._lane_of) % len(self.lanes)]
            lane.workers.append(self.workers[camera_id])
            lane.cameras.add(camera_id)
            self._lane_of[camera_id] = lane
        self._views = {camera_id: self._view(w) for camera_id, w in self.workers.items()}
        self.recorder = TransitionRecorder.for_config(config, store, detector.names)
        self.clips = ClipRecorder(config.storage.clips, config.storage.data_dir, store.another)
        self.summary = RunSummary(cameras={k: w.stats for k, w in self.workers.items()})
        self.stats = PipelineStats(self.workers)
        self.evidence = EvidenceGate()  # transitions waiting for their main-stream picture

    def run(self, max_seconds: float | None = None) -> RunSummary:
        """Process frames until every camera has ended or :meth:`stop` is called.

        ``max_seconds`` (wall time) bounds the cameras read in real time (streams, paced files):
        after it they are stopped, and the run ends once the files read as fast as possible
        have ended too, so a bounded run never cuts an evaluation file short. The calling
        thread is the store's: it restores the cameras, then serves the store writer while the
        inference thread and the analysis lanes run.
        """
        start = time.perf_counter()
        with self._applying:
            self._running = self._started = True
        self._restore()
        opencv_threads(len(self.workers))
        for worker in self.workers.values():
            worker.reader.start()
        calls = self._inferring = max(1, self.detector.parallel)  # inference threads: model calls at once
        share = -(-len(self.workers) // calls)  # due frames one gather takes at most: all, or its share
        wait = self._batch_wait()
        threads = [
            threading.Thread(
                target=self._guard,
                args=(self._infer, max_seconds, start, share, wait),
                name="inference" if calls == 1 else f"inference-{i + 1}",
                daemon=True,
            )
            for i in range(calls)
        ]
        threads += [
            threading.Thread(
                target=self._guard, args=(self._serve, lane), name=f"analysis-{i + 1}", daemon=True
            )
            for i, lane in enumerate(self.lanes)
        ]
        self.writer.start()
        for thread in threads:
            thread.start()
        try:
            self.writer.serve(until=lambda: all(lane.done.is_set() for lane in self.lanes))
        finally:
            self.stop()
            for thread in threads:
                thread.join()
            with self._applying:
                self._running = False
            self._shutdown()
            self.clips.close()
        if self._crash is not None:
            raise self._crash
        self._apply_commands()  # an edit that came while it ended
        self._watch(list(self.workers.values()))
        for worker in self.workers.values():
            worker.finish()
            if worker.unit.last_pts is not None:
                self.store.checkpoint(worker.camera_id, worker.snapshot())
        self.summary.open_events = sum(len(w.unit.open_events()) for w in self.workers.values())
        self.summary.wall_seconds = time.perf_counter() - start
        self.summary.detect_fps = self.stats.analysed_fps()
        return self.summary

    def stop(self) -> None:
        """End the run after the current round; safe to call from a signal handler or another thread."""
        self._stop.set()
        self._ready.set()

    def health(self) -> dict[str, CameraHealth]:
        """Every camera's health now."""
        return {camera_id: w.reader.health() for camera_id, w in self.workers.items()}

    def members(self) -> None:
        """A cluster's shards and replicas (vision/cluster/control.py): one process has none."""
        return None

    def views(self) -> dict[str, CameraView]:
        """Every running camera as of its last frame (immutable; safe from any thread)."""
        return dict(self._views)

    def update_camera(self, camera_id: str, camera: CameraConfig, wait: float = 10.0) -> None:
        """Take new zones and rules for one running camera from any thread (the API's zone editor).

        The camera's rules are built here first, so a rule the model cannot serve (a class it
        lacks) raises ValueError in the caller. The change is a command that the camera's lane
        applies between two of its frames, so no frame sees half of it; this waits (up to
        ``wait`` seconds) until it has, so the camera's view shows the edit when this returns.
        """
        if camera_id not in self.workers:
            raise KeyError(camera_id)
        try:
            CameraAnalysis(camera_id, camera, self.detector.names, self.config.events)
        except Exception as exc:  # whatever a rule raises about its config: its message names the key
            raise ValueError(str(exc)) from exc
        self._command(camera_id, partial(self._apply_camera, camera_id, camera), "the edit", wait)

    def apply_reports(self, camera_id: str, wait: float = 10.0) -> None:
        """Apply the camera's inbound reports that the store holds and has not applied yet (the API
        wrote one), between two of its frames; waits (up to ``wait`` seconds) until they are applied.

        Before :meth:`run` has begun this does nothing: the units are not restored yet, and a report
        applied to a bare unit would be marked applied while the restore drops what it did (a status
        polled while the run starts was lost so); the run's restore applies every stored report."""
        if camera_id not in self.workers:
            raise KeyError(camera_id)
        with self._applying:
            if not self._started:
                return
        self._command(camera_id, partial(self._apply_reports, camera_id), "the report", wait)

    def _command(self, camera_id: str, apply: Callable[[], None], what: str, wait: float) -> None:
        """Hand ``apply`` to the camera's lane (or run it here when the pipeline does not run)."""
        done = threading.Event()
        with self._applying:
            if not self._running:
                apply()
                return
            self._lane_of[camera_id].tell(_Command(camera_id, apply, done))
        if not done.wait(wait):
            raise TimeoutError(f"camera {camera_id}: {what}: the pipeline did not take it in {wait:g} s")

    def _apply_commands(self) -> None:
        """After the run: the commands and write failures the lanes had not taken, here."""
        with self._applying:
            for lane in self.lanes:
                while not lane.control.empty():
                    self._control(lane.control.get())

    def _control(self, item: _Command | _Failed) -> None:
        """A command (contained like a frame: it fails its camera only; done when what it caused is
        committed) or a write failure of a camera."""
        worker = self.workers[item.camera_id]
        if isinstance(item, _Failed):
            if item.generation == worker.generation:  # not restarted since
                self._fail(worker, item.pts, item.error)
            return
        try:
            with self._contain(worker, worker.unit.last_pts or 0.0):
                item.apply()
        finally:  # done once what it caused is committed
            self.writer.submit(Job(None, 0, 0.0, None, after=lambda _: item.done.set()))

    def _apply_camera(self, camera_id: str, camera: CameraConfig) -> None:
        """New zones and rules: closes for what they removed, then the camera's new view."""
        worker = self.workers[camera_id]
        closes = worker.unit.reconfigure(camera)
        zones = worker.unit.analysis.scene.zones
        self.recorder.zones |= {(camera_id, name): zone.polygon for name, zone in zones.items()}
        with worker.planning:
            worker.regions.reconfigure(camera.detect_regions, zones)
            worker.gate.reconfigure([zone.polygon for zone in zones.values()])
        log.info("camera %s: zones now %s", camera_id, ", ".join(zones) or "none")
        self._emit(worker, closes, worker.unit.analysis.scene.last_frame)
        self._views[camera_id] = self._view(worker)

    def _apply_reports(self, camera_id: str) -> None:
        """The camera's pending inbound reports, in order, committed with what they caused (a close,
        or a verification under way in the unit's state) and marked applied in the same transaction."""
        worker = self.workers[camera_id]
        pending = self.writer.call(lambda store: store.pending_reports(camera_id))
        if not pending:
            return
        transitions, changed = [], {}
        for _, event_id, status, note in pending:
            transitions += worker.unit.report(event_id, Report(status), note) or []
            event = worker.unit.event(event_id)
            if event is not None:  # still open: its report or verification changed
                changed[event_id] = event.to_record()
        keys = tuple(key for key, *_ in pending)
        self._emit(worker, transitions, worker.unit.analysis.scene.last_frame, keys, tuple(changed.values()))
        log.info("camera %s: applied %d inbound report(s)", camera_id, len(keys))

    @staticmethod
    def _view(worker: CameraWorker) -> CameraView:
        scene = worker.unit.analysis.scene
        return CameraView(
            worker.camera_id,
            worker.unit.camera,
            tuple(scene.zones),
            scene.last_frame,
            scene.heatmap.copy() if scene.last_frame is not None else None,
            worker.regions.plan.to_record() if scene.last_frame is not None else None,
        )

    def _restore(self) -> None:
        """Carry on from the store: each camera's snapshot and open events; close what left the config.

        The gap since the snapshot is the wall time that passed for a camera read in real time
        (the world went on while nobody watched), and none for a file read as fast as possible."""
        for worker in self.workers.values():
            saved = self.store.snapshot(worker.camera_id)
            stored = self.store.open_events(worker.camera_id)
            if saved is None and not stored:
                continue
            snapshot, saved_at = saved if saved is not None else (None, time.time())
            gap = max(0.0, time.time() - saved_at) if worker.reader.realtime else 0.0
            position = snapshot.state.get("position") if snapshot is not None else None
            if position is not None:  # a looping file read in real time goes on as if it had kept playing
                worker.reader.resume(float(position) + gap)
            closes = worker.unit.restore(snapshot, stored, gap)
            if snapshot is not None:  # the people's sizes it had learnt: planned at once, not surveyed again
                with worker.planning:
                    worker.regions.load(snapshot.state.get("planner", {}))
            log.info(
                "camera %s: restored %d open event(s) from the store%s",
                worker.camera_id,
                len(worker.unit.open_events()) + len(closes),
                f", closed {len(closes)}" if closes else "",
            )
            self._emit(worker, closes, None)
            self._apply_reports(worker.camera_id)  # reports that came while nobody ran the camera
        for camera_id in sorted(self.store.cameras() - set(self.workers)):
            enabled = camera_id in self.config.cameras
            reason = CloseReason.CAMERA_DISABLED if enabled else CloseReason.CAMERA_REMOVED
            saved = self.store.snapshot(camera_id)
            closes = []
            for event in self.store.open_events(camera_id):
                pts = saved[0].state.get("pts") if saved is not None else None
                pts = max(
                    float(pts or 0.0), *(t for t in (event.opened_at, event.reopened_at) if t is not None)
                )
                event.state, event.resolved_at, event.close_reason = EventState.RESOLVED, pts, reason
                closes.append(Transition("close", pts, event.to_record()))
            if closes:
                log.info("camera %s: %s, closed %d open event(s)", camera_id, reason.value, len(closes))
                self._notify(closes, self.recorder.record(closes, None))
            if not enabled:
                self.store.forget_camera(camera_id)

    def _guard(self, stage: Callable[..., None], *args: Any) -> None:
        """Run a stage thread; what breaks it (a bug, not a camera's failure) stops the run and is raised
        by run()."""
        try:
            stage(*args)
        except BaseException as exc:
            self._crash = self._crash or exc
            self.stop()
            raise

    def _infer(self, max_seconds: float | None, start: float, share: int, wait: float) -> None:
        """An inference thread: rounds of gather (up to ``share`` frames due for the detector), detect,
        hand each frame to its camera's lane. Of several threads, each gathers in turn; a camera's next
        frame is gathered only once its last one is on its lane, so its frames stay in order whichever
        thread detects them. The last thread to end ends the lanes.

        Its rounds start at least ``wait`` seconds apart (:meth:`_batch_wait`): the frames due in
        between come as one batch, and their analysis runs back to back on the lanes (an analysis
        after an idle gap runs cold, 1.4-1.9x its warm cost)."""
        gathered_at = float("-inf")  # when this thread's last round started (monotonic)
        try:
            while not self._stop.is_set():
                if wait:
                    if self._stop.wait(max(0.0, gathered_at + wait - time.monotonic())):
                        break
                    gathered_at = time.monotonic()
                if max_seconds is not None and time.perf_counter() - start >= max_seconds:
                    for worker in self.workers.values():
                        if worker.reader.realtime:
                            worker.reader.stop()
                with self._gathering:
                    gathered = self._gather(share)
                if gathered is None:
                    break
                batch = [(worker, frame) for worker, frame, due in gathered if due]
                found = iter(self._detect(batch) if batch else [])
                for worker, frame, due in gathered:  # each camera's frames stay in order on its lane
                    detections = next(found) if due else None  # None: the gate held it, not detected
                    if detections is not None or not due:
                        self._lane_of[worker.camera_id].frames.put((worker, frame, detections))
                    worker.inferring = False
                if gathered:
                    self._ready.set()  # their next frames may be waiting: wake a thread that gathers
        finally:
            with self._ending:
                self._inferring -= 1
                last = self._inferring == 0
            for lane in self.lanes if last else ():
                lane.frames.put(END)

    def _batch_wait(self) -> float:
        """How far apart an inference thread's rounds start at least: ``detector.batch_wait`` when every
        camera is read in real time, else 0 (a file read as fast as possible is never made to wait)."""
        live = all(worker.reader.realtime for worker in self.workers.values())
        return self.config.detector.batch_wait if live else 0.0

    def _serve(self, lane: Lane) -> None:
        """An analysis lane: its cameras' frames in order, commands and write failures between them.
        If it breaks, it still takes its frames until the end, so that inference never blocks on it."""
        watched = float("-inf")  # when the lane last looked at its cameras' health
        try:
            while True:
                if time.monotonic() - watched >= WAIT:  # every WAIT, as when idle, not per frame: a look
                    watched = time.monotonic()  # costs ~1 us a camera (100 a lane at 100 cameras)
                    self._watch(lane.workers)
                while not lane.control.empty():
                    self._control(lane.control.get())
                self.evidence.release(lane.cameras)  # transitions whose main-stream picture is in, or late
                try:
                    item = lane.frames.get(timeout=WAIT)
                except queue.Empty:
                    continue
                if item == END:
                    self.evidence.release(lane.cameras, wait=True)
                    return
                if isinstance(item, tuple):
                    self._analyse(*item)
        except BaseException:
            while lane.frames.get() != END:
                pass
            raise
        finally:
            lane.done.set()
            self.writer.wake()

    def _gather(self, share: int) -> list[tuple[CameraWorker, Frame, bool]] | None:
        """One frame from every camera that has one (waiting for files read in order), and whether it
        is due for the detector; None when all ended. At ``share`` frames due it stops, and the next
        gather starts at the camera after (several inference threads share the cameras out evenly);
        a camera whose last frame another thread still detects is passed over, and so is a live
        camera whose reader has handed nothing over since its last take (:class:`Handed`).

        A file read as fast as possible is waited for, so its frames are never skipped; live
        cameras give what they have now. With nothing ready, sleep until some reader has a frame.
        A camera resting after a failure drops its frames (its lane restarts it at the first after);
        a frame its motion gate finds still is not detected, only analysed (vision/scene/motion.py).
        """
        self._ready.clear()
        batch: list[tuple[CameraWorker, Frame, bool]] = []
        running = False
        workers, due_frames = list(self.workers.values()), 0
        for step in range(len(workers)):
            worker = workers[(self._turn + step) % len(workers)]
            reader, handed = worker.reader, worker.handed if worker.reader.realtime else None
            if handed is not None and not handed.is_set():  # its hand-over is empty: nothing to take
                running = running or not (reader.done or reader.stopped)
                continue
            if reader.done or reader.stopped:
                continue
            running = True
            if worker.inferring:
                continue
            if handed is not None:  # before taking: a frame handed over after this sets it again
                handed.clear()
            frame = reader.take(None if not reader.realtime else 0.0)
            if frame is not None and not worker.resting(frame.pts):
                worker.inferring = True
                with worker.planning:  # its gate, like its planner, is reconfigured by its lane
                    due = worker.gate.due(frame.image, frame.pts, frame.motion, frame.picture)
                batch.append((worker, frame, due))
                due_frames += due
                if due_frames == share:
                    self._turn = (self._turn + step + 1) % len(workers)
                    break
        if not running:
            return None
        if not batch:
            self._ready.wait(WAIT)
        return batch

    def _analyse(self, worker: CameraWorker, frame: Frame, detections: Detections | None) -> None:
        """One frame of a camera on its lane (``detections`` None: held by its motion gate): dropped
        while it rests, its unit restarted after a rest. Its states (an error, the recovery after it)
        are reported by the lane's look every ``WAIT``, which reports those it missed too."""
        if worker.resting(frame.pts):  # failed after inference took this frame
            return
        if worker.rested(frame.pts):
            with self._contain(worker, worker.unit.camera_time(frame.pts)):
                self.evidence.release((worker.camera_id,), wait=True)  # committed before it is read back
                committed = self.writer.call(
                    lambda store: (store.snapshot(worker.camera_id), store.open_events(worker.camera_id))
                )
                self._emit(worker, worker.restart(committed, frame.pts), None)
            if worker.rest is not None:
                return
        frame = worker.unit.stamp(frame)
        if worker.unit.last_pts is not None and frame.pts < worker.unit.last_pts:
            return  # taken before its camera went dark: it must not follow the UNKNOWN
        with self._contain(worker, frame.pts):
            self._process(worker, frame, detections)

    def _watch(self, workers: list[CameraWorker]) -> None:
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
                    self._changed(worker, went, replace(worker.reader.health(), state=went, since=since))
            if state is worker.state:
                if worker.reader.realtime and not state.sees and worker.dark_fed is not None:
                    with self._contain(worker, worker.dark_fed):
                        self._dark(worker, DARK_TICK)
                continue
            self._changed(worker, state)

    def _changed(self, worker: CameraWorker, state: CameraState, health: CameraHealth | None = None) -> None:
        """A camera's new state, reported (with ``health``, else its health now); a live camera that
        stopped seeing (its stream, not its analysis) is dark."""
        if worker.reader.realtime and worker.state.sees and not state.sees and state is not CameraState.ERROR:
            worker.reader.discard()
            with self._contain(worker, worker.unit.last_pts or 0.0):
                self._dark(worker)
        worker.state = state
        if self.on_health:
            self.on_health(health or worker.reader.health())

    def _dark(self, worker: CameraWorker, every: float = 0.0) -> None:
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
        self._emit(worker, worker.unit.unknown(pts), worker.unit.analysis.scene.last_frame)

    def _shutdown(self) -> None:
        """Stop every reader and main stream and give them a moment together; one stuck on a dead
        socket is a daemon thread and is abandoned rather than holding up the exit (the command line
        then ends its process without finalizing: vision/ingest/abandoned.py)."""
        for worker in self.workers.values():
            worker.reader.stop()
            if worker.main is not None:
                worker.main.close()
        deadline = time.monotonic() + JOIN_TIMEOUT
        # the readers first: a main stream stuck opening must not take their share of the time
        for worker in self.workers.values():
            worker.reader.join(max(0.0, deadline - time.monotonic()))
        for worker in self.workers.values():
            if worker.main is not None:
                worker.main.join(max(0.0, deadline - time.monotonic()))

    def _detect(self, batch: list[tuple[CameraWorker, Frame]]) -> list[Detections | None]:
        """One call for the batch; if a frame is bad, retry one by one so only that camera loses it.
        Each camera's planner learns from its frame's detections (outside its masks) here, before it
        plans the camera's next frame."""
        frames = [frame for _, frame in batch]
        regions = []
        for worker, frame in batch:
            with worker.planning:
                regions.append(worker.regions.boxes(frame.width, frame.height))
        try:
            started = time.perf_counter()
            results: list[Detections | None] = list(self.detector.detect([f.image for f in frames], regions))
            seconds = time.perf_counter() - started
            self.stats.detected([f.camera_id for f in frames], seconds)
            if self.on_inference:
                self.on_inference(seconds, len(batch))
        except Exception:
            results = []
            for (worker, frame), region in zip(batch, regions, strict=True):
                results.append(None)
                try:
                    results[-1] = self.detector.detect([frame.image], [region])[0]
                except ValueError as exc:
                    log.error("camera %s: frame at %.3fs skipped: %s", frame.camera_id, frame.pts, exc)
                except Exception as exc:  # anything else fails that camera only, like its unit
                    self._fail(worker, worker.unit.camera_time(frame.pts), exc)
        for i, ((worker, frame), detections) in enumerate(zip(batch, results, strict=True)):
            if detections is not None:
                try:
                    with worker.planning:
                        seen = worker.unit.analysis.scene.unmasked(frame, detections)
                        worker.regions.observe(seen, frame.width, frame.height)
                except Exception as exc:  # fails that camera only, like its unit
                    self._fail(worker, worker.unit.camera_time(frame.pts), exc)
                    results[i] = None
        return results

    @contextmanager
    def _contain(self, worker: CameraWorker, pts: float) -> Iterator[None]:
        """One camera's step at camera time ``pts``: an exception fails that camera only; the others go on.

        A camera that has gone ``restart_max`` seconds without failing starts its backoff over.
        """
        try:
            yield
        except Exception as exc:
            self._fail(worker, pts, exc)
            return
        with worker.lock:
            if worker.rest is not None:  # a frame from before a failure that came in meanwhile
                return
            if worker.working_since is None:
                worker.working_since = pts
            elif worker.restarts.failures and pts - worker.working_since >= self.config.health.restart_max:
                worker.restarts.reset()
                worker.reader.monitor.healthy()

    def _fail(self, worker: CameraWorker, pts: float, exc: Exception) -> None:
        """Log (the traceback once per place it was raised), count, mark ``error`` and rest the camera:
        its frames are dropped until the backoff has passed in stream time. Its unit is not fed any
        more (it may be what broke): the restart restores it from the store, the rest as unknown time."""
        urls = (worker.reader.camera.url, worker.reader.camera.detect_url)
        error = redact_text(f"{type(exc).__name__}: {exc}", *urls)
        with worker.lock:
            delay = worker.restarts.next()
            worker.rest, worker.working_since, worker.dark_fed = (pts, pts + delay), None, None
            worker.reader.monitor.fail(error)
            where = f"camera {worker.camera_id}: failed at {pts:.3f}s; restarting after {delay:.1f} s"
            raised_at = traceback.extract_tb(exc.__traceback__)[-1:]
            site = (type(exc).__name__, *((raised_at[0].filename, raised_at[0].lineno) if raised_at else ()))
            if site == worker.logged:  # the same failure again: health and metrics count it
                log.debug("%s: %s", where, error)
            else:
                log.error(
                    "%s\n%s", where, redact_text("".join(traceback.format_exception(exc)), *urls).rstrip()
                )
            worker.logged = site

    def _write_failed(self, job: Job, exc: Exception) -> None:
        """The writer could not store a job: its camera fails on its lane (a job of no camera: logged)."""
        if job.camera is None or job.camera not in self.workers:
            log.error("store: a write failed: %s", redact_text(f"{type(exc).__name__}: {exc}"))
            return
        self._lane_of[job.camera].tell(_Failed(job.camera, job.generation, job.pts, exc))

    def _process(self, worker: CameraWorker, frame: Frame, detections: Detections | None) -> None:
        """One frame through the camera's unit; ``detections`` None: held by its motion gate, so
        nothing new to store or count as detected (the last detections stand for it in the unit, and
        are what ``on_detections`` hears of it)."""
        started = time.monotonic()
        worker.dark_fed = None
        detected = detections is not None
        tracked, transitions = worker.unit.process(frame, detections)
        camera_id, names = frame.camera_id, self.detector.names
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

        interval = self.config.storage.detection_interval  # a held frame's boxes are not new: never kept
        kept = detected and detections_due(worker.detections_stored, frame.pts, interval, bool(transitions))
        worker.detections_stored = frame.pts if kept else worker.detections_stored
        writes = kept and len(tracked) > 0  # a kept frame of no box counts as stored, with no row to write
        self.writer.submit(  # a frame whose boxes are not kept still reports in order that it is done
            Job(camera_id, worker.generation, frame.pts, store_detections if writes else None, after=stored)
        )
        self.clips.feed(frame)
        self._emit(worker, transitions, frame, evidence=True)
        self._views[frame.camera_id] = self._view(worker)
        interval = self.config.storage.checkpoint_interval
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

    def _emit(
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
            self._notify(transitions, payloads)
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

    def _notify(self, transitions: list[Transition], payloads: list[dict[str, Any]]) -> None:
        for transition, payload in zip(transitions, payloads, strict=True):
            self.summary.transitions[transition.kind] = self.summary.transitions.get(transition.kind, 0) + 1
            if self.on_transition:
                self.on_transition(transition, payload)
