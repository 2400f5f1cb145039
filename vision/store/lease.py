"""A camera is run by one service at a time: ``run``, ``serve`` or a cluster's control plane holds a
lease on each camera it runs in its store, and a second service that would run one of them is refused
before it starts, naming the first.

Two services with the same camera on one store each restored its open events and carried them on: one
closed a crowd ticket while the other went on updating it and closed it again (two closes sent for one
ticket). Services with cameras of their own share a store as before (a district's control plane beside
another's). The leases are kept by the operating system or the database server, so a process that dies
(SIGKILL included) loses them at once and a restart is never kept out by a stale lock:

- SQLite: an exclusive ``flock`` on ``leases/CAMERA.lock`` in the data folder; the holder writes its
  pid, host and start there for a refusal to name.
- PostgreSQL: a session advisory lock per camera on a connection of its own, whose
  ``application_name`` names the holder; a refusal reads it from ``pg_stat_activity``.

On SQLite, where one dispatcher at a time may deliver an outbox (two would send a message twice: there
is no row lock to claim it by), a service that delivers and ``outbox drain`` also hold the outbox's
lease (``leases/.outbox.lock``: no camera's name starts with a dot). PostgreSQL's dispatchers claim each
message (vision/store/outbox.py) and share an outbox freely.

A cluster's shards run under their control plane's leases and take none of their own.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from vision.config import ConfigError, StorageConfig


class Lease(Protocol):
    def release(self) -> None: ...


def holder() -> str:
    """Who holds a lease, as a refused process names it."""
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return f"pid {os.getpid()} on {socket.gethostname()} since {started}"


OUTBOX = ".outbox"  # the SQLite outbox's lease, beside the cameras'


def refusal(camera: str, location: str, by: str) -> str:
    """The line that refuses one lease, naming its holder."""
    by = by or "its holder unknown"
    if camera == OUTBOX:
        return (
            f"the outbox of {location} is being delivered by another street-vision service ({by}): on "
            "SQLite one dispatcher at a time, or a message could be sent twice; that one delivers it (or "
            "stop it first)"
        )
    return (
        f"camera {camera}: run by another street-vision service on the store {location} ({by}): one "
        "service per camera, or two would carry on its tickets; stop that one first, or run this camera "
        "from one config only"
    )


class FileLease:
    """The SQLite store's leases: an exclusive flock per camera (and :data:`OUTBOX`), held until
    :meth:`release`."""

    def __init__(self, data_dir: Path, cameras: Iterable[str]) -> None:
        folder = data_dir / "leases"
        folder.mkdir(parents=True, exist_ok=True)
        self._fds: list[int] = []
        problems = []
        me = holder()
        for camera in cameras:
            fd = os.open(folder / f"{camera}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                problems.append(
                    refusal(camera, str(data_dir), os.read(fd, 512).decode("utf-8", "replace").strip())
                )
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{me}\n".encode())
            self._fds.append(fd)
        if problems:
            self.release()
            raise ConfigError(problems)

    def release(self) -> None:
        while self._fds:
            os.close(self._fds.pop())  # the flock goes with the descriptor


def lock_key(camera: str) -> int:
    """The camera's advisory lock key: 64 bits of its name's hash (PostgreSQL's bigint)."""
    return int.from_bytes(hashlib.blake2b(camera.encode(), digest_size=8).digest(), "big", signed=True)


class ServerLease:
    """The PostgreSQL store's leases: a session advisory lock per camera on a connection of their own."""

    def __init__(self, storage: StorageConfig, cameras: Iterable[str]) -> None:
        from vision.store.postgres import connect  # psycopg is only needed with storage.url

        assert storage.url is not None
        cameras = list(cameras)
        self._connection = (  # none for no camera (outbox drain: its dispatcher claims each message)
            connect(storage.url, application_name=f"street-vision {holder()}"[:63]) if cameras else None
        )
        problems = []
        for camera in cameras:
            key = lock_key(camera)
            (got,) = self._connection.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if not got:
                problems.append(refusal(camera, str(storage.url), self._holder(key)))
        if problems:
            self.release()
            raise ConfigError(problems)

    def _holder(self, key: int) -> str:
        """The holding session's name, found by its lock (a bigint key is shown as two 32-bit halves)."""
        assert self._connection is not None
        row = self._connection.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid",
            ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
        ).fetchone()
        return row[0].removeprefix("street-vision ") if row else ""

    def release(self) -> None:
        if self._connection is not None and not self._connection.closed:
            self._connection.close()  # the session's advisory locks go with it


def hold(storage: StorageConfig, cameras: Iterable[str], outbox: bool = False) -> Lease:
    """This process's leases on ``cameras`` in the store, and with ``outbox`` (it delivers) on a SQLite
    store's outbox (a ConfigError, a line per lease naming its holder, where another service holds any of
    them; then none is kept)."""
    if storage.url is not None:
        return ServerLease(storage, cameras)
    return FileLease(storage.data_dir, [*cameras, OUTBOX] if outbox else cameras)
