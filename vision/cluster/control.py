"""The control plane: starts a config's shards (and detector replicas) on the Ray cluster and talks to them.

``run`` and ``serve`` with a ``cluster:`` section build a :class:`ClusterRuntime` instead of
the single process's :class:`~vision.runtime.Runtime`: the same store, dispatcher and pruner
here (one for the whole cluster), and a :class:`ClusterPipeline` that answers the API as the
single pipeline does, by asking the shards: health and views from every shard, a zone edit
or a report to the shard that owns the camera. A shard that does not answer (Ray is restarting
it) shows its cameras in ``error`` with why, and its last views, until it is back.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from vision.camera.view import CameraView
from vision.cluster.inference import live_replicas, replica_name
from vision.cluster.members import merge_stats, replica_lines, shard_lines
from vision.cluster.ring import HashRing, shard_names
from vision.cluster.scaling import Scaler
from vision.cluster.shard import start_shard
from vision.config import CameraConfig, ClusterConfig, Config, ConfigError
from vision.dispatch.dispatcher import Dispatcher
from vision.ingest.health import CameraHealth, CameraState
from vision.pipeline import CameraStats, RunSummary
from vision.store import EventStore, open_store
from vision.store.lease import Lease, hold
from vision.store.retention import Pruner

log = logging.getLogger("vision.cluster")
ASK_S = 5.0  # seconds a shard or replica has to answer a question (health, views, status)
POLL_S = 1.0  # seconds between two looks at the shards while they run
CLOSE_S = 10.0  # seconds to wait for killed actors to give their names back
FRESH_S = 0.5  # the API's health and views are at most this old (a view carries its newest frame)


def connect(cluster: ClusterConfig) -> None:
    """Join the configured Ray cluster as a driver (once per process)."""
    if ray.is_initialized():
        return
    try:
        ray.init(
            address=cluster.address,
            namespace=cluster.namespace,
            logging_level=logging.WARNING,
            configure_logging=False,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(
            [f"cluster.address: cannot join the Ray cluster at {cluster.address}: {exc}"]
        ) from None


def answer(ref: Any, timeout: float = ASK_S) -> Any:
    """The value of an actor call; the actor's own exception (a ValueError, a KeyError) as itself."""
    try:
        return ray.get(ref, timeout=timeout)
    except RayTaskError as exc:
        raise exc.cause from None


class Cluster:
    """The shards (and, with ``detector: shared``, the replicas) of one config, owned by this process:
    they end with it, and Ray restarts one that dies while it lives."""

    def __init__(self, config: Config) -> None:
        assert config.cluster is not None
        self.config, self.settings = config, config.cluster
        self.ring = HashRing(shard_names(self.settings.shards), self.settings.virtual_nodes)
        self.assignment = self.ring.assign(config.enabled_cameras)
        self.scaler = Scaler(self.settings, config.detector) if self.settings.detector == "shared" else None
        self.shards = {name: start_shard(config, name) for name in shard_names(self.settings.shards)}
        log.info(
            "cluster: %d shard(s): %s",
            len(self.shards),
            "; ".join(f"{s}: {', '.join(c) or 'no camera'}" for s, c in self.assignment.items()),
        )

    def owner(self, camera_id: str) -> Any:
        return self.shards[self.ring.owner(camera_id)]

    def ask(self, method: str, *args: Any) -> dict[str, Any]:
        """Every shard's answer to ``method``; a shard that does not answer in time is left out."""
        refs = {name: getattr(shard, method).remote(*args) for name, shard in self.shards.items()}
        answers = {}
        for name, ref in refs.items():
            try:
                answers[name] = answer(ref)
            except (RayActorError, GetTimeoutError) as exc:
                log.debug("%s does not answer %s: %s", name, method, exc)
        return answers

    def replica_reports(self) -> dict[str, dict[str, Any] | None]:
        """Every replica's report, by name; None for one that does not answer in time."""
        replicas = self.scaler.replicas if self.scaler else []
        refs = {replica_name(i): r.report.remote() for i, r in enumerate(replicas)}
        reports: dict[str, dict[str, Any] | None] = {}
        for name, ref in refs.items():
            try:
                reports[name] = answer(ref)
            except (RayActorError, GetTimeoutError):
                reports[name] = None
        return reports

    def run(self, stop: threading.Event, max_seconds: float | None = None) -> dict[str, dict[str, Any]]:
        """Wait until every shard's pipeline has ended (files) or ``stop`` is set (then stop them, and
        wait for their summaries); ``max_seconds`` of wall time sets ``stop``. Scales the replicas."""
        started, summaries = time.monotonic(), {}
        while len(summaries) < len(self.shards):
            if max_seconds is not None and time.monotonic() - started >= max_seconds:
                stop.set()
            if stop.is_set():
                for shard in self.shards.values():
                    shard.stop.remote()
            refs = {n: s.wait.remote(POLL_S) for n, s in self.shards.items() if n not in summaries}
            for name, ref in refs.items():
                try:
                    summary = answer(ref, POLL_S + ASK_S)
                except (RayActorError, GetTimeoutError):  # restarting: it carries on from the store
                    continue
                if summary is not None:
                    summaries[name] = summary
            if self.scaler is not None:
                self.scaler.tick([r for r in self.replica_reports().values() if r is not None])
        return summaries

    def close(self) -> None:
        """End the shards and replicas for good (no restart), and wait (boundedly) until their names are
        free again, so that a cluster started next in this process can take them."""
        names = [
            *self.shards,
            *(replica_name(i) for i in range(len(self.scaler.replicas) if self.scaler else 0)),
        ]
        for actor in [*self.shards.values(), *(self.scaler.replicas if self.scaler else [])]:
            ray.kill(actor, no_restart=True)
        deadline = time.monotonic() + CLOSE_S
        while names and time.monotonic() < deadline:
            try:
                ray.get_actor(names[0])
                time.sleep(0.1)
            except ValueError:
                names.pop(0)


@dataclass
class ClusterPipeline:
    """What the API and ``run`` use of a pipeline, answered by the cluster's shards."""

    cluster: Cluster
    stats: None = None  # a single pipeline's stats: the shards report theirs (vision/cluster/metrics.py)
    _stop: threading.Event = field(default_factory=threading.Event)
    _views: dict[str, CameraView] = field(default_factory=dict)  # the last view each camera published
    _down: dict[str, float] = field(default_factory=dict)  # shard -> since when it does not answer
    _health: dict[str, CameraHealth] = field(default_factory=dict)
    _asked: dict[str, float] = field(default_factory=dict)  # what -> monotonic time it was last asked
    _members: dict[str, Any] = field(default_factory=dict)  # the last /healthz lines of shards and replicas
    _stats_at: float = field(default_factory=time.monotonic)  # when the last stats record was made

    def run(self, max_seconds: float | None = None) -> RunSummary:
        started = time.perf_counter()
        records = self.cluster.run(self._stop, max_seconds)
        summary = RunSummary()
        for record in records.values():
            if "failure" in record:
                log.error("a shard's pipeline failed: %s", record["failure"])
                continue
            for camera_id, stats in record["cameras"].items():
                summary.cameras[camera_id] = CameraStats(**stats)
            for kind, count in record["transitions"].items():
                summary.transitions[kind] = summary.transitions.get(kind, 0) + count
            summary.open_events += record["open_events"]
        summary.wall_seconds = time.perf_counter() - started
        return summary

    def stop(self) -> None:
        self._stop.set()

    def health(self) -> dict[str, CameraHealth]:
        """Every camera's health, asked of the shards at most every FRESH_S seconds."""
        if time.monotonic() - self._asked.get("health", -FRESH_S) >= FRESH_S:
            self._health = self._merge_health(self.cluster.ask("health"))
            self._asked["health"] = time.monotonic()
        return dict(self._health)

    def _merge_health(self, answers: dict[str, Any]) -> dict[str, CameraHealth]:
        now, merged = time.time(), {}
        for shard, cameras in self.cluster.assignment.items():
            if shard in answers:
                self._down.pop(shard, None)
                merged.update(answers[shard])
                continue
            since = self._down.setdefault(shard, now)
            for camera_id in cameras:
                merged[camera_id] = _unreachable(camera_id, shard, since)
        return merged

    def members(self) -> dict[str, Any]:
        """A line per shard and per replica (vision/cluster/members.py), asked at most every FRESH_S
        seconds."""
        if time.monotonic() - self._asked.get("members", -FRESH_S) >= FRESH_S:
            self._members = {
                "shards": shard_lines(self.cluster.ask("status"), self.cluster.assignment),
                "replicas": replica_lines(self.cluster.replica_reports()),
            }
            self._asked["members"] = time.monotonic()
        return self._members

    def stats_record(self) -> dict[str, Any]:
        """One ``run --jsonl`` stats record of every shard's cameras since the last one."""
        now = time.monotonic()
        interval, self._stats_at = now - self._stats_at, now
        return merge_stats(self.cluster.ask("stats"), self.cluster.assignment, interval)

    def views(self) -> dict[str, CameraView]:
        """Every camera's latest view (its newest frame too), asked at most every FRESH_S seconds."""
        if time.monotonic() - self._asked.get("views", -FRESH_S) >= FRESH_S:
            for views in self.cluster.ask("views").values():
                self._views.update(views)
            self._asked["views"] = time.monotonic()
        return dict(self._views)

    def update_camera(self, camera_id: str, camera: CameraConfig, wait: float = 10.0) -> None:
        """The edit, applied by the owning shard's pipeline (a rule it refuses raises ValueError here)."""
        shard = self.cluster.owner(camera_id)
        try:
            answer(shard.update_camera.remote(camera_id, camera), wait + ASK_S)
            self._views.update(answer(shard.views.remote()))
        except (RayActorError, GetTimeoutError) as exc:
            raise TimeoutError(f"camera {camera_id}: its shard did not take the edit: {exc}") from None

    def apply_reports(self, camera_id: str, wait: float = 10.0) -> None:
        try:
            answer(self.cluster.owner(camera_id).apply_reports.remote(camera_id), wait + ASK_S)
        except (RayActorError, GetTimeoutError) as exc:  # stored: the restarted shard applies it
            raise TimeoutError(f"camera {camera_id}: its shard did not take the report: {exc}") from None


def _unreachable(camera_id: str, shard: str, since: float) -> CameraHealth:
    """A camera whose shard does not answer: in error since the shard stopped answering."""
    return CameraHealth(
        camera_id, "", CameraState.ERROR, since, None, None, 0.0, 0.0, 0, 0, 0, 0, None, 0, 0,
        f"{shard} does not answer (Ray restarts it)",
    )  # fmt: skip


@dataclass
class ClusterRuntime:
    """The control plane's parts: the cluster, and the store, dispatcher and pruner of the whole cluster."""

    config: Config
    store: EventStore
    dispatcher: Dispatcher | None
    pruner: Pruner
    pipeline: ClusterPipeline
    cluster: Cluster
    lease: Lease  # on its cameras in the store, for its shards (vision/store/lease.py)

    @classmethod
    def build(cls, config: Config, config_path: Path) -> ClusterRuntime:
        assert config.cluster is not None
        # for its shards: a second service on one of these cameras is refused before anything starts
        lease = hold(config.storage, config.enabled_cameras, outbox=bool(config.dispatch.webhook_url))
        try:
            connect(config.cluster)
            webhook = bool(config.dispatch.webhook_url)
            store = open_store(config.storage, str(config_path), dispatch=webhook, any_thread=True, run=False)
            dispatcher = Dispatcher(store.another, config.dispatch) if webhook else None
            pruner = Pruner(store.another, config.storage)
            pruner.start()
            cluster = Cluster(config)
        except BaseException:
            lease.release()
            raise
        return cls(config, store, dispatcher, pruner, ClusterPipeline(cluster), cluster, lease)

    def close(self) -> None:
        """After the shards have stopped: the dispatcher, the pruner, the store, then the actors."""
        if self.dispatcher:
            self.dispatcher.stop()
        self.pruner.stop()
        self.store.close()
        self.cluster.close()
        self.lease.release()

    def write_heatmaps(self) -> None:
        """Each camera's heatmap as its shard last published it, as ``heatmaps/<camera>.png``."""
        heatmaps = self.config.storage.data_dir / "heatmaps"
        for camera_id, view in self.pipeline.views().items():  # the last ones, once the shards are gone
            png = view.heatmap_png()
            if png is not None:
                heatmaps.mkdir(parents=True, exist_ok=True)
                (heatmaps / f"{camera_id}.png").write_bytes(png)


def status(config: Config) -> dict[str, Any]:
    """Shards (node, cameras with state and lag, inference) and replicas of the running cluster, found by
    name in its namespace; a shard that does not answer is listed with its assigned cameras."""
    assert config.cluster is not None
    connect(config.cluster)
    ring = HashRing(shard_names(config.cluster.shards), config.cluster.virtual_nodes)
    assignment = ring.assign(config.enabled_cameras)
    nodes = {n["NodeID"]: n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")}
    shards = []
    for name, cameras in assignment.items():
        try:
            shards.append(answer(ray.get_actor(name).status.remote()))
        except (ValueError, RayActorError, GetTimeoutError) as exc:
            shards.append({"shard": name, "running": False, "failure": str(exc).splitlines()[0],
                           "cameras": dict.fromkeys(cameras)})  # fmt: skip
    replicas = []
    for replica in live_replicas(config.cluster.max_replicas):
        try:
            replicas.append(answer(replica.report.remote()))
        except (RayActorError, GetTimeoutError):
            continue
    for entry in [*shards, *replicas]:
        if "node" in entry:
            entry["address"] = nodes.get(entry["node"])
    return {"nodes": len(nodes), "shards": shards, "replicas": replicas}
