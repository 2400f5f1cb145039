"""Per-camera health: state, frame rates, drops, reconnects and the last error, as a plain snapshot.

The reader thread writes it, the pipeline and (later) the API read it; a lock keeps a
snapshot consistent. The state seen from outside is also a watchdog: a camera whose
reader is still blocked waiting for data is reported stalled as soon as its frames are
overdue, without waiting for the read to time out.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

FPS_WINDOW = 5.0  # seconds over which fps in/out are measured
PASSED = 16  # state changes kept for the pipeline's next look (a camera flapping faster loses the oldest)


class CameraState(StrEnum):
    """Where a camera's stream stands; only LIVE means its zones are seen."""

    CONNECTING = "connecting"  # opening the stream, no frame yet since start
    LIVE = "live"  # frames arriving
    STALLED = "stalled"  # frames stopped for stall_timeout seconds; reopening
    OFFLINE = "offline"  # an attempt to open or read it failed; retrying with backoff
    ENDED = "ended"  # a file played to its end (or failed for good): no more frames will come
    ERROR = "error"  # its analysis failed (not its stream); its frames are dropped until a restart

    @property
    def sees(self) -> bool:
        """True when the camera's picture is current; otherwise its zones are UNKNOWN."""
        return self is CameraState.LIVE


@dataclass(frozen=True, slots=True)
class CameraHealth:
    """One camera's health at one moment; wall times are Unix seconds, for humans."""

    camera_id: str
    source: str  # the URL with its password redacted
    state: CameraState
    since: float  # when the state began (Unix time)
    last_frame_pts: float | None  # stream seconds of the newest frame
    last_frame_time: float | None  # Unix time of the newest frame (wall anchor; None before any)
    fps_in: float  # frames decoded per second, over the last few seconds
    fps_out: float  # frames handed to the pipeline per second
    frames_in: int
    frames_out: int
    frames_dropped: int  # frames replaced by a newer one before the pipeline took them
    frames_skipped: int  # frames not decoded to catch up with the live edge
    lag: float | None  # seconds behind the live edge of the last frame analysed, once its results are stored
    reconnects: int
    errors: int  # times its analysis failed
    last_error: str | None  # redacted

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["state"] = self.state.value
        for key in ("since", "last_frame_pts", "last_frame_time", "fps_in", "fps_out", "lag"):
            if record[key] is not None:
                record[key] = round(record[key], 3)
        return record


def _trim(times: deque[float], now: float) -> None:
    """Forget events older than the window (on every append, so hours of frames cost nothing)."""
    while times and times[0] < now - FPS_WINDOW:
        times.popleft()


def _rate(times: deque[float], now: float, start: float) -> float:
    """Events per second over the last FPS_WINDOW seconds (or since ``start`` if more recent)."""
    _trim(times, now)
    return len(times) / max(min(FPS_WINDOW, now - start), 1e-3)


class HealthMonitor:
    """Counters and state of one camera, safe to update from its reader and read from anywhere."""

    def __init__(self, camera_id: str, source: str, stall_timeout: float | None) -> None:
        self.camera_id = camera_id
        self.source = source
        self.stall_timeout = stall_timeout  # None: no watchdog (a file read as fast as possible)
        self._lock = threading.Lock()
        self._state = CameraState.CONNECTING
        self._since = time.time()
        self._started = time.monotonic()
        self._in: deque[float] = deque()
        self._out: deque[float] = deque()
        self._last_alive_at: float | None = None  # monotonic: the newest frame or skipped packet
        self._last_pts: float | None = None
        self._last_wall: float | None = None
        self.frames_in = 0
        self.frames_out = 0
        self.frames_dropped = 0
        self.frames_skipped = 0
        self.reconnects = 0
        self.errors = 0
        self.lag: float | None = None
        self.last_error: str | None = None
        self._failing = False  # the analysis failed and has not been restarted yet: ERROR
        self._failing_since: float | None = None  # the first failure in a row (Unix time)
        self._passed: deque[tuple[CameraState, float]] = deque(maxlen=PASSED)  # (state, since) as set
        self._changes = 0  # states set so far (the pipeline reports those it did not see: :meth:`passed`)

    def set_state(self, state: CameraState, error: str | None = None) -> None:
        with self._lock:
            if error is not None:
                self.last_error = error
            if state is not self._state:
                self._set(state)

    def fail(self, error: str) -> None:
        """The camera's analysis failed: ERROR, whatever the stream does, until :meth:`recover`."""
        with self._lock:
            self.errors += 1
            self.last_error = error
            if not self._failing:
                self._failing = True
                self._record(CameraState.ERROR, time.time())
            if self._failing_since is None:
                self._failing_since = time.time()

    def recover(self) -> None:
        """A fresh analysis runs: the stream's own state shows again."""
        with self._lock:
            if self._failing:
                self._failing = False
                self._set(self._state)

    def healthy(self) -> None:
        """The analysis has worked for a while: the next failure starts a new run of failures."""
        with self._lock:
            self._failing_since = None

    def frame_in(self, pts: float, wall: float | None, at: float) -> None:
        """A frame was decoded at monotonic ``at``; a frame means the camera is live."""
        with self._lock:
            self.frames_in += 1
            self._in.append(at)
            _trim(self._in, at)
            self._last_alive_at, self._last_pts, self._last_wall = at, pts, wall
            if self._state is not CameraState.LIVE:
                self._set(CameraState.LIVE)

    def _set(self, state: CameraState) -> None:
        """The stream's state (under the lock), kept for :meth:`passed` unless an ERROR hides it."""
        self._state, self._since = state, time.time()
        if not self._failing:
            self._record(state, self._since)

    def _record(self, state: CameraState, since: float) -> None:
        """A state seen from outside begins (under the lock): kept for :meth:`passed`."""
        self._passed.append((state, since))
        self._changes += 1

    def passed(self, seen: int) -> tuple[int, list[tuple[CameraState, float]]]:
        """The states set after the first ``seen`` (oldest first, with their start, Unix time), and how
        many were set in all. The state is looked at, not pushed: a stall, a restart or an error may
        begin and end between two looks of the pipeline, and these say it happened."""
        if self._changes == seen:  # nothing new (most looks): no lock; one set meanwhile waits a look
            return seen, []
        with self._lock:
            new = min(self._changes - seen, len(self._passed))
            return self._changes, [self._passed[i] for i in range(len(self._passed) - new, len(self._passed))]

    def alive(self, at: float) -> None:
        """A packet was skipped on purpose at monotonic ``at``: the stream flows, frames are just rare."""
        with self._lock:
            self._last_alive_at = at

    def frame_out(self, at: float, lag: float | None) -> None:
        """A frame was handed to the pipeline at monotonic ``at``; ``lag`` None leaves the lag as it is."""
        with self._lock:
            self.frames_out += 1
            self._out.append(at)
            _trim(self._out, at)
            if lag is not None:
                self.lag = lag

    def set_lag(self, lag: float) -> None:
        with self._lock:
            self.lag = lag

    def skipped(self) -> None:
        """A packet was dropped unseen to catch up with the live edge: counted as it goes, not when a
        frame next comes (a camera that drops every packet would show none). An uncontended lock
        per dropped packet, as :meth:`alive` takes per packet a keyframes-only camera skips."""
        with self._lock:
            self.frames_skipped += 1

    def count(self, dropped: int = 0, reconnects: int = 0) -> None:
        with self._lock:
            self.frames_dropped += dropped
            self.reconnects += reconnects

    @property
    def state(self) -> CameraState:
        """The state as seen now: a live camera whose frames are overdue is already stalled."""
        with self._lock:
            return self._seen_state(time.monotonic())

    def _seen_state(self, now: float) -> CameraState:
        if self._failing:
            return CameraState.ERROR
        overdue = (
            self.stall_timeout is not None
            and self._last_alive_at is not None
            and now - self._last_alive_at > self.stall_timeout
        )
        return CameraState.STALLED if self._state is CameraState.LIVE and overdue else self._state

    def snapshot(self) -> CameraHealth:
        now = time.monotonic()
        with self._lock:
            state = self._seen_state(now)
            since = self._since
            if state is CameraState.ERROR and self._failing_since is not None:
                since = self._failing_since  # failing since the first failure in a row, across restarts
            elif state is not self._state and self._last_alive_at is not None:
                since = time.time() - (now - self._last_alive_at - (self.stall_timeout or 0.0))
            return CameraHealth(
                camera_id=self.camera_id,
                source=self.source,
                state=state,
                since=since,
                last_frame_pts=self._last_pts,
                last_frame_time=self._last_wall,
                fps_in=_rate(self._in, now, self._started),
                fps_out=_rate(self._out, now, self._started),
                frames_in=self.frames_in,
                frames_out=self.frames_out,
                frames_dropped=self.frames_dropped,
                frames_skipped=self.frames_skipped,
                lag=self.lag,
                reconnects=self.reconnects,
                errors=self.errors,
                last_error=self.last_error,
            )
