"""SQLite connections shared by the store, the dispatcher and the reference receiver.

WAL lets one writer and many readers work at once (pipeline, dispatcher thread, CLI,
API); ``synchronous=NORMAL`` keeps every committed transaction through a process
crash (SIGKILL), which is what the outbox promises.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_S = 10.0
# a new file's page size: a checkpoint rewrites its camera's arrays (~320 KB at 640x360), and the WAL's
# commit costs per page: 8 KiB pages cut the store's SQL at 100 capacity cameras by ~1/5 against 4 KiB
# (benchmarks/store_pages.md); 16 KiB would cut more but an empty store takes 426 KB then (115 KB)
PAGE_BYTES = 8192
# freed pages are not zeroed (rows deleted from a page still are): Debian's SQLite zeroes them all by
# default (SECURE_DELETE), which writes each checkpoint's replaced arrays to the WAL once more as zeros;
# ~1/5 less of the store's SQL at 100 capacity cameras again (benchmarks/store_pages.md)
SECURE_DELETE = "FAST"
WAL_KEEP_BYTES = 16 * 1024 * 1024  # a WAL grown past this (a big prune, a slow reader) shrinks back after


def connect(path: Path, any_thread: bool = False) -> sqlite3.Connection:
    """An autocommit connection in WAL mode; transactions are explicit (see :func:`immediate`).

    ``any_thread`` allows use from several threads, which the caller must then serialize.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_S, check_same_thread=not any_thread)
    # both only take effect on a new file, the page size only before auto_vacuum and WAL mode are set;
    # auto_vacuum lets retention give pages back
    db.execute(f"PRAGMA page_size={PAGE_BYTES}")
    db.execute("PRAGMA auto_vacuum=INCREMENTAL")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA secure_delete={SECURE_DELETE}")
    db.execute(f"PRAGMA journal_size_limit={WAL_KEEP_BYTES}")
    return db


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken up front so it cannot fail half-way on a lock upgrade."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class SharedFile:
    """One SQLite file behind one long-lived connection that threads (a server's thread pool) take in
    turn. One connection, not one per request: closing SQLite's last connection checkpoints the WAL to
    disk, which would cost every request a sync. ``schema`` is run once on opening."""

    def __init__(self, path: Path, schema: str) -> None:
        self._db = connect(path, any_thread=True)
        self._lock = threading.Lock()
        self._db.executescript(schema)

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._db

    def close(self) -> None:
        self._db.close()
