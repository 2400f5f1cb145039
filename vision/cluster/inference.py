"""The shared detector: replica actors that batch frames from many shards.

A shard's :class:`~vision.detect.detector.Detector` keeps its cheap parts (checking
images, cutting regions into crops, merging boxes, class filters) and hands the model
run to :class:`ReplicaEngine`: the crops travel as numpy arrays through Ray's object
store (read without a copy by a replica on the same node) and only the boxes come back.
A replica gathers the requests that arrive within ``batch_wait`` seconds, up to
``batch_size`` frames, into one model call, run in a thread so that the next batch forms
during it. Replicas are named actors (``replica-<i>``); Ray restarts one that died and
retries the calls it had in flight; a call on a replica that is gone for good (stopped by
the control plane's :class:`~vision.cluster.scaling.Scaler`, or out of restarts) is sent
again to a live one.

Plain actors rather than a Ray Serve deployment: they need no HTTP proxy or controller
(``ray[default]`` is enough), take ``num_gpus`` directly, and the batching is these few
lines (``benchmarks/cluster.md`` measures local and shared detection).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import ray
from ray.exceptions import RayActorError

from vision.config import ClusterConfig, DetectorConfig
from vision.detect.detector import Detector
from vision.types import Detections

REFRESH_S = 5.0  # seconds between a shard's looks for replicas started since
CALL_TIMEOUT_S = 60.0  # a call answered by no replica for this long fails the batch (the camera restarts)
AGAIN_S = 0.2  # seconds between two tries when no live replica is found
log = logging.getLogger("vision.cluster")


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
    pid: int
    batches: int = 0
    frames: int = 0
    busy_seconds: float = 0.0  # inside model calls
    queued: int = 0  # frames waiting now
    cpu_seconds: float = 0.0  # of the whole process since the model was loaded
    started: float = 0.0  # wall time


class DetectorReplica:
    """One copy of the model; an async Ray actor whose calls are batched together."""

    def __init__(self, name: str, detector: DetectorConfig, batch_size: int, batch_wait: float) -> None:
        # one call at a time (its one model thread), spread over every core as configured
        self.engine = Detector.from_config(detector.model_copy(update={"parallel": 1})).engine
        self.batch_size, self.batch_wait = batch_size, batch_wait
        self.stats = ReplicaStats(
            name, ray.get_runtime_context().get_node_id(), os.getpid(), started=time.time()
        )
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
        self.resent = 0  # calls sent again because their replica was gone for good
        self._replicas: list[Any] = []
        self._looked = 0.0
        self._turn = itertools.count()
        self._lock = threading.Lock()

    def infer(self, images: list[np.ndarray]) -> list[Detections]:
        """The detections of ``images`` from the next replica in turn. Ray itself sends a call again to a
        replica it restarts; one gone for good (stopped as the replicas shrink, out of restarts, its
        node lost) fails the call here, and it goes to another live replica, until CALL_TIMEOUT_S."""
        deadline = time.monotonic() + CALL_TIMEOUT_S
        while True:
            replica = self._pick(deadline)
            try:
                return ray.get(replica.infer.remote(images), timeout=max(0.0, deadline - time.monotonic()))
            except RayActorError as exc:
                if time.monotonic() >= deadline:
                    raise
                log.info("a detector replica is gone (%s); sending its call to another", type(exc).__name__)
                with self._lock:
                    self.resent += 1
                    self._replicas = [r for r in self._replicas if r is not replica]
                    self._looked = 0.0  # look the live ones up again now

    def _pick(self, deadline: float) -> Any:
        """The next replica in turn, looking up the ones started or stopped since every REFRESH_S seconds
        (and at once after a call failed); while none is found, looking again until ``deadline``."""
        while True:
            with self._lock:
                if not self._replicas or time.monotonic() - self._looked > REFRESH_S:
                    self._replicas = live_replicas(self.count)
                    self._looked = time.monotonic()
                if self._replicas:
                    return self._replicas[next(self._turn) % len(self._replicas)]
            if time.monotonic() >= deadline:
                raise RuntimeError("no detector replica is running (cluster.detector: shared)")
            time.sleep(AGAIN_S)


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
