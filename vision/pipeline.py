"""Wire the stages for N cameras: reader -> detector -> tracker -> rules -> lifecycle -> store.

Each camera has its own reader thread (vision/ingest/reader.py) that hands over frames
due at its detect fps. Frames ready from all cameras are gathered into one batch per
round and detected in one call (whole frames, or crops and tiles per camera);
everything after the detector (masks, tracking, scene models,
rules, lifecycle) is one camera unit per camera (vision/camera/unit.py). Each
transition's snapshots are written to disk, then the transitions of a frame are
committed with the unit's state (and their outbox messages when dispatch is on); the
dispatcher sends them from there. One camera's failure (a corrupt file, a dead stream,
a bad frame, an exception in its unit or its detection) is logged and touches that
camera only: a camera whose unit raised is in ``error``, its frames dropped for a backoff
of stream time, then its unit is restored from the store as at start. While a live
camera is stalled or offline its episodes are told UNKNOWN, so its zones pause instead
of looking empty.

Before the first frame every camera unit is restored from the store (its snapshot and
its open events), and open events of cameras that left the config are closed with a
reason, so a restart never orphans or duplicates a ticket. Each unit's state is
checkpointed every ``storage.checkpoint_interval`` seconds of stream time and at the
end of the run.

Files read as fast as possible end the run when they end; with any live camera (a
stream, or a file with realtime) the run goes on until :meth:`Pipeline.stop` (Ctrl-C,
SIGTERM) or ``max_seconds`` of wall time.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from vision.camera.analysis import CameraAnalysis
from vision.camera.unit import CameraUnit, Snapshot
from vision.camera.view import CameraView
from vision.config import CameraConfig, Config, HealthConfig
from vision.detect.detector import Detector
from vision.detect.planner import Planner
from vision.events.clips import ClipRecorder
from vision.events.evidence import EvidenceGate
from vision.events.recorder import TransitionRecorder
from vision.ingest.backoff import Backoff
from vision.ingest.health import CameraHealth, CameraState
from vision.ingest.mainstream import Evidence, MainStream
from vision.ingest.reader import CameraReader
from vision.secrets import redact_text
from vision.stats import PipelineStats
from vision.store import EventStore
from vision.types import CloseReason, Detections, EventState, Frame, Report, Transition

log = logging.getLogger(__name__)
WAIT = 0.2  # seconds to sleep when no camera has a frame ready (bounds how late stop() is noticed)
JOIN_TIMEOUT = 3.0  # seconds, all readers together, at the end of a run
DARK_TICK = 10.0  # seconds of stream time between UNKNOWNs fed to a camera that stays dark (expiry)


@dataclass
class CameraStats:
    """What one camera did during a run."""

    frames_decoded: int = 0
    frames_detected: int = 0
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
    ) -> None:
        self.camera_id = camera_id
        self.reader = reader
        self.unit = unit
        self.regions = regions
        self.stats = CameraStats()
        self.state = CameraState.CONNECTING
        self.checkpointed: float | None = None  # camera clock of the last checkpoint
        self.dark_fed: float | None = None  # camera clock of the last UNKNOWN fed while dark
        self.restarts = Backoff(health.restart_initial, health.restart_max)
        self.resting_until: float | None = None  # after a failure: frames before this camera time are dropped
        self.working_since: float | None = None  # camera time of the first frame that went through since
        self.logged: tuple[object, ...] = ()  # where the last failure logged with its traceback was raised
        self.main = MainStream(camera_id, reader.camera) if reader.camera.detect_url else None  # evidence

    def resting(self, stream_pts: float) -> bool:
        """True while the camera rests after a failure (drop its frame at ``stream_pts``)."""
        return self.resting_until is not None and self.unit.camera_time(stream_pts) < self.resting_until

    def restart(self, store: EventStore, stream_pts: float) -> list[Transition]:
        """After a failure, between frames: a fresh unit (of the configuration the failed one had applied)
        restored from the store as at start (its last committed state and the camera's open events), its
        clock carried on to the frame at ``stream_pts``. What the failed unit did after its last commit is
        lost (it may be what broke) and counts as unknown time. Returns the closes the restore calls for."""
        now, old = self.unit.camera_time(stream_pts), self.unit
        unit = CameraUnit(self.camera_id, old.camera, old.analysis.names, old.events)
        saved, stored = store.snapshot(self.camera_id), store.open_events(self.camera_id)
        closes: list[Transition] = []
        if saved is None and not stored:
            unit.offset = now - stream_pts
        else:
            last = saved[0].state.get("pts") if saved is not None else None
            gap = 0.0 if last is None else max(0.0, now - last)
            closes = unit.restore(saved[0] if saved is not None else None, stored, gap)
        self.unit, self.resting_until, self.dark_fed = unit, None, None
        self.reader.monitor.recover()
        log.info("camera %s: unit restarted from its last committed state", self.camera_id)
        return closes

    def snapshot(self, with_arrays: bool = True) -> Snapshot:
        """The unit's snapshot, with where a looping file read in real time had got to (its
        ``position`` in seconds of content), so a restart resumes it there, not at its beginning."""
        snapshot = self.unit.snapshot(with_arrays)
        return Snapshot({**snapshot.state, "position": self.reader.position()}, snapshot.arrays)

    def wall_time(self, pts: float) -> str | None:
        """When camera-clock ``pts`` happened by a live camera's wall anchor, ISO 8601 UTC."""
        wall = self.reader.wall_time(self.unit.stream_pts(pts))
        return None if wall is None else datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")

    def finish(self) -> None:
        """Copy the reader's final health into the run's stats."""
        health = self.reader.health()
        self.stats.frames_decoded = health.frames_in
        self.stats.errors = health.errors
        self.stats.health = health.to_record()
        if health.state in (CameraState.OFFLINE, CameraState.STALLED, CameraState.ERROR):
            self.stats.error = health.last_error


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
    ) -> None:
        self.config = config
        self.detector = detector
        self.store = store
        self.on_transition = on_transition
        self.on_detections = on_detections
        self.on_health = on_health
        self.on_inference = on_inference  # seconds of one detector call, frames in its batch
        self._commands: queue.Queue[tuple[Callable[[], None], threading.Event]] = queue.Queue()
        self._applying = threading.Lock()  # commands are applied by one thread at a time
        self._running = False
        self._ready = threading.Event()  # set by any reader with a frame ready
        self._stop = threading.Event()
        self.workers: dict[str, CameraWorker] = {}
        for camera_id, cam in config.cameras.items():
            if not cam.enabled:
                continue
            unit = CameraUnit(camera_id, cam, detector.names, config.events)
            scene = unit.analysis.scene
            regions = Planner.for_camera(cam.detect_regions, scene.zones, scene.ground, detector.card)
            reader = CameraReader(camera_id, cam, self._ready)
            self.workers[camera_id] = CameraWorker(camera_id, reader, unit, regions, config.health)
        self._views = {camera_id: self._view(w) for camera_id, w in self.workers.items()}
        self.recorder = TransitionRecorder.for_config(config, store, detector.names)
        self.clips = ClipRecorder(config.storage.clips, config.storage.data_dir, store.another)
        self.summary = RunSummary(cameras={k: w.stats for k, w in self.workers.items()})
        self.stats = PipelineStats(self.workers)
        self.evidence = EvidenceGate(self._ready)  # transitions waiting for their main-stream picture

    def run(self, max_seconds: float | None = None) -> RunSummary:
        """Process frames until every camera has ended or :meth:`stop` is called.

        ``max_seconds`` (wall time) bounds the cameras read in real time (streams, paced files):
        after it they are stopped, and the run ends once the files read as fast as possible
        have ended too, so a bounded run never cuts an evaluation file short.
        """
        start = time.perf_counter()
        self._running = True
        self._restore()
        for worker in self.workers.values():
            worker.reader.start()
        try:
            while not self._stop.is_set():
                if max_seconds is not None and time.perf_counter() - start >= max_seconds:
                    for worker in self.workers.values():
                        if worker.reader.realtime:
                            worker.reader.stop()
                self._watch()
                self._apply_commands()
                self.evidence.release()
                batch = self._gather()
                if batch is None:
                    break
                if batch:
                    for frame, detections in zip(batch, self._detect(batch), strict=True):
                        if detections is not None:
                            with self._contain(self.workers[frame.camera_id], frame.pts):
                                self._process(frame, detections)
        finally:
            self._running = False
            self._shutdown()
            self.clips.close()
        self._apply_commands()  # an edit that came while it ended
        self._watch()
        self.evidence.release(wait=True)
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

    def views(self) -> dict[str, CameraView]:
        """Every running camera as of its last frame (immutable; safe from any thread)."""
        return dict(self._views)

    def update_camera(self, camera_id: str, camera: CameraConfig, wait: float = 10.0) -> None:
        """Take new zones and rules for one running camera from any thread (the API's zone editor).

        The camera's rules are built here first, so a rule the model cannot serve (a class it
        lacks) raises ValueError in the caller. The change is a command that the pipeline's
        thread applies between two rounds, so no frame sees half of it; this waits (up to
        ``wait`` seconds) until it has, so the camera's view shows the edit when this returns.
        """
        if camera_id not in self.workers:
            raise KeyError(camera_id)
        try:
            CameraAnalysis(camera_id, camera, self.detector.names, self.config.events)
        except Exception as exc:  # whatever a rule raises about its config: its message names the key
            raise ValueError(str(exc)) from exc
        self._command(partial(self._apply_camera, camera_id, camera), f"camera {camera_id}: the edit", wait)

    def apply_reports(self, camera_id: str, wait: float = 10.0) -> None:
        """Apply the camera's inbound reports that the store holds and has not applied yet (the API
        wrote one), between two rounds; waits (up to ``wait`` seconds) until they are applied."""
        if camera_id not in self.workers:
            raise KeyError(camera_id)
        self._command(partial(self._apply_reports, camera_id), f"camera {camera_id}: the report", wait)

    def _command(self, apply: Callable[[], None], what: str, wait: float) -> None:
        """Hand ``apply`` to the pipeline's thread (or run it here when the pipeline does not run)."""
        done = threading.Event()
        self._commands.put((apply, done))
        if self._running:
            self._ready.set()  # an idle pipeline looks now
            if not done.wait(wait):
                raise TimeoutError(f"{what}: the pipeline did not take it in {wait:g} s")
        else:
            self._apply_commands()

    def _apply_commands(self) -> None:
        """Apply the commands that came in (zone edits, inbound reports), between two rounds."""
        with self._applying:
            while not self._commands.empty():
                apply, done = self._commands.get()
                try:
                    apply()
                finally:
                    done.set()

    def _apply_camera(self, camera_id: str, camera: CameraConfig) -> None:
        """New zones and rules: closes for what they removed, then the camera's new view."""
        worker = self.workers[camera_id]
        closes = worker.unit.reconfigure(camera)
        zones = worker.unit.analysis.scene.zones
        self.recorder.zones |= {(camera_id, name): zone.polygon for name, zone in zones.items()}
        worker.regions.reconfigure(camera.detect_regions, zones)
        log.info("camera %s: zones now %s", camera_id, ", ".join(zones) or "none")
        self._emit(worker, closes, worker.unit.analysis.scene.last_frame)
        self._views[camera_id] = self._view(worker)

    def _apply_reports(self, camera_id: str) -> None:
        """The camera's pending inbound reports, in order, committed with what they caused (a close,
        or a verification under way in the unit's state) and marked applied in the same transaction."""
        worker = self.workers[camera_id]
        pending = self.store.pending_reports(camera_id)
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

    def _gather(self) -> list[Frame] | None:
        """One frame from every camera that has one (waiting for files read in order); None when all ended.

        A file read as fast as possible is waited for, so its frames are never skipped; live
        cameras give what they have now. With nothing ready, sleep until some reader has a frame.
        A camera resting after a failure drops its frames; its first frame after the rest restarts it.
        """
        self._ready.clear()
        batch: list[Frame] = []
        running = False
        for worker in self.workers.values():
            reader = worker.reader
            if reader.done or reader.stopped:
                continue
            running = True
            if self.evidence.waiting(worker.camera_id):
                continue
            frame = reader.take(None if not reader.realtime else 0.0)
            if frame is None or worker.resting(frame.pts):
                continue
            if worker.resting_until is not None:
                with self._contain(worker, worker.unit.camera_time(frame.pts)):
                    closes = worker.restart(self.store, frame.pts)
                    self._emit(worker, closes, None)
                if worker.resting_until is not None:
                    continue
            batch.append(worker.unit.stamp(frame))
        if not running:
            return None
        if not batch:
            self._ready.wait(WAIT)
        return batch

    def _watch(self) -> None:
        """Report state changes; a live camera that stopped seeing makes its rules' subjects UNKNOWN.

        A file read as fast as possible is never dark between its frames (it only ends), and
        its frames may still be queued when its reader ends: it gets no UNKNOWN, so a replay
        stays exactly repeatable.
        """
        for worker in self.workers.values():
            state = worker.reader.state
            if state is worker.state:
                if worker.reader.realtime and not state.sees and worker.dark_fed is not None:
                    with self._contain(worker, worker.dark_fed):
                        self._dark(worker, DARK_TICK)
                continue
            if (
                worker.reader.realtime
                and worker.state.sees
                and not state.sees
                and state is not CameraState.ERROR
            ):
                worker.reader.discard()
                with self._contain(worker, worker.unit.last_pts or 0.0):
                    self._dark(worker)
            worker.state = state
            if self.on_health:
                self.on_health(worker.reader.health())

    def _dark(self, worker: CameraWorker, every: float = 0.0) -> None:
        """Tell the unit its camera cannot see (at most once per ``every`` seconds of stream time)."""
        pts = worker.reader.stream_time()
        if pts is None or worker.unit.last_pts is None:
            return
        pts = max(worker.unit.camera_time(pts), worker.unit.last_pts)
        if worker.dark_fed is not None and pts - worker.dark_fed < every:
            return
        worker.dark_fed = pts
        self._emit(worker, worker.unit.unknown(pts), worker.unit.analysis.scene.last_frame)

    def _shutdown(self) -> None:
        """Stop every reader and give them a moment together; a reader stuck on a dead socket is a
        daemon thread and is abandoned rather than holding up the exit."""
        for worker in self.workers.values():
            worker.reader.stop()
        deadline = time.monotonic() + JOIN_TIMEOUT
        for worker in self.workers.values():
            worker.reader.join(max(0.0, deadline - time.monotonic()))

    def _detect(self, batch: list[Frame]) -> list[Detections | None]:
        """One call for the batch; if a frame is bad, retry one by one so only that camera loses it."""
        regions = [self.workers[f.camera_id].regions.boxes(f.width, f.height) for f in batch]
        try:
            started = time.perf_counter()
            results: list[Detections | None] = list(self.detector.detect([f.image for f in batch], regions))
            seconds = time.perf_counter() - started
            self.stats.detected([f.camera_id for f in batch], seconds)
            if self.on_inference:
                self.on_inference(seconds, len(batch))
            return results
        except Exception:
            results = []
            for frame, region in zip(batch, regions, strict=True):
                results.append(None)
                try:
                    results[-1] = self.detector.detect([frame.image], [region])[0]
                except ValueError as exc:
                    log.error("camera %s: frame at %.3fs skipped: %s", frame.camera_id, frame.pts, exc)
                except Exception as exc:  # anything else fails that camera only, like its unit
                    self._fail(self.workers[frame.camera_id], frame.pts, exc)
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
        delay = worker.restarts.next()
        worker.resting_until, worker.working_since, worker.dark_fed = pts + delay, None, None
        worker.reader.monitor.fail(error)
        where = f"camera {worker.camera_id}: failed at {pts:.3f}s; restarting after {delay:.1f} s"
        raised_at = traceback.extract_tb(exc.__traceback__)[-1:]
        site = (type(exc).__name__, *((raised_at[0].filename, raised_at[0].lineno) if raised_at else ()))
        if site == worker.logged:  # the same failure again: health and metrics count it
            log.debug("%s: %s", where, error)
        else:
            log.error("%s\n%s", where, redact_text("".join(traceback.format_exception(exc)), *urls).rstrip())
        worker.logged = site

    def _process(self, frame: Frame, detections: Detections) -> None:
        started = time.monotonic()
        worker = self.workers[frame.camera_id]
        worker.dark_fed = None
        detections, transitions = worker.unit.process(frame, detections)
        worker.regions.observe(detections, frame.width, frame.height)
        worker.stats.frames_detected += 1
        worker.stats.detections += len(detections)
        self.store.add_detections(frame.camera_id, frame.pts, detections, self.detector.names)
        if self.on_detections:
            self.on_detections(frame, detections)
        self.clips.feed(frame)
        self._emit(worker, transitions, frame)
        self._views[frame.camera_id] = self._view(worker)
        interval = self.config.storage.checkpoint_interval
        due = worker.checkpointed is None or frame.pts - worker.checkpointed >= interval
        if due and not self.evidence.waiting(worker.camera_id):  # never a state ahead of its transitions
            worker.checkpointed = frame.pts
            self.store.checkpoint(worker.camera_id, worker.snapshot())
        self.stats.analysed(frame.camera_id, started)
        if not self.evidence.waiting(worker.camera_id):  # else once its transitions are stored
            self.stats.stored(frame.camera_id, frame.captured)
        worker.reader.analysed(worker.unit.stream_pts(frame.pts))

    def _emit(
        self,
        worker: CameraWorker,
        transitions: list[Transition],
        frame: Frame | None,
        applied: tuple[str, ...] = (),
        changed: tuple[dict[str, Any], ...] = (),
    ) -> None:
        """Commit one frame's transitions (and the inbound reports that caused them) with the unit's
        state after them, then report them."""
        if not transitions and not applied:
            return
        self.evidence.release(worker.camera_id, wait=True)  # the camera's earlier transitions first
        # live cameras: when it happened, for humans (pts stays the clock)
        wall_time = worker.wall_time(transitions[-1].pts) if transitions else None
        state = worker.snapshot(False)
        record = partial(self._record, transitions, frame, wall_time, state, applied, changed)
        if worker.main is not None and frame is not None and transitions:  # the main stream's picture
            self.evidence.hold(worker.camera_id, worker.main, worker.unit.stream_pts(frame.pts), record)
        else:
            record(None)

    def _record(
        self,
        transitions: list[Transition],
        frame: Frame | None,
        wall_time: str | None,
        state: Snapshot,
        applied: tuple[str, ...],
        changed: tuple[dict[str, Any], ...],
        evidence: Evidence | None,
    ) -> None:
        payloads = self.recorder.record(transitions, frame, wall_time, state, applied, changed, evidence)
        if frame is not None:
            self.clips.mark(frame.camera_id, transitions)
        if evidence is not None and frame is not None:  # held for its picture: stored only now
            self.stats.stored(frame.camera_id, frame.captured)
        self._notify(transitions, payloads)

    def _notify(self, transitions: list[Transition], payloads: list[dict[str, Any]]) -> None:
        for transition, payload in zip(transitions, payloads, strict=True):
            self.summary.transitions[transition.kind] = self.summary.transitions.get(transition.kind, 0) + 1
            if self.on_transition:
                self.on_transition(transition, payload)
