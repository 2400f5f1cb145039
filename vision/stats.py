"""Run figures per camera: frames analysed, detector and analysis time, end-to-end lag.

The pipeline's thread counts (plain ints and floats, and one slot of a preallocated numpy
ring per lag sample: nothing allocated per frame); ``run --jsonl`` prints a ``stats`` line
from them every few seconds (:class:`StatsTicker`, its own thread, so a stuck pipeline still
shows its fps falling; on a cluster each shard keeps a :class:`StatsWindow` and the control
plane merges their records) and ``/metrics`` reads them at scrape time. Durations are wall clock
(monotonic): these figures are about the machine, never the pipeline's clock.

The end-to-end lag of a frame runs from the moment its reader received it (``Frame.captured``)
to the moment what the pipeline found in it (its detections, its transitions) is stored.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from vision.ingest.health import CameraHealth

LAG_SAMPLES = 1024  # recent lags kept per camera for p50/p95 (a stats interval at 25 fps is 250)
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)  # seconds; /metrics histogram bounds


class CameraCounters:
    """One camera's running totals; written by the pipeline's thread only."""

    __slots__ = (
        "analysed",
        "analysis_seconds",
        "buckets",
        "detector_seconds",
        "first",
        "lag_sum",
        "lags",
        "last",
        "n_lags",
    )

    def __init__(self) -> None:
        self.analysed = 0
        self.detector_seconds = 0.0  # its share of each detector call (the call's time / frames in it)
        self.analysis_seconds = 0.0  # tracking, rules, lifecycle, snapshots and storing, per frame
        self.first: float | None = None  # monotonic: the first frame analysed
        self.last: float | None = None  # monotonic: the latest frame analysed
        self.lags = np.zeros(LAG_SAMPLES, np.float64)  # a ring: sample n is at n % LAG_SAMPLES
        self.n_lags = 0
        self.lag_sum = 0.0
        self.buckets = np.zeros(len(LAG_BUCKETS) + 1, np.int64)  # lag histogram, the last one +Inf

    def recent_lags(self, count: int) -> np.ndarray:
        """The last ``count`` lags (at most LAG_SAMPLES), oldest first."""
        count = min(count, self.n_lags, LAG_SAMPLES)
        return self.lags[(self.n_lags - count + np.arange(count)) % LAG_SAMPLES]


class PipelineStats:
    """Every camera's counters; the pipeline calls :meth:`detected` and :meth:`analysed`."""

    def __init__(self, cameras: Iterable[str]) -> None:
        self.cameras = {camera_id: CameraCounters() for camera_id in cameras}
        self.detector_calls = 0
        self._calls = threading.Lock()  # several inference threads count calls

    def detected(self, camera_ids: list[str], seconds: float) -> None:
        """One detector call of ``seconds`` for frames of ``camera_ids``: each gets its share."""
        with self._calls:
            self.detector_calls += 1
        share = seconds / max(1, len(camera_ids))
        for camera_id in camera_ids:
            self.cameras[camera_id].detector_seconds += share

    def analysed(self, camera_id: str, started: float) -> None:
        """A frame of the camera is analysed; its analysis began at monotonic ``started``."""
        now = time.monotonic()
        counters = self.cameras[camera_id]
        counters.analysed += 1
        counters.analysis_seconds += now - started
        counters.first = now if counters.first is None else counters.first
        counters.last = now

    def stored(self, camera_id: str, captured: float) -> None:
        """What was found in the frame its reader received at monotonic ``captured`` is stored now (its
        detections, and its transitions: later than the detections when they waited for a picture)."""
        counters = self.cameras[camera_id]
        lag = time.monotonic() - captured
        counters.lags[counters.n_lags % LAG_SAMPLES] = lag
        counters.n_lags += 1
        counters.lag_sum += lag
        counters.buckets[bisect.bisect_left(LAG_BUCKETS, lag)] += 1

    def analysed_fps(self) -> float | None:
        """Frames analysed per second from the first analysed frame to the last (start-up excluded)."""
        spans = [(c.first, c.last) for c in self.cameras.values() if c.first is not None]
        frames = sum(c.analysed for c in self.cameras.values())
        if not spans or frames < 2:
            return None
        span = max(last for _, last in spans) - min(first for first, _ in spans)  # type: ignore[type-var]
        return (frames - 1) / span if span > 0 else None


def _ms(seconds: float, frames: int) -> float | None:
    return round(1000.0 * seconds / frames, 2) if frames else None


def percentiles(lags: np.ndarray) -> tuple[float | None, float | None]:
    """p50 and p95 of some lags, in seconds (None without any)."""
    if not len(lags):
        return None, None
    p50, p95 = np.percentile(lags, (50, 95))
    return round(float(p50), 3), round(float(p95), 3)


class StatsWindow:
    """What each camera did between two looks: :meth:`record` counts from the previous call (or from the
    window's creation) to now."""

    def __init__(self, stats: PipelineStats, health: Callable[[], dict[str, CameraHealth]]) -> None:
        self.stats, self.health = stats, health
        self._since = time.monotonic()
        self._before: dict[str, tuple[int, int, int, int, float, float, int]] = {}
        self._calls = 0

    def record(self) -> dict[str, Any]:
        """What each camera did since the previous record (its counts) and its state now."""
        now = time.monotonic()
        interval = max(now - self._since, 1e-6)
        cameras: dict[str, Any] = {}
        for camera_id, health in self.health().items():
            c = self.stats.cameras[camera_id]
            now_counts = (
                health.frames_in,
                health.frames_dropped,
                health.frames_skipped,
                c.analysed,
                c.detector_seconds,
                c.analysis_seconds,
                c.n_lags,
            )
            before = self._before.get(camera_id, (0, 0, 0, 0, 0.0, 0.0, 0))
            decoded, dropped, skipped, analysed, detector, analysis, lags = (
                a - b for a, b in zip(now_counts, before, strict=True)
            )
            self._before[camera_id] = now_counts
            p50, p95 = percentiles(c.recent_lags(int(lags)))
            cameras[camera_id] = {
                "state": health.state.value,
                "fps_in": round(decoded / interval, 2),
                "fps_out": round(analysed / interval, 2),
                "frames_analysed": int(analysed),
                "dropped": int(dropped),
                "skipped": int(skipped),
                "detector_ms": _ms(detector, int(analysed)),
                "analysis_ms": _ms(analysis, int(analysed)),
                "lag_p50": p50,
                "lag_p95": p95,
            }
        calls, self._calls = self.stats.detector_calls - self._calls, self.stats.detector_calls
        self._since = now
        return {"kind": "stats", "interval": round(interval, 3), "detector_calls": calls, "cameras": cameras}


class StatsTicker:
    """Every ``every`` seconds (wall clock), one record from ``record`` (a :class:`StatsWindow`'s, or a
    cluster's gathered from its shards) handed to ``emit``, and one last at :meth:`stop`."""

    def __init__(
        self, record: Callable[[], dict[str, Any]], every: float, emit: Callable[[dict[str, Any]], None]
    ) -> None:
        self.record, self.every, self.emit = record, every, emit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stats", daemon=True)

    def start(self) -> StatsTicker:
        self._thread.start()
        return self

    def stop(self) -> None:
        """End the ticker after one last record (the tail of the run since the previous one)."""
        self._stop.set()
        self._thread.join()
        self.emit(self.record())

    def _run(self) -> None:
        due = time.monotonic() + self.every
        while not self._stop.wait(max(0.0, due - time.monotonic())):
            due = time.monotonic() + self.every  # from this record's start: a slow one shifts the next
            self.emit(self.record())
