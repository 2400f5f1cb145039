"""One camera in the pipeline: its reader, planner, motion gate and unit, and what happens when it fails.

A camera's failure (an exception in its unit, its detection or its writes) is contained here: the
camera is marked ``error`` and rests for a backoff of stream time, its frames dropped, then its unit is
restored from the store (:meth:`CameraWorker.restart`); the other cameras go on.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vision.camera.unit import CameraUnit, Snapshot
from vision.camera.view import CameraView
from vision.config import HealthConfig
from vision.detect.planner import Planner
from vision.ingest.backoff import Backoff
from vision.ingest.health import CameraState
from vision.ingest.mainstream import MainStream
from vision.ingest.reader import CameraReader
from vision.scene.motion import MotionGate
from vision.secrets import redact_text
from vision.types import Event, Transition

log = logging.getLogger(__name__)
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

    def view(self) -> CameraView:
        """The camera as of its last frame, for the API (immutable: read from any thread)."""
        scene = self.unit.analysis.scene
        return CameraView(
            self.camera_id,
            self.unit.camera,
            tuple(scene.zones),
            scene.last_frame,
            scene.heatmap.copy() if scene.last_frame is not None else None,
            self.regions.plan.to_record() if scene.last_frame is not None else None,
        )

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

    @contextmanager
    def contain(self, pts: float) -> Iterator[None]:
        """This camera's step at camera time ``pts``: an exception fails this camera only; the others go on.

        A camera that has gone ``restart_max`` seconds without failing starts its backoff over.
        """
        try:
            yield
        except Exception as exc:
            self.fail(pts, exc)
            return
        with self.lock:
            if self.rest is not None:  # a frame from before a failure that came in meanwhile
                return
            if self.working_since is None:
                self.working_since = pts
            elif self.restarts.failures and pts - self.working_since >= self.restarts.cap:
                self.restarts.reset()
                self.reader.monitor.healthy()

    def fail(self, pts: float, exc: Exception) -> None:
        """Log (the traceback once per place it was raised), count, mark ``error`` and rest the camera:
        its frames are dropped until the backoff has passed in stream time. Its unit is not fed any
        more (it may be what broke): the restart restores it from the store, the rest as unknown time."""
        urls = (self.reader.camera.url, self.reader.camera.detect_url)
        error = redact_text(f"{type(exc).__name__}: {exc}", *urls)
        with self.lock:
            delay = self.restarts.next()
            self.rest, self.working_since, self.dark_fed = (pts, pts + delay), None, None
            self.reader.monitor.fail(error)
            where = f"camera {self.camera_id}: failed at {pts:.3f}s; restarting after {delay:.1f} s"
            raised_at = traceback.extract_tb(exc.__traceback__)[-1:]
            site = (type(exc).__name__, *((raised_at[0].filename, raised_at[0].lineno) if raised_at else ()))
            if site == self.logged:  # the same failure again: health and metrics count it
                log.debug("%s: %s", where, error)
            else:
                log.error(
                    "%s\n%s", where, redact_text("".join(traceback.format_exception(exc)), *urls).rstrip()
                )
            self.logged = site
