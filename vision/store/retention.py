"""Retention: what the store may forget, and a background pruner that forgets it in small bites.

Retention is about disk, so ages are wall-clock: detection rows carry ``recorded_at``,
events ``updated_at`` (Unix seconds; rows from before those columns count from their
run's start), delivered messages ``delivered_at``, snapshot pictures their mtime (the clips
beside them too, whose rows go with their files). What
a ticket still needs is never deleted: an event that is not resolved, with its
transitions and the pictures of its latest transition; any message not delivered
(pending or dead), with the event and transitions it belongs to.

Each batch is one short write transaction followed by a pause at least as long, so
the pipeline's writes wait at most one batch. SQLite stores created by this version have
``auto_vacuum=INCREMENTAL`` (see :mod:`vision.db`): freed pages are handed back to the
file system after each pass, so the files shrink; an older store reuses its freed
pages (it stops growing) until ``street-vision store prune CONFIG --vacuum`` rewrites it.
PostgreSQL's autovacuum makes the space of deleted rows reusable by itself.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from vision.config import StorageConfig

if TYPE_CHECKING:
    from vision.store.base import EventStore, StoreOpener

log = logging.getLogger(__name__)

# Every table keyed by event_id: a pruned event's rows go from all of them (events last).
EVENT_TABLES = ("clips", "reports", "remote_tickets", "outbox", "transitions", "events")
BATCH_ROWS = 2000  # detection or outbox rows per write transaction
EVENTS_PER_BATCH = 200  # closed events per write transaction (each with a few transitions and messages)
VACUUM_PAGES = 2000  # pages handed back per write transaction (8 MB with 4 KiB pages)
MIN_PAUSE_S = 0.05  # longer than SQLite's busy-wait steps early on, so a waiting writer gets in
ORPHAN_GRACE_S = 60.0  # a snapshot folder is written just before its event is committed
SNAPSHOTS = "snapshots"
CLIP_SUFFIX = ".mp4"  # clips live beside the snapshots (vision/events/clips.py) and go with them

_CLOSED = (
    "state = 'resolved' AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.event_id = events.event_id "
    "AND o.status != 'delivered')"
)


@dataclass
class Pruned:
    """What one pass (or a pruner's whole life) removed."""

    detections: int = 0
    outbox: int = 0  # delivered messages
    events: int = 0  # closed events, each with its transitions, messages and remote ticket id
    transitions: int = 0
    snapshots: int = 0  # snapshot pictures (JPEG files)
    clips: int = 0  # clips around transitions (MP4 files, with their rows)

    def add(self, other: Pruned) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def to_record(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def describe(self) -> str:
        return ", ".join(f"{n} {what}" for what, n in self.to_record().items())


@dataclass
class Cost:
    """Write transactions the pruner took: how many, their total and longest seconds (what a writer waits)."""

    batches: int = 0
    seconds: float = 0.0
    longest: float = 0.0

    def add(self, seconds: float) -> None:
        self.batches += 1
        self.seconds += seconds
        self.longest = max(self.longest, seconds)


@dataclass(frozen=True, slots=True)
class Sizes:
    """Bytes on disk: the database file with its WAL, and the snapshot pictures."""

    database: int
    snapshots: int

    @property
    def total(self) -> int:
        return self.database + self.snapshots


@dataclass
class _Folder:
    """One event's snapshot folder and its pictures: (name, mtime, bytes)."""

    event_id: str
    files: list[tuple[str, float, int]]

    @property
    def mtime(self) -> float:
        return max((f[1] for f in self.files), default=0.0)

    @property
    def bytes(self) -> int:
        return sum(f[2] for f in self.files)


class Retention:
    """One pruning pass over one store, on a handle of the caller's thread."""

    def __init__(self, store: EventStore, config: StorageConfig, stop: threading.Event | None = None) -> None:
        self.store = store
        self.db = store.sql
        self.config = config
        self.snapshot_dir = config.data_dir / SNAPSHOTS
        self._clips_gone: list[str] = []  # clip files removed this pass, as their rows name them
        self.stop = stop or threading.Event()
        self.cost = Cost()
        self.sizes = Sizes(store.database_bytes(), 0)
        # ages in wall-clock seconds; rows from before those columns count from their run's start
        started = self.db.dialect.epoch("r.started_at")
        run_start = f"(SELECT {started} FROM runs r WHERE r.run_id = {{}}.run_id)"
        self._detection_age = f"COALESCE(recorded_at, {run_start.format('detections')})"
        self._event_age = f"COALESCE(updated_at, {run_start.format('events')})"

    def prune(self, now: float | None = None) -> Pruned:
        """Remove what is past its retention, then the oldest until under ``max_bytes``; hand pages back."""
        now = time.time() if now is None else now
        keep = self.config.retention
        pruned = Pruned()
        if keep.detections is not None:
            pruned.detections += self._batches(lambda: self._detections(now - keep.detections))
        if keep.delivered_outbox is not None:
            pruned.outbox += self._batches(lambda: self._delivered(now - keep.delivered_outbox))
        if keep.closed_events is not None:
            self._closed_events(now - keep.closed_events, pruned)
        folders = self._folders()
        if keep.snapshots is not None:
            pruned.snapshots += self._expire_pictures(folders, now - keep.snapshots)
        if self.config.max_bytes is not None:
            self._cap(self.config.max_bytes, folders, now, pruned)
        pruned.clips += self._forget_clips()
        if any(pruned.to_record().values()):
            self._vacuum()
        self.sizes = Sizes(self.store.database_bytes(), sum(f.bytes for f in folders))
        return pruned

    def _batches(
        self, batch: Callable[[], int], full: int = BATCH_ROWS, until: Callable[[], bool] = lambda: False
    ) -> int:
        """Run ``batch`` (rows removed, at most ``full``) in short transactions until it runs dry."""
        removed = 0
        while not self.stop.is_set() and not until():
            started = time.perf_counter()
            with self.db.transaction():
                n = batch()
            took = time.perf_counter() - started
            self.cost.add(took)
            removed += n
            if n < full:
                break
            self.stop.wait(max(MIN_PAUSE_S, took))
        return removed

    def _detections(self, cutoff: float) -> int:
        """The oldest rows (by insertion) that are older than ``cutoff``: no index on the biggest table."""
        rowid = self.db.dialect.rowid
        return self.db.execute(
            f"DELETE FROM detections WHERE {rowid} IN "
            f"(SELECT {rowid} FROM detections ORDER BY {rowid} LIMIT ?) AND {self._detection_age} < ?",
            (BATCH_ROWS, cutoff),
        ).rowcount

    def _delivered(self, cutoff: float) -> int:
        """Delivered messages older than ``cutoff``, but each event's last at each target: the next one
        numbers from it."""
        return self.db.execute(
            "DELETE FROM outbox WHERE id IN (SELECT o.id FROM outbox o WHERE o.status = 'delivered' "
            f"AND o.delivered_at < {self.db.dialect.iso('?')} "
            "AND o.event_seq < (SELECT MAX(p.event_seq) FROM outbox p WHERE p.event_id = o.event_id "
            "AND p.target = o.target) ORDER BY o.id LIMIT ?)",
            (cutoff, BATCH_ROWS),
        ).rowcount

    def _closed_events(
        self, cutoff: float, pruned: Pruned, until: Callable[[], bool] = lambda: False
    ) -> None:
        """Resolved events last changed before ``cutoff``, oldest first, with every row keyed by them."""

        def batch() -> int:  # events removed
            ids = [
                row[0]
                for row in self.db.execute(
                    f"SELECT event_id FROM events WHERE {_CLOSED} AND {self._event_age} < ? "
                    f"ORDER BY {self._event_age} LIMIT ?",
                    (cutoff, EVENTS_PER_BATCH),
                )
            ]
            marks = ",".join("?" * len(ids))
            for table in EVENT_TABLES if ids else ():
                n = self.db.execute(f"DELETE FROM {table} WHERE event_id IN ({marks})", ids).rowcount
                if table == "transitions":
                    pruned.transitions += n
            return len(ids)

        pruned.events += self._batches(batch, EVENTS_PER_BATCH, until)

    def _folders(self) -> list[_Folder]:
        """Snapshot folders with their pictures, oldest last picture first."""
        found = []
        try:
            entries = list(os.scandir(self.snapshot_dir))
        except FileNotFoundError:
            return []
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                files = []
                for f in os.scandir(entry.path):
                    if f.is_file(follow_symlinks=False):
                        stat = f.stat()
                        files.append((f.name, stat.st_mtime, stat.st_size))
                found.append(_Folder(entry.name, files))
        return sorted(found, key=lambda f: f.mtime)

    def _not_resolved(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT event_id FROM events WHERE state != 'resolved'")}

    def _expire_pictures(self, folders: list[_Folder], cutoff: float) -> int:
        """Pictures taken before ``cutoff``; an event not resolved keeps those of its latest transition.

        ``folders`` loses what is removed, so it always says what is left on disk.
        """
        open_ids = self._not_resolved()
        removed = 0
        for folder in folders:
            latest = max(map(_transition_pts, (f[0] for f in folder.files)), default=None)
            old = [
                f
                for f in folder.files
                if f[1] < cutoff and not (folder.event_id in open_ids and _transition_pts(f[0]) == latest)
            ]
            for name, _, _ in old:
                (self.snapshot_dir / folder.event_id / name).unlink(missing_ok=True)
            folder.files = [f for f in folder.files if f not in old]
            removed += self._pictures(folder.event_id, [name for name, _, _ in old])
            if not folder.files:
                with contextlib.suppress(OSError):  # not empty: a reopen has just written to it
                    (self.snapshot_dir / folder.event_id).rmdir()
        folders[:] = [f for f in folders if f.files]
        return removed

    def _remove_folders(self, folders: list[_Folder], enough: Callable[[], bool], spare: set[str]) -> int:
        """Whole folders of events not open (nor in ``spare``), oldest first, until ``enough``."""
        keep = self._not_resolved() | spare
        removed = 0
        for folder in list(folders):
            if enough() or self.stop.is_set():
                break
            if folder.event_id in keep:
                continue
            shutil.rmtree(self.snapshot_dir / folder.event_id, ignore_errors=True)
            folders.remove(folder)
            removed += self._pictures(folder.event_id, [name for name, _, _ in folder.files])
        return removed

    def _pictures(self, event_id: str, names: list[str]) -> int:
        """How many of the files removed from an event's folder are pictures; its clips are noted."""
        clips = [f"{SNAPSHOTS}/{event_id}/{n}" for n in names if n.endswith(CLIP_SUFFIX)]
        self._clips_gone += clips
        return len(names) - len(clips)

    def _forget_clips(self) -> int:
        """Drop the rows of the clip files removed this pass; how many files there were."""
        gone, self._clips_gone = self._clips_gone, []
        for start in range(0, len(gone), BATCH_ROWS):
            part = gone[start : start + BATCH_ROWS]
            started = time.perf_counter()
            with self.db.transaction():
                self.db.execute(f"DELETE FROM clips WHERE file IN ({','.join('?' * len(part))})", part)
            self.cost.add(time.perf_counter() - started)
        return len(gone)

    def _cap(self, cap: int, folders: list[_Folder], now: float, pruned: Pruned) -> None:
        """Oldest first until under ``cap``: detections, snapshots of closed events, closed events."""

        def under() -> bool:
            return self.store.used_bytes() + sum(f.bytes for f in folders) <= cap

        if under():
            return
        pruned.detections += self._batches(lambda: self._detections(math.inf), until=under)
        # a folder not yet in the store may belong to an event being committed: only older ones go
        known = {row[0] for row in self.db.execute("SELECT event_id FROM events")}
        fresh = {f.event_id for f in folders if f.event_id not in known and f.mtime >= now - ORPHAN_GRACE_S}
        pruned.snapshots += self._remove_folders(folders, under, fresh)
        self._closed_events(math.inf, pruned, under)
        if not under():
            log.warning(
                "store is over storage.max_bytes (%d bytes) with only open events, undelivered messages "
                "and their snapshots left: nothing more may be pruned",
                cap,
            )

    def _vacuum(self) -> None:
        """Hand free pages back, VACUUM_PAGES per transaction (the file shrinks at the next checkpoint)."""
        if not self.store.shrinks:
            return
        while not self.stop.is_set():
            started = time.perf_counter()
            if not self.store.free_pages(VACUUM_PAGES):
                break
            took = time.perf_counter() - started
            self.cost.add(took)
            self.stop.wait(max(MIN_PAUSE_S, took))
        self.store.settle()


@dataclass
class PrunerStats:
    """What the pruner did since it started, read by ``/metrics`` from another thread."""

    pruned: Pruned = field(default_factory=Pruned)
    cost: Cost = field(default_factory=Cost)
    sizes: Sizes | None = None
    passes: int = 0


class Pruner:
    """Prunes one store every ``retention.interval`` wall-clock seconds, on its own thread and connection."""

    def __init__(self, open_store: StoreOpener, config: StorageConfig) -> None:
        self.open_store = open_store  # called in the pruner's thread
        self.config = config
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stats = PrunerStats()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pruner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the batch in flight (one short transaction)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30.0)

    def stats(self) -> PrunerStats:
        with self._lock:
            return PrunerStats(
                Pruned(**self._stats.pruned.to_record()),
                Cost(self._stats.cost.batches, self._stats.cost.seconds, self._stats.cost.longest),
                self._stats.sizes,
                self._stats.passes,
            )

    def _run(self) -> None:
        store = self.open_store()
        try:
            retention = Retention(store, self.config, self._stop)
            if not store.shrinks:
                log.info(
                    "store %s was created before retention: freed space is reused but the file does not "
                    "shrink; `street-vision store prune CONFIG --vacuum` (service stopped) rewrites it",
                    store.location,
                )
            while not self._stop.is_set():
                try:
                    pruned = retention.prune()
                except (*store.sql.errors, OSError):  # a locked store, an unreadable folder: next pass
                    log.exception("pruner: cannot prune %s", store.location)
                    pruned = Pruned()
                with self._lock:
                    self._stats.pruned.add(pruned)
                    self._stats.cost = retention.cost
                    self._stats.sizes = retention.sizes
                    self._stats.passes += 1
                if any(pruned.to_record().values()):
                    log.info("pruned %s", pruned.describe())
                self._stop.wait(self.config.retention.interval)
        finally:
            store.close()


def _transition_pts(name: str) -> float:
    """The stream time in a picture's name (``<pts>-<transition>[-annotated].jpg``): its transition."""
    try:
        return float(name.split("-", 1)[0])
    except ValueError:
        return -math.inf
