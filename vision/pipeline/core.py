"""The :class:`Pipeline` of N cameras in one process: it wires the stages (workers, inference threads,
analysis lanes, commits, the store writer), restores every camera from the store before the first
frame, runs the threads until the cameras end, and hands the API's commands (zone edits, inbound
reports) to the cameras' lanes (the package's docstring, vision/pipeline/__init__.py, tells the whole)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import cv2

from vision.camera.analysis import CameraAnalysis
from vision.camera.unit import CameraUnit
from vision.camera.view import CameraView
from vision.config import CameraConfig, Config
from vision.detect.detector import Detector
from vision.detect.planner import Planner
from vision.detect.threads import cores
from vision.events.clips import ClipRecorder
from vision.events.evidence import EvidenceGate
from vision.events.recorder import TransitionRecorder
from vision.ingest.health import CameraHealth
from vision.ingest.reader import CameraReader
from vision.kernels import load_kernels
from vision.pipeline.analysis import Analysis
from vision.pipeline.commits import Commits
from vision.pipeline.inference import Inference
from vision.pipeline.lanes import Command, Failed, Lane
from vision.pipeline.worker import CameraStats, CameraWorker, Handed
from vision.secrets import redact_text
from vision.stats import PipelineStats
from vision.store import EventStore
from vision.store.writer import Job, StoreWriter
from vision.types import CloseReason, Detections, EventState, Frame, Report, Transition

log = logging.getLogger(__name__)
JOIN_TIMEOUT = 3.0  # seconds, all readers together, at the end of a run


def opencv_threads(cameras: int) -> None:
    """No OpenCV thread pool (its calls run on the calling thread) in a process that runs more cameras
    than it has cores, as its decoders have no threads then (vision/ingest/decoder.py): the pipeline's
    own threads keep every core busy, and OpenCV's workers spend CPU waiting between calls
    (benchmarks/capacity_opencv_threads.md); its functions give the same pixels with or without them."""
    if cameras > cores():
        cv2.setNumThreads(1)


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
        self._applying = threading.Lock()  # commands go to the lanes, or are applied here when not running
        self._running = False
        self._started = False  # run() has begun: its restore has applied, or will apply, every stored report
        self._ready = threading.Event()  # set by any reader with a frame ready
        self._stop = threading.Event()
        self._crash: BaseException | None = None  # what broke a stage thread (raised by run())
        load_kernels()  # now: not in an edit that adds a litter rule, nor at a reader's first frame
        self.writer = StoreWriter(store, self._write_failed)
        count = lanes if lanes is not None else max(1, min(4, (os.cpu_count() or 1) - 1))
        self.lanes = [Lane() for _ in range(max(1, count))]
        self.workers: dict[str, CameraWorker] = {}
        self._lane_of: dict[str, Lane] = {}
        enabled = len(config.enabled_cameras)  # sets decode.threads' default
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
        self._views = {camera_id: w.view() for camera_id, w in self.workers.items()}
        self.recorder = TransitionRecorder.for_config(config, store, detector.names)
        self.clips = ClipRecorder(config.storage.clips, config.storage.data_dir, store.another)
        self.summary = RunSummary(cameras={k: w.stats for k, w in self.workers.items()})
        self.stats = PipelineStats(self.workers)
        self.evidence = EvidenceGate()  # transitions waiting for their main-stream picture
        self.commits = Commits(
            self.writer,
            self.recorder,
            self.clips,
            self.evidence,
            self.stats,
            self.summary.transitions,
            on_transition,
        )
        self.analysis = Analysis(
            self.workers,
            self.writer,
            self.commits,
            self.evidence,
            self.clips,
            self.stats,
            self._views,
            config.storage,
            detector.names,
            on_health,
            on_detections,
        )
        self.inference = Inference(
            self.workers,
            self.lanes,
            self._lane_of,
            detector,
            self.stats,
            self._ready,
            self._stop,
            config.detector.batch_wait,
            on_inference,
        )

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
        calls = self.inference.running = max(1, self.detector.parallel)  # inference threads: calls at once
        share = -(-len(self.workers) // calls)  # due frames one gather takes at most: all, or its share
        wait = self.inference.batch_wait()
        threads = [
            threading.Thread(
                target=self._guard,
                args=(self.inference.run, max_seconds, start, share, wait),
                name="inference" if calls == 1 else f"inference-{i + 1}",
                daemon=True,
            )
            for i in range(calls)
        ]
        threads += [
            threading.Thread(
                target=self._guard, args=(self.analysis.serve, lane), name=f"analysis-{i + 1}", daemon=True
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
        self.analysis.watch(list(self.workers.values()))
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
            self._lane_of[camera_id].tell(Command(camera_id, apply, done))
        if not done.wait(wait):
            raise TimeoutError(f"camera {camera_id}: {what}: the pipeline did not take it in {wait:g} s")

    def _apply_commands(self) -> None:
        """After the run: the commands and write failures the lanes had not taken, here."""
        with self._applying:
            for lane in self.lanes:
                while not lane.control.empty():
                    self.analysis.control(lane.control.get())

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
        self.commits.emit(worker, closes, worker.unit.analysis.scene.last_frame)
        self._views[camera_id] = worker.view()

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
        self.commits.emit(
            worker, transitions, worker.unit.analysis.scene.last_frame, keys, tuple(changed.values())
        )
        log.info("camera %s: applied %d inbound report(s)", camera_id, len(keys))

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
            self.commits.emit(worker, closes, None)
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
                self.commits.notify(closes, self.recorder.record(closes, None))
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

    def _write_failed(self, job: Job, exc: Exception) -> None:
        """The writer could not store a job: its camera fails on its lane (a job of no camera: logged)."""
        if job.camera is None or job.camera not in self.workers:
            log.error("store: a write failed: %s", redact_text(f"{type(exc).__name__}: {exc}"))
            return
        self._lane_of[job.camera].tell(Failed(job.camera, job.generation, job.pts, exc))
