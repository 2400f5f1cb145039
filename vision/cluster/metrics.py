"""``/metrics`` of a cluster: every shard and replica, besides the cameras the single process reports.

Read from the actors at scrape time (a shard that does not answer is ``up`` 0), so a
restarted actor's counters start again at 0, as a restarted process's do.
"""

from __future__ import annotations

from collections.abc import Iterator

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
        cameras = GaugeMetricFamily(f"{PREFIX}_shard_cameras", "Cameras the shard runs", labels=["shard"])
        calls = CounterMetricFamily(f"{PREFIX}_shard_inference_calls", "Detector calls", labels=["shard"])
        seconds = CounterMetricFamily(
            f"{PREFIX}_shard_inference_seconds", "Seconds in detector calls", labels=["shard"]
        )
        lag = GaugeMetricFamily(
            f"{PREFIX}_camera_lag_seconds", "Seconds behind the live edge", labels=["camera", "shard"]
        )
        for shard in self.cluster.shards:
            status = answers.get(shard)
            up.add_metric([shard], 1.0 if status is not None and status["running"] else 0.0)
            if status is None:
                continue
            cameras.add_metric([shard], len(status["cameras"]))
            calls.add_metric([shard], status["inference"]["calls"])
            seconds.add_metric([shard], status["inference"]["seconds"])
            for camera_id, camera in status["cameras"].items():
                if camera["lag"] is not None:
                    lag.add_metric([camera_id, shard], camera["lag"])
        yield from (up, cameras, calls, seconds, lag)
        replicas = self.cluster.replica_reports()
        labels = ["replica"]
        families = {
            "batches": CounterMetricFamily(f"{PREFIX}_replica_batches", "Model calls", labels=labels),
            "frames": CounterMetricFamily(f"{PREFIX}_replica_frames", "Frames detected", labels=labels),
            "busy_seconds": CounterMetricFamily(
                f"{PREFIX}_replica_busy_seconds", "Seconds in model calls", labels=labels
            ),
            "queued": GaugeMetricFamily(f"{PREFIX}_replica_queued", "Frames waiting", labels=labels),
        }
        count = GaugeMetricFamily(f"{PREFIX}_replicas", "Detector replicas answering", value=len(replicas))
        for replica in replicas:
            for key, family in families.items():
                family.add_metric([replica["name"]], replica[key])
        yield from (count, *families.values())
