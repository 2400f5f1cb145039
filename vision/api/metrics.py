"""``/metrics`` in Prometheus text format: camera rates and counters, inference latency, events, dispatch,
the store's size and its pruning.

Camera figures are read from the readers' health at scrape time and events and outbox
figures from the store, so nothing is counted twice and a restart starts from what
the store holds; the inference latency, dead letters and pruning are counted as they
happen (counters that restart at 0 with the process, as Prometheus expects).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from vision.ingest.health import CameraState
from vision.stats import LAG_BUCKETS, LAG_SAMPLES, PipelineStats, percentiles
from vision.store.views import DURATION_BUCKETS, DURATIONS, OUTCOMES

if TYPE_CHECKING:
    from vision.runtime import Runtime
    from vision.store import EventStore

PREFIX = "street_vision"
Family = GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """One registry per service (tests start several in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.inference = Histogram(
            f"{PREFIX}_inference_seconds",
            "Seconds per detector call (one batch of frames from all cameras)",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe_inference(self, seconds: float, frames: int) -> None:
        self.inference.observe(seconds)

    def watch(self, runtime: Runtime) -> None:
        self.registry.register(_RuntimeCollector(runtime))

    def text(self) -> bytes:
        return generate_latest(self.registry)


class _RuntimeCollector(Collector):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Family]:
        yield from self._cameras()
        if self.runtime.pipeline.stats is not None:  # None on a cluster: its shards report per shard
            yield from pipeline_stats(self.runtime.pipeline.stats)
        store = self.runtime.store.another()  # this scrape's own handle
        try:
            yield from self._store(store)
            yield from self._retention(store)
            yield from _figures(store)
        finally:
            store.close()

    def _cameras(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        labels = ["camera"]
        fps_in = GaugeMetricFamily(f"{PREFIX}_camera_fps_in", "Frames decoded per second", labels=labels)
        fps_out = GaugeMetricFamily(
            f"{PREFIX}_camera_fps_out", "Frames handed to the detector per second", labels=labels
        )
        counters = {
            name: CounterMetricFamily(f"{PREFIX}_camera_{name}", help_text, labels=labels)
            for name, help_text in (
                ("frames_in", "Frames decoded"),
                ("frames_out", "Frames handed to the detector"),
                ("frames_dropped", "Frames replaced by a newer one before the detector took them"),
                ("frames_skipped", "Frames not decoded to catch up with the live edge"),
                ("reconnects", "Stream reopen attempts"),
                ("errors", "Failures of the camera's analysis (each followed by a restart)"),
            )
        }
        state = GaugeMetricFamily(
            f"{PREFIX}_camera_state", "1 for the camera's current state", labels=["camera", "state"]
        )
        for camera_id, health in self.runtime.pipeline.health().items():
            fps_in.add_metric([camera_id], health.fps_in)
            fps_out.add_metric([camera_id], health.fps_out)
            for name, family in counters.items():
                family.add_metric([camera_id], getattr(health, name))
            for s in CameraState:
                state.add_metric([camera_id, s.value], 1.0 if health.state is s else 0.0)
        yield from (fps_in, fps_out, *counters.values(), state)

    def _store(self, store: EventStore) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        tallies = store.tallies()
        attempts, delivered = tallies.attempts, tallies.delivered
        family = GaugeMetricFamily(f"{PREFIX}_events", "Events in the store", labels=["type", "state"])
        for kind, state, count in tallies.events:
            family.add_metric([kind, state], count)
        yield family
        closed = GaugeMetricFamily(
            f"{PREFIX}_events_closed",
            "Closed events in the store by why they closed (resolved, verified_fixed, rejected, ...)",
            labels=["camera", "type", "reason"],
        )
        for row in tallies.closes:
            closed.add_metric([str(v) for v in row[:3]], row[3])
        yield closed
        verifications = GaugeMetricFamily(
            f"{PREFIX}_failed_verifications",
            "Fixes reported handled that the camera still saw (events in the store)",
            labels=["camera", "type"],
        )
        for camera, kind, count in tallies.failed_verifications:
            verifications.add_metric([camera, kind], count)
        yield verifications
        yield CounterMetricFamily(f"{PREFIX}_dispatch_attempts", "Webhook delivery attempts", value=attempts)
        yield CounterMetricFamily(
            f"{PREFIX}_dispatch_failures", "Webhook attempts that did not deliver", value=attempts - delivered
        )
        outbox = GaugeMetricFamily(f"{PREFIX}_outbox_messages", "Outbox messages", labels=["status"])
        for status, count in tallies.outbox:
            outbox.add_metric([status], count)
        yield outbox

    def _retention(self, store: EventStore) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        dispatcher = self.runtime.dispatcher
        dead = CounterMetricFamily(
            f"{PREFIX}_dispatch_dead_letters",
            "Messages dead-lettered: permanent (the receiver refused it, a 4xx) or exhausted (max_attempts)",
            labels=["reason"],
        )
        for reason in ("permanent", "exhausted"):
            dead.add_metric([reason], dispatcher.dead_letters[reason] if dispatcher else 0)
        yield dead
        stats = self.runtime.pruner.stats()
        size = GaugeMetricFamily(f"{PREFIX}_store_bytes", "Bytes on disk", labels=["part"])
        size.add_metric(["database"], store.database_bytes())
        if stats.sizes is not None:  # measured by the pruner's last pass (walking the folders costs)
            size.add_metric(["snapshots"], stats.sizes.snapshots)
        yield size
        pruned = CounterMetricFamily(
            f"{PREFIX}_store_pruned", "Rows (snapshots: pictures) removed by retention", labels=["what"]
        )
        for what, count in stats.pruned.to_record().items():
            pruned.add_metric([what], count)
        yield pruned
        yield CounterMetricFamily(
            f"{PREFIX}_store_prune_batches",
            "Write transactions taken by the pruner",
            value=stats.cost.batches,
        )
        yield CounterMetricFamily(
            f"{PREFIX}_store_prune_seconds",
            "Seconds the pruner held the write lock",
            value=stats.cost.seconds,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_store_prune_batch_max_seconds",
            "Longest pruner transaction: the longest a pipeline write waited for it",
            value=stats.cost.longest,
        )


def _figures(store: EventStore) -> Iterator[GaugeMetricFamily | HistogramMetricFamily]:
    """How the tickets of each camera and event type went (the review page's figures, /api/figures)."""
    labels = ["camera", "type"]
    rows = store.figures()
    outcomes = GaugeMetricFamily(
        f"{PREFIX}_tickets",
        "Tickets in the store by outcome: opened, confirmed (by an operator), rejected (false alarms), "
        "verified_fixed, failed_verifications (reopens after a failed verification), closed_by_operator",
        labels=[*labels, "outcome"],
    )
    for row in rows:
        for outcome in OUTCOMES:
            outcomes.add_metric([row["camera"], row["type"], outcome], row[outcome])
    yield outcomes
    for what in DURATIONS:
        family = HistogramMetricFamily(
            f"{PREFIX}_ticket_{what}_seconds",
            f"Wall-clock seconds of the tickets in the store from {what.replace('_', ' ')}",
            labels=labels,
        )
        for row in rows:
            if what in row:
                seconds = row[what]
                buckets = [(f"{b:g}", n) for b, n in zip(DURATION_BUCKETS, seconds["buckets"], strict=True)]
                family.add_metric(
                    [row["camera"], row["type"]], [*buckets, ("+Inf", seconds["count"])], seconds["sum"]
                )
        yield family


def pipeline_stats(
    stats: PipelineStats,
) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
    """What ``run --jsonl`` prints in its stats lines, per camera: frames analysed (its rate is fps out),
    detector and analysis seconds (over frames: time per frame), and the end-to-end lag from a frame's
    receipt to its results stored, as a histogram and as p50/p95 of the last LAG_SAMPLES frames."""
    labels = ["camera"]
    counters = {
        "analysed": CounterMetricFamily(
            f"{PREFIX}_camera_frames_analysed", "Frames analysed and their results stored", labels=labels
        ),
        "detector_seconds": CounterMetricFamily(
            f"{PREFIX}_camera_detector_seconds",
            "Seconds of detector calls, each call's time shared among the frames in it",
            labels=labels,
        ),
        "analysis_seconds": CounterMetricFamily(
            f"{PREFIX}_camera_analysis_seconds",
            "Seconds after the detector: tracking, rules, lifecycle, snapshots and storing",
            labels=labels,
        ),
    }
    lag = HistogramMetricFamily(
        f"{PREFIX}_camera_lag_seconds",
        "End-to-end lag: from the reader receiving a frame to its results (and transitions) stored",
        labels=labels,
    )
    quantiles = {
        q: GaugeMetricFamily(
            f"{PREFIX}_camera_lag_{q}_seconds",
            f"End-to-end lag, {q} of the camera's last {LAG_SAMPLES} frames",
            labels=labels,
        )
        for q in ("p50", "p95")
    }
    for camera_id, c in stats.cameras.items():
        for name, family in counters.items():
            family.add_metric([camera_id], getattr(c, name))
        cumulative = np.cumsum(c.buckets)
        bounds = [*(f"{b:g}" for b in LAG_BUCKETS), "+Inf"]
        lag.add_metric([camera_id], list(zip(bounds, cumulative.tolist(), strict=True)), c.lag_sum)
        for q, value in zip(quantiles, percentiles(c.recent_lags(LAG_SAMPLES)), strict=True):
            if value is not None:
                quantiles[q].add_metric([camera_id], value)
    yield from (*counters.values(), lag, *quantiles.values())
