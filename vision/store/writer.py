"""One writer for the pipeline's store: what the cameras produce is committed in batches.

Inference and per-camera analysis never wait for the disk: they hand the writer jobs
(one frame's detections, a frame's transitions with the camera's state after them, a
checkpoint) and go on. The writer runs on the thread that owns the store handle and
commits everything that came within ``interval`` seconds in one transaction, so a
transition still commits together with its camera's state, and its callbacks (the
outbox's wake-up, ``--jsonl``) run only once it is committed. A job's files (snapshot
JPEGs) are written before the transaction that names them. The writer sleeps through a
batch's interval: a job wakes it only when it is the batch's first (one thread switch per
batch, not one per job); a read, a wake-up or a full queue wake it at once.

Reads that must see everything handed over before them (a camera restarting from its
committed state, the inbound reports not applied yet) go through :meth:`StoreWriter.call`,
which commits what is queued first. A job that fails is that camera's failure only: the
batch is committed again without it, the camera's later jobs of the same generation
(made by a unit that carried on from state that never committed) are dropped, and
``on_failure`` tells its owner. When no thread serves the writer (before and after a run)
a job runs at once in the caller's thread and a failure raises there.

A job with nothing to write (``apply`` None: a frame whose boxes are not kept, a frame the
motion gate held, a command's "done") only keeps its place in the order: its callback runs
once everything before it has committed, and a batch of such jobs alone opens no transaction.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vision.store.base import EventStore

INTERVAL = 0.1  # seconds of jobs per transaction
CAPACITY = 4096  # jobs queued at most: past it, the cameras' analysis waits for the disk


@dataclass
class Job:
    """One unit of work for the store: ``prepare`` (files, outside the transaction) returns what ``apply``
    (inside it) and ``after`` (once committed) need. ``camera`` and ``generation`` name who made it;
    ``apply`` None: nothing to write, only ``after`` in its turn."""

    camera: str | None
    generation: int
    pts: float
    apply: Callable[[EventStore, Any], None] | None
    prepare: Callable[[], Any] = lambda: None
    after: Callable[[Any], None] | None = None
    prepared: Any = None


@dataclass
class _Call:
    """A read run by the writer after what was queued before it."""

    read: Callable[[EventStore], Any]
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class StoreWriter:
    """Batches the pipeline's writes into one transaction per ``interval`` on the store's thread."""

    def __init__(
        self,
        store: EventStore,
        on_failure: Callable[[Job, Exception], None],
        interval: float = INTERVAL,
    ) -> None:
        self.store = store
        self.on_failure = on_failure
        self.interval = interval
        self.transactions = 0  # batches committed (for the benchmark)
        self._items: deque[Job | _Call | None] = deque()  # at most CAPACITY
        self._urgent = 0  # reads and wake-ups queued: each ends the batch at once
        lock = threading.Lock()
        self._ready = threading.Condition(lock)  # the writer waits on it, see _put
        self._room = threading.Condition(lock)  # callers wait on it while the queue is full
        self._serving = False
        self._failed: dict[str, int] = {}  # camera -> its generation whose jobs are dropped

    def submit(self, job: Job) -> None:
        """Hand over one job (run it now when nobody serves the writer)."""
        if self._serving:
            self._put(job)
            return
        job.prepared = job.prepare()
        if job.apply is not None:
            with self.store.sql.transaction():
                job.apply(self.store, job.prepared)
        if job.after:
            job.after(job.prepared)

    def call(self, read: Callable[[EventStore], Any]) -> Any:
        """``read(store)`` once everything handed over before has been committed; its result."""
        if not self._serving:
            return read(self.store)
        call = _Call(read)
        self._put(call)
        call.done.wait()
        if call.error is not None:
            raise call.error
        return call.result

    def wake(self) -> None:
        """Have :meth:`serve` look at its ``until`` now."""
        self._put(None)

    def _put(self, item: Job | _Call | None) -> None:
        """Queue ``item``, waking the writer only when it must look now: for the first item of a batch (the
        queue was empty), a read or a wake-up (they end the batch) or a full queue. The jobs in between
        wait for the batch's end, which the writer sleeps until, instead of a thread switch each."""
        with self._room:
            while len(self._items) >= CAPACITY:
                self._room.wait()
            self._items.append(item)
            urgent = not isinstance(item, Job)
            self._urgent += int(urgent)
            if urgent or len(self._items) in (1, CAPACITY):
                self._ready.notify()

    def _due(self) -> bool:
        return self._urgent > 0 or len(self._items) >= CAPACITY

    def start(self) -> None:
        """Queue jobs and reads from now on, for :meth:`serve` (call before the threads that hand them over
        start)."""
        self._serving = True

    def serve(self, until: Callable[[], bool]) -> None:
        """Commit what comes, in batches, until ``until()`` is true and nothing is left queued; then run
        jobs at once again. Runs on the store's thread, after :meth:`start`."""
        try:
            while True:
                batch, call = self._take()
                self._commit(batch)
                if call is not None:
                    self._read(call)
                if not batch and call is None and until() and not self._items:
                    return
        finally:
            self._serving = False
            self._failed.clear()

    def _take(self) -> tuple[list[Job], _Call | None]:
        """The jobs that come within ``interval`` of the first (up to a read or a wake-up, which end the
        batch): taken at the interval's end, or when a read, a wake-up or a full queue comes first."""
        with self._ready:
            if not self._ready.wait_for(lambda: self._items, self.interval):
                return [], None
            deadline = time.monotonic() + self.interval
            batch: list[Job] = []
            while True:
                early = self._ready.wait_for(self._due, deadline - time.monotonic())
                while self._items:
                    item = self._items.popleft()
                    if isinstance(item, Job):
                        batch.append(item)
                        continue
                    self._urgent -= 1
                    self._room.notify_all()
                    return batch, item
                self._room.notify_all()
                if not early:  # the interval is over
                    return batch, None

    def _read(self, call: _Call) -> None:
        try:
            call.result = call.read(self.store)
        except BaseException as exc:  # raised in the caller's thread
            call.error = exc
        call.done.set()

    def _commit(self, batch: list[Job]) -> None:
        """Prepare each job (a failure drops that job), commit them all in one transaction, then run their
        callbacks; if the transaction fails, commit them one by one so only the failing ones are lost. No
        transaction when none of them writes."""
        ready = [job for job in batch if self._live(job) and self._prepare(job)]
        if any(job.apply is not None for job in ready):
            try:
                with self.store.sql.transaction():
                    for job in ready:
                        if job.apply is not None:
                            job.apply(self.store, job.prepared)
            except Exception:
                ready = [job for job in ready if self._alone(job)]
            self.transactions += 1
        for job in ready:
            if job.after:
                try:
                    job.after(job.prepared)
                except Exception as exc:  # committed, but what reports it failed: its camera's failure
                    self._fail(job, exc)

    def _live(self, job: Job) -> bool:
        return job.camera is None or self._failed.get(job.camera) != job.generation

    def _prepare(self, job: Job) -> bool:
        try:
            job.prepared = job.prepare()
        except Exception as exc:
            self._fail(job, exc)
            return False
        return True

    def _alone(self, job: Job) -> bool:
        """Commit one job in its own transaction; False (its camera told) when it fails."""
        if not self._live(job):  # an earlier job of its camera failed
            return False
        if job.apply is None:
            return True
        try:
            with self.store.sql.transaction():
                job.apply(self.store, job.prepared)
        except Exception as exc:
            self._fail(job, exc)
            return False
        return True

    def _fail(self, job: Job, exc: Exception) -> None:
        if job.camera is not None:
            self._failed[job.camera] = job.generation
        self.on_failure(job, exc)
