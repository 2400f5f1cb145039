"""``/metrics`` of a cluster: every shard and replica, besides the cameras the single process reports.

Read from the actors at scrape time (a shard that does not answer is ``up`` 0), so a
restarted actor's counters start again at 0, as a restarted process's do.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from vision.api.metrics import PREFIX
from vision.cluster.control import Cluster


class ClusterCollector(Collector):
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        answers = self.cluster.ask("status")
        up = GaugeMetricFamily(f"{PREFIX}_shard_up", "1 while the shard answers", labels=["shard"])
        started = GaugeMetricFamily(
            f"{PREFIX}_shard_started_timestamp_seconds",
            "When the shard (its latest restart by Ray) started",
            labels=["shard"],
        )
        cameras = GaugeMetricFamily(f"{PREFIX}_shard_cameras", "Cameras the shard runs", labels=["shard"])
        calls = CounterMetricFamily(f"{PREFIX}_shard_inference_calls", "Detector calls", labels=["shard"])
        seconds = CounterMetricFamily(
            f"{PREFIX}_shard_inference_seconds", "Seconds in detector calls", labels=["shard"]
        )
        resent = CounterMetricFamily(
            f"{PREFIX}_shard_inference_resent",
            "Detector calls sent again because their replica was gone for good",
            labels=["shard"],
        )
        lag = GaugeMetricFamily(
            f"{PREFIX}_camera_lag_seconds", "Seconds behind the live edge", labels=["camera", "shard"]
        )
        for shard in self.cluster.shards:
            status = answers.get(shard)
            up.add_metric([shard], 1.0 if status is not None and status["running"] else 0.0)
            if status is None:
                continue
            started.add_metric([shard], status["started"])
            cameras.add_metric([shard], len(status["cameras"]))
            calls.add_metric([shard], status["inference"]["calls"])
            seconds.add_metric([shard], status["inference"]["seconds"])
            resent.add_metric([shard], status["inference"]["resent"])
            for camera_id, camera in status["cameras"].items():
                if camera["lag"] is not None:
                    lag.add_metric([camera_id, shard], camera["lag"])
        yield from (up, started, cameras, calls, seconds, resent, lag)
        yield from _replicas(self.cluster.replica_reports())


def _replicas(reports: dict[str, dict[str, Any] | None]) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    labels = ["replica"]
    up = GaugeMetricFamily(f"{PREFIX}_replica_up", "1 while the replica answers", labels=labels)
    families = {
        "batches": CounterMetricFamily(f"{PREFIX}_replica_batches", "Model calls", labels=labels),
        "frames": CounterMetricFamily(f"{PREFIX}_replica_frames", "Frames detected", labels=labels),
        "busy_seconds": CounterMetricFamily(
            f"{PREFIX}_replica_busy_seconds", "Seconds in model calls", labels=labels
        ),
        "queued": GaugeMetricFamily(f"{PREFIX}_replica_queued", "Frames waiting", labels=labels),
    }
    answering = [r for r in reports.values() if r is not None]
    count = GaugeMetricFamily(f"{PREFIX}_replicas", "Detector replicas answering", value=len(answering))
    for name, report in reports.items():
        up.add_metric([name], 0.0 if report is None else 1.0)
    for report in answering:
        for key, family in families.items():
            family.add_metric([report["name"]], report[key])
    yield from (count, up, *families.values())
