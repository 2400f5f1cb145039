"""A camera shard: the single-process pipeline over the cameras the hash ring gives one shard.

The shard is a Ray actor. Its constructor builds a :class:`~vision.pipeline.Pipeline` over
the config restricted to its cameras, with the shared PostgreSQL store, and runs it in a
thread: the pipeline restores each camera's snapshot and open events from the store before
its first frame. When the actor dies (its process killed, its node lost), Ray runs the
constructor again, on any node with room (``max_restarts``), so a restarted shard carries
on the same tickets exactly as a restarted ``street-vision run`` does. Zone edits and
inbound reports come as actor method calls and go through the pipeline's commands.

Delivering the outbox and pruning are the control plane's (one dispatcher, one pruner for
the whole store); a shard only writes.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any

import ray

from vision.camera.view import CameraView
from vision.cluster.inference import ReplicaEngine
from vision.cluster.ring import HashRing, shard_names
from vision.config import CameraConfig, Config
from vision.detect.detector import Detector
from vision.ingest.health import CameraHealth
from vision.pipeline import Pipeline
from vision.stats import StatsWindow
from vision.store import EventStore, open_store

log = logging.getLogger("vision.cluster")


def shard_config(config: Config, ring: HashRing, shard: str) -> Config:
    """``config`` with only the cameras ``shard`` owns (disabled ones too: their open events are its)."""
    cameras = {k: v for k, v in config.cameras.items() if ring.owner(k) == shard}
    return config.model_copy(update={"cameras": cameras, "cluster": None})


class ShardStore:
    """The shared store as one shard sees it: :meth:`cameras` lists only the cameras the shard owns, so
    its pipeline closes (camera removed or disabled) only its own cameras' open events, never those of
    a camera another shard runs. Everything else is the store itself."""

    def __init__(self, store: EventStore, ring: HashRing, shard: str) -> None:
        self._store, self._ring, self._shard = store, ring, shard

    def cameras(self) -> set[str]:
        return {c for c in self._store.cameras() if self._ring.owner(c) == self._shard}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class Shard:
    """One shard's cameras end to end up to the store, run by a Ray actor (see :func:`start_shard`)."""

    def __init__(self, config: Config, shard: str) -> None:
        _log_to_stderr(shard)
        cluster = config.cluster
        assert cluster is not None, "a shard runs a config with a cluster section"
        self.name = shard
        ring = HashRing(shard_names(cluster.shards), cluster.virtual_nodes)
        self.config = shard_config(config, ring, shard)
        self.engine = ReplicaEngine(cluster.max_replicas) if cluster.detector == "shared" else None
        detector = Detector.from_config(config.detector, self.engine)
        store = open_store(config.storage, None, dispatch=bool(config.dispatch.webhook_url), any_thread=True)
        self.store = store
        self.pipeline = Pipeline(
            self.config, detector, ShardStore(store, ring, shard), on_inference=self._inferred
        )
        self.started = time.time()
        self.window = StatsWindow(self.pipeline.stats, self.pipeline.health)
        self.inference = {"calls": 0, "frames": 0, "seconds": 0.0}
        self.summary: dict[str, Any] | None = None
        self.failure: str | None = None
        self.ran: list[float | None] = [None, None]  # wall times the pipeline started and ended
        self.cpu: list[float | None] = [None, None]  # the process's CPU seconds then
        self._thread = threading.Thread(target=self._run, name=f"{shard}-pipeline", daemon=True)
        self._thread.start()
        log.info("%s: running camera(s): %s", shard, ", ".join(self.pipeline.views()) or "none")

    def _run(self) -> None:
        self.ran[0], self.cpu[0] = time.time(), time.process_time()
        try:
            self.summary = self.pipeline.run()
        except Exception as exc:  # the shard reports it; the control plane logs it with the shard's name
            log.exception("%s: pipeline failed", self.name)
            self.failure = f"{type(exc).__name__}: {exc}"
        finally:
            self.ran[1], self.cpu[1] = time.time(), time.process_time()
            self.store.close()

    def _inferred(self, seconds: float, frames: int) -> None:
        self.inference["calls"] += 1
        self.inference["frames"] += frames
        self.inference["seconds"] += seconds

    def status(self) -> dict[str, Any]:
        """Where the shard runs and how it is doing: node, pid, cameras with their lag, inference."""
        health = self.pipeline.health()
        return {
            "shard": self.name,
            "node": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid(),
            "started": self.started,
            "running": self._thread.is_alive(),
            "ran": list(self.ran),
            "cpu_seconds": _spent(self.cpu),
            "failure": self.failure,
            "cameras": {k: {"state": h.state.value, "lag": h.lag} for k, h in health.items()},
            "inference": {**self.inference, "resent": self.engine.resent if self.engine else 0},
        }

    def stats(self) -> dict[str, Any]:
        """What the shard's cameras did since the control plane last asked (a ``run --jsonl`` stats
        record, vision/stats.py); a restarted shard counts from its restart."""
        return self.window.record()

    def health(self) -> dict[str, CameraHealth]:
        return self.pipeline.health()

    def views(self) -> dict[str, CameraView]:
        return self.pipeline.views()

    def update_camera(self, camera_id: str, camera: CameraConfig) -> None:
        self.pipeline.update_camera(camera_id, camera)

    def apply_reports(self, camera_id: str) -> None:
        self.pipeline.apply_reports(camera_id)

    def stop(self) -> None:
        self.pipeline.stop()

    def wait(self, seconds: float) -> dict[str, Any] | None:
        """The run's summary once the pipeline has ended (within ``seconds``), else None."""
        self._thread.join(seconds)
        if self._thread.is_alive():
            return None
        if self.summary is None:
            return {"failure": self.failure or "the pipeline ended without a summary"}
        return self.summary.to_record()


def _spent(cpu: list[float | None]) -> float | None:
    """CPU seconds of the process (all its threads: readers, pipeline, Ray's) while the pipeline ran."""
    if cpu[0] is None:
        return None
    return (cpu[1] if cpu[1] is not None else time.process_time()) - cpu[0]


def _log_to_stderr(shard: str) -> None:
    """A Ray worker starts with no handler: the shard's log lines go to its stderr (shown by the driver)."""
    logger = logging.getLogger("vision")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {shard} %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # Ray's own root handler would print every line twice


def start_shard(config: Config, shard: str) -> Any:
    """Start the ``shard`` actor (tied to the calling process) that Ray restarts when it dies."""
    cluster = config.cluster
    assert cluster is not None
    actor = ray.remote(Shard).options(
        name=shard,
        num_cpus=cluster.shard_cpus,
        max_restarts=cluster.max_restarts,
        max_concurrency=8,  # wait() blocks while health, views and edits are answered
    )
    return actor.remote(config, shard)
