"""The pipeline's store writer on a real SQLite store: jobs from other threads commit in batches (not one
transaction each), in order, with their callbacks after the commit; a job that cannot be stored loses only
its camera's jobs of that unit, the rest commit; a read sees everything handed over before it."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from vision.camera.unit import Snapshot
from vision.store import Store
from vision.store.writer import CAPACITY, Job, StoreWriter
from vision.types import Detections

FRAMES = 300
NAMES = {0: "person"}


def detections(n: int) -> Detections:
    xyxy = np.array([[10.0 * i, 10.0, 10.0 * i + 5, 20.0] for i in range(n)], np.float32)
    return Detections.from_arrays(xyxy, np.full(n, 0.9, np.float32), np.zeros(n, np.int32))


def frame_job(camera: str, pts: float, committed: list[tuple[str, float]], generation: int = 0) -> Job:
    return Job(
        camera,
        generation,
        pts,
        lambda store, _: store.add_detections(camera, pts, detections(2), NAMES),
        after=lambda _: committed.append((camera, pts)),
    )


def serve_while(writer: StoreWriter, produce: Callable[[], None]) -> None:
    """Serve the writer on this thread (the store's) while ``produce`` hands it jobs from another."""
    done = threading.Event()

    def run() -> None:
        try:
            produce()
        finally:
            done.set()
            writer.wake()

    thread = threading.Thread(target=run)
    writer.start()
    thread.start()
    writer.serve(until=done.is_set)
    thread.join()


def stored(path: Path) -> list[tuple[str, float]]:
    with sqlite3.connect(path / "street-vision.sqlite") as db:
        return db.execute("SELECT DISTINCT camera, pts FROM detections ORDER BY camera, pts").fetchall()


def test_jobs_of_other_threads_commit_in_batches_in_order(tmp_path: Path) -> None:
    store = Store(tmp_path, "test")
    failures: list[tuple[Job, Exception]] = []
    writer = StoreWriter(store, lambda job, exc: failures.append((job, exc)))
    committed: list[tuple[str, float]] = []
    seen_by_read: list[int] = []

    def produce() -> None:
        for i in range(FRAMES):
            writer.submit(frame_job("a", i / 10, committed))
        # a read waits for everything handed over before it
        seen_by_read.append(writer.call(lambda s: len(s.sql.execute("SELECT pts FROM detections").rows)))

    serve_while(writer, produce)
    store.close()

    assert not failures
    assert committed == [("a", i / 10) for i in range(FRAMES)]  # every one, in order, after its commit
    assert stored(tmp_path) == committed
    assert seen_by_read == [2 * FRAMES]
    assert 1 <= writer.transactions < FRAMES / 5  # batches, not a transaction per frame


def test_a_job_that_cannot_be_stored_fails_its_camera_only(tmp_path: Path) -> None:
    store = Store(tmp_path, "test")
    failures: list[tuple[Job, Exception]] = []
    writer = StoreWriter(store, lambda job, exc: failures.append((job, exc)))
    committed: list[tuple[str, float]] = []
    unstorable = Snapshot({"camera": "bad", "pts": 1.0, "memory": {1, 2}})  # a set is not JSON

    def produce() -> None:
        for i in range(20):
            writer.submit(frame_job("good", i, committed))
            writer.submit(frame_job("bad", i, committed))
            if i == 5:
                writer.submit(Job("bad", 0, i, lambda s, _: s.checkpoint("bad", unstorable)))
        writer.submit(frame_job("bad", 99, committed, generation=1))  # the restarted unit's

    serve_while(writer, produce)
    store.close()

    assert [(job.camera, job.pts) for job, _ in failures] == [("bad", 5)]
    assert isinstance(failures[0][1], TypeError)
    assert [pts for camera, pts in stored(tmp_path) if camera == "good"] == list(range(20))
    # the failed unit's frames up to its failure, none after it; the restarted unit's
    assert [pts for camera, pts in stored(tmp_path) if camera == "bad"] == [*range(6), 99]
    assert sorted(committed) == stored(tmp_path)  # callbacks for what committed, only


def test_without_a_serving_thread_a_job_runs_at_once_and_raises(tmp_path: Path) -> None:
    store = Store(tmp_path, "test")
    writer = StoreWriter(store, lambda job, exc: None)
    committed: list[tuple[str, float]] = []
    writer.submit(frame_job("a", 1.0, committed))
    assert committed == [("a", 1.0)] and stored(tmp_path) == [("a", 1.0)]
    unstorable = Snapshot({"camera": "a", "pts": 1.0, "memory": {1}})
    with pytest.raises(TypeError):
        writer.submit(Job("a", 0, 2.0, lambda s, _: s.checkpoint("a", unstorable)))
    store.close()


def test_jobs_with_nothing_to_write_open_no_transaction(tmp_path: Path) -> None:
    """A frame whose boxes are not kept, or that the motion gate held, hands the writer a job with nothing
    to write: it keeps its place in the order (its callback after everything before it committed) but
    opens no transaction, so such jobs go through even while another process holds the write lock."""
    store = Store(tmp_path, "test")
    store.db.execute("PRAGMA busy_timeout = 200")  # a transaction would fail at once, not wait 10 s
    failures: list[tuple[Job, Exception]] = []
    writer = StoreWriter(store, lambda job, exc: failures.append((job, exc)))
    done: list[tuple[str, float]] = []

    def nothing(pts: float) -> Job:
        return Job("a", 0, pts, None, after=lambda _: done.append(("a", pts)))

    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the file
    writer.submit(nothing(0.0))  # nobody serves the writer yet: at once
    serve_while(writer, lambda: [writer.submit(nothing(i / 10)) for i in range(1, FRAMES)])
    other.execute("ROLLBACK")
    other.close()
    assert not failures and writer.transactions == 0
    assert done == [("a", i / 10) for i in range(FRAMES)]

    # between jobs that write: still in order, each callback after the commit of what came before it
    done.clear()

    def produce() -> None:
        for i in range(FRAMES):
            writer.submit(frame_job("a", i / 10, done) if i % 10 == 0 else nothing(i / 10))

    serve_while(writer, produce)
    store.close()
    assert not failures and done == [("a", i / 10) for i in range(FRAMES)]
    assert stored(tmp_path) == [("a", i / 10) for i in range(0, FRAMES, 10)]
    assert 1 <= writer.transactions <= FRAMES // 10


def voluntary_switches() -> int:
    """How often this thread has blocked (waited for a lock, a condition, the disk) so far."""
    status = Path(f"/proc/self/task/{threading.get_native_id()}/status").read_text()
    return int(
        next(line for line in status.splitlines() if line.startswith("voluntary_ctxt_switches")).split()[1]
    )


def test_the_writer_wakes_once_per_batch_not_once_per_job(tmp_path: Path) -> None:
    """Jobs handed over one by one (a camera's frames come apart in time) wake the writer for the first of
    a batch only: the rest wait in the queue for the batch's end. Woken for every job, the writer blocked
    and switched back in 299 times for these 300 jobs; now about twice per transaction."""
    store = Store(tmp_path, "test")
    writer = StoreWriter(store, lambda job, exc: None)
    committed: list[tuple[str, float]] = []

    def produce() -> None:
        for i in range(FRAMES):
            writer.submit(frame_job("a", i / 10, committed))
            time.sleep(0.002)

    before = voluntary_switches()
    serve_while(writer, produce)
    switches = voluntary_switches() - before
    store.close()
    assert committed == [("a", i / 10) for i in range(FRAMES)] and stored(tmp_path) == committed
    assert switches < FRAMES / 3, (switches, writer.transactions)


def test_a_read_and_a_full_queue_do_not_wait_for_the_batch_to_end(tmp_path: Path) -> None:
    """The writer sleeps until a batch's end, but a full queue wakes it (the cameras must not wait the
    interval out) and so does a read (it returns once what came before it commits), so with a minute's
    interval everything is still committed and read back in seconds."""
    store = Store(tmp_path, "test")
    writer = StoreWriter(store, lambda job, exc: None, interval=60)
    committed: list[tuple[str, float]] = []
    seen_by_read: list[int] = []
    jobs = CAPACITY + 100

    def produce() -> None:
        for i in range(jobs):
            writer.submit(frame_job("a", i, committed))
        seen_by_read.append(writer.call(lambda s: len(s.sql.execute("SELECT pts FROM detections").rows)))

    started = time.monotonic()
    serve_while(writer, produce)
    store.close()
    assert time.monotonic() - started < 30  # not the interval (a few seconds of SQL)
    assert seen_by_read == [2 * jobs] and committed == [("a", i) for i in range(jobs)]
    assert writer.transactions == 1  # one batch: the full queue emptied into it, the read ended it
