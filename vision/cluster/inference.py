"""The shared detector: replica actors that batch frames from many shards.

A shard's :class:`~vision.detect.detector.Detector` keeps its cheap parts (checking
images, cutting regions into crops, merging boxes, class filters) and hands the model
run to :class:`ReplicaEngine`: the crops travel as numpy arrays through Ray's object
store (read without a copy by a replica on the same node) and only the boxes come back.
A replica gathers the requests that arrive within ``batch_wait`` seconds, up to
``batch_size`` frames, into one model call, run in a thread so that the next batch forms
during it. Replicas are named actors (``replica-<i>``); Ray restarts one that died and
retries the calls it had in flight. The control plane starts ``min_replicas`` and one more,
up to ``max_replicas``, while every replica is busy (:func:`scale`).

Plain actors rather than a Ray Serve deployment: they need no HTTP proxy or controller
(``ray[default]`` is enough), take ``num_gpus`` directly, and the batching is these few
lines (``benchmarks/cluster.md`` measures local and shared detection).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import ray

from vision.config import ClusterConfig, DetectorConfig
from vision.detect.detector import Detector
from vision.types import Detections

REFRESH_S = 5.0  # seconds between a shard's looks for replicas started since
CALL_TIMEOUT_S = 60.0  # a replica that answers nothing for this long fails the batch (the camera restarts)
BUSY_TO_GROW = 0.9  # share of the last interval every replica spent inferring before one more starts


def replica_name(index: int) -> str:
    return f"replica-{index}"


def replica_gpus(cluster: ClusterConfig, detector: DetectorConfig) -> float:
    """GPUs per replica: as configured, else one when the detector runs on a GPU."""
    if cluster.replica_gpus is not None:
        return cluster.replica_gpus
    return 1.0 if detector.device in ("cuda", "tensorrt") else 0.0


@dataclass
class ReplicaStats:
    """What one replica did since it started (its restarts start again at 0)."""

    name: str
    node: str
    batches: int = 0
    frames: int = 0
    busy_seconds: float = 0.0  # inside model calls
    queued: int = 0  # frames waiting now
    cpu_seconds: float = 0.0  # of the whole process since the model was loaded
    started: float = 0.0  # wall time


class DetectorReplica:
    """One copy of the model; an async Ray actor whose calls are batched together."""

    def __init__(self, name: str, detector: DetectorConfig, batch_size: int, batch_wait: float) -> None:
        self.engine = Detector.from_config(detector).engine
        self.batch_size, self.batch_wait = batch_size, batch_wait
        self.stats = ReplicaStats(name, ray.get_runtime_context().get_node_id(), started=time.time())
        self._pending: deque[tuple[list[np.ndarray], asyncio.Future[list[Detections]]]] = deque()
        self._wake: asyncio.Event | None = None
        self._batcher: asyncio.Task[None] | None = None  # started by the first call (it needs the loop)
        self._model = ThreadPoolExecutor(1, thread_name_prefix="model")
        self._cpu = time.process_time()

    async def infer(self, images: list[np.ndarray]) -> list[Detections]:
        """The engine's detections of ``images``, computed in a batch with other callers' frames."""
        loop = asyncio.get_running_loop()
        if self._wake is None:
            self._wake = asyncio.Event()
            self._batcher = loop.create_task(self._batches())
        future: asyncio.Future[list[Detections]] = loop.create_future()
        self._pending.append((images, future))
        self.stats.queued += len(images)
        self._wake.set()
        return await future

    def report(self) -> dict[str, Any]:
        self.stats.cpu_seconds = time.process_time() - self._cpu
        return asdict(self.stats)

    async def _batches(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._pending:
                continue
            if self.stats.queued < self.batch_size and self.batch_wait > 0:
                await asyncio.sleep(self.batch_wait)  # let other shards' frames join this batch
            taken: list[tuple[list[np.ndarray], asyncio.Future[list[Detections]]]] = []
            frames = 0
            while self._pending and (not taken or frames + len(self._pending[0][0]) <= self.batch_size):
                taken.append(self._pending.popleft())
                frames += len(taken[-1][0])
            self.stats.queued -= frames
            images = [image for request, _ in taken for image in request]
            started = time.perf_counter()
            try:
                found = await loop.run_in_executor(self._model, self.engine.infer, images)
            except Exception as exc:  # a bad frame: every caller of the batch hears it and retries alone
                for _, future in taken:
                    future.set_exception(exc)
            else:
                at = itertools.accumulate([0] + [len(request) for request, _ in taken])
                for (_, future), (start, end) in zip(taken, itertools.pairwise(at), strict=True):
                    future.set_result(found[start:end])
            self.stats.busy_seconds += time.perf_counter() - started
            self.stats.batches += 1
            self.stats.frames += frames
            if self._pending:
                self._wake.set()


class ReplicaEngine:
    """A shard's :class:`~vision.detect.detector.Engine` that runs the model on the replicas."""

    def __init__(self, count: int) -> None:
        self.count = count  # max_replicas: the names to look for
        self._replicas: list[Any] = []
        self._looked = 0.0
        self._turn = itertools.count()
        self._lock = threading.Lock()

    def infer(self, images: list[np.ndarray]) -> list[Detections]:
        replica = self._pick()
        return ray.get(replica.infer.remote(images), timeout=CALL_TIMEOUT_S)

    def _pick(self) -> Any:
        """The next replica in turn, looking up the ones started since every REFRESH_S seconds."""
        with self._lock:
            if not self._replicas or time.monotonic() - self._looked > REFRESH_S:
                self._replicas = live_replicas(self.count) or self._replicas
                self._looked = time.monotonic()
            if not self._replicas:
                raise RuntimeError("no detector replica is running (cluster.detector: shared)")
            return self._replicas[next(self._turn) % len(self._replicas)]


def live_replicas(count: int) -> list[Any]:
    """Handles of the replicas that exist now, by name."""
    found = []
    for index in range(count):
        with contextlib.suppress(ValueError):
            found.append(ray.get_actor(replica_name(index)))
    return found


def start_replica(index: int, cluster: ClusterConfig, detector: DetectorConfig) -> Any:
    """Start ``replica-<index>`` (tied to the calling process: it ends with the control plane)."""
    actor = ray.remote(DetectorReplica).options(
        name=replica_name(index),
        num_cpus=cluster.replica_cpus,
        num_gpus=replica_gpus(cluster, detector),
        max_restarts=cluster.max_restarts,
        max_task_retries=-1 if cluster.max_restarts else 0,
        max_concurrency=1000,
    )
    return actor.remote(replica_name(index), detector, cluster.batch_size, cluster.batch_wait)


class Scaler:
    """Grows the replicas from ``min_replicas`` up to ``max_replicas`` while all of them are busy.

    Replicas are not stopped again while the service runs: a shard's call in flight on one
    would fail its camera's frame."""

    def __init__(self, cluster: ClusterConfig, detector: DetectorConfig) -> None:
        self.cluster, self.detector = cluster, detector
        self.replicas = [start_replica(i, cluster, detector) for i in range(cluster.min_replicas)]
        self._busy: dict[str, float] = {}
        self._at = time.monotonic()

    def tick(self, reports: list[dict[str, Any]]) -> None:
        """With the replicas' reports of now: one more replica when each was busy most of the interval."""
        now = time.monotonic()
        interval, self._at = now - self._at, now
        shares = busy_shares(self._busy, reports, interval)
        self._busy = {r["name"]: r["busy_seconds"] for r in reports}
        if grows(shares, len(self.replicas), self.cluster.max_replicas):
            self.replicas.append(start_replica(len(self.replicas), self.cluster, self.detector))


def busy_shares(before: dict[str, float], reports: list[dict[str, Any]], interval: float) -> list[float]:
    """Each replica's share of ``interval`` spent inferring, from its busy seconds then (``before``) and
    now; a replica not seen before (new, or restarted) counts from now."""
    if interval <= 0:
        return [0.0 for _ in reports]
    return [(r["busy_seconds"] - before.get(r["name"], r["busy_seconds"])) / interval for r in reports]


def grows(shares: list[float], replicas: int, most: int) -> bool:
    """One more replica: every one of the ``replicas`` answered and was busy BUSY_TO_GROW of the time."""
    return replicas < most and len(shares) == replicas > 0 and min(shares) >= BUSY_TO_GROW
