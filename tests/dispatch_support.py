"""The real reference receiver on 127.0.0.1 (uvicorn in a thread) with faults injected in front of it,
and the sender side of the pipeline (lifecycle -> snapshots -> store/outbox) fed with observations.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import jsonschema
import numpy as np
import uvicorn
from pydantic import SecretStr

from vision.config import DispatchConfig, StorageConfig
from vision.dispatch.receiver import WEBHOOK_PATH, create_app
from vision.dispatch.routing import Router
from vision.events.lifecycle import Lifecycle, Timers
from vision.events.recorder import TransitionRecorder
from vision.events.snapshots import SnapshotWriter
from vision.store import open_store
from vision.types import Condition, Detections, Frame, Observation

from .conftest import ROOT

SECRET = "s3cret-hook-key-42"
SCHEMA = json.loads((ROOT / "docs" / "webhook-payload.schema.json").read_text())
NAMES = {0: "person"}
KEY = ("cam", "square", "crowd")
T, F, U = Condition.TRUE, Condition.FALSE, Condition.UNKNOWN
BOUND_S = 20.0  # every wait in these tests gives up after this long


def wait_for(check: Callable[[], Any], what: str, seconds: float = BOUND_S) -> Any:
    """Poll until ``check()`` is truthy; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


@dataclass
class Refusal:
    """An answer given instead of the receiver's to one event's requests, ``times`` times."""

    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1_000_000


@dataclass
class Faults:
    """What the injector does to the next webhook requests, and what it saw."""

    refuse: dict[str, Refusal] = field(default_factory=dict)  # by event id
    fail: int = 0  # answer 500 to this many requests without passing them on
    slow: int = 0  # apply this many, then hold their answers until ``release`` (or ``hold`` seconds)
    hold: float = BOUND_S
    hold_key: str = ""  # apply the first request with this idempotency key, then hold its answer as ``slow``
    held_from: tuple[str, int] | None = None  # the client (address, port) whose request for it is held
    release: threading.Event = field(default_factory=threading.Event)
    applied: threading.Event = field(default_factory=threading.Event)
    seen: list[str] = field(default_factory=list)  # idempotency keys, in arrival order
    seen_at: list[float] = field(default_factory=list)  # and when they arrived (monotonic)
    seen_from: list[tuple[str, int]] = field(default_factory=list)  # and from which client (address, port)


class FaultInjector:
    """ASGI middleware in front of the receiver: failures and late answers, as a flaky network makes them."""

    def __init__(self, app: Any, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != WEBHOOK_PATH:
            await self.app(scope, receive, send)
            return
        faults = self.faults
        key = dict(scope["headers"]).get(b"idempotency-key", b"").decode()
        faults.seen.append(key)
        faults.seen_at.append(time.monotonic())
        faults.seen_from.append(tuple(scope["client"]))
        refusal = faults.refuse.get(key.rpartition(".")[0])
        if refusal is not None and refusal.times > 0:
            refusal.times -= 1
            headers = [(b"content-type", b"application/json")]
            headers += [(k.lower().encode(), v.encode()) for k, v in refusal.headers.items()]
            await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
            await send({"type": "http.response.body", "body": refusal.body.encode()})
            return
        if faults.fail > 0:
            faults.fail -= 1
            await send(
                {"type": "http.response.start", "status": 500, "headers": [(b"content-type", b"text/plain")]}
            )
            await send({"type": "http.response.body", "body": b"injected failure"})
            return
        holding = key == faults.hold_key and faults.held_from is None
        if holding or faults.slow > 0:
            if holding:
                faults.held_from = faults.seen_from[-1]
            else:
                faults.slow -= 1
            held: list[dict[str, Any]] = []

            async def keep(message: dict[str, Any]) -> None:
                held.append(message)

            await self.app(scope, receive, keep)
            faults.applied.set()
            deadline = time.monotonic() + faults.hold
            while not faults.release.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            for message in held:
                try:
                    await send(message)
                except OSError:  # the client gave up or died meanwhile: that is the point
                    return
            return
        await self.app(scope, receive, send)


class Loopback:
    """A real HTTP server (uvicorn in a thread) on a reserved 127.0.0.1 port: connections are refused
    until ``start``, as from a server that is down."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))  # bound, not listening: the server is "down"
        self.port = self.sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.app = app
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> Self:
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, "the server to start")
        return self

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(10)
        self.sock.close()


class Receiver(Loopback):
    """The reference receiver on a reserved 127.0.0.1 port: connections are refused until ``start``."""

    def __init__(self, db: Path, secret: str = SECRET, tolerance: float = 300.0) -> None:
        self.db = db
        self.faults = Faults()
        super().__init__(FaultInjector(create_app(db, secret, tolerance), self.faults))
        self.url = f"{self.base}{WEBHOOK_PATH}"

    def stop(self) -> None:
        self.faults.release.set()
        super().stop()

    def history(self) -> list[tuple[str, str, int, str, int]]:
        """(ticket, event, sequence, transition, replays) of every applied transition, as stored."""
        with sqlite3.connect(self.db) as db:
            return db.execute(
                "SELECT h.ticket_id, t.event_id, h.sequence, h.transition, h.replays "
                "FROM history h JOIN tickets t USING (ticket_id) ORDER BY t.rowid, h.sequence"
            ).fetchall()

    def tickets(self) -> list[tuple[str, str, str]]:
        """(ticket, event, state) of every stored ticket."""
        with sqlite3.connect(self.db) as db:
            return db.execute("SELECT ticket_id, event_id, state FROM tickets ORDER BY rowid").fetchall()

    def bodies(self) -> list[dict[str, Any]]:
        with sqlite3.connect(self.db) as db:
            return [json.loads(b) for (b,) in db.execute("SELECT body FROM history ORDER BY rowid")]


def validate(body: dict[str, Any]) -> None:
    jsonschema.validate(body, SCHEMA, cls=jsonschema.Draft202012Validator)


def dispatch_config(url: str, secret: str = SECRET, **overrides: Any) -> DispatchConfig:
    """Small retry delays so the tests take seconds; the production defaults are minutes."""
    values: dict[str, Any] = {"timeout": 2.0, "max_attempts": 50, "backoff_initial": 0.05, "backoff_max": 0.2}
    values.update(overrides)
    return DispatchConfig(webhook_url=url, secret=SecretStr(secret), **values)


class Sender:
    """The pipeline after the rules (lifecycle, snapshots, store with outbox), fed one zone's verdicts."""

    def __init__(
        self,
        data_dir: Path,
        timers: Timers,
        storage: StorageConfig | None = None,
        router: Router | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.lifecycle = Lifecycle({KEY: timers})
        self.storage = storage or StorageConfig(data_dir=data_dir)  # SQLite in data_dir by default
        self.store = open_store(self.storage, dispatch=router or True)  # True: the one webhook
        zone = np.array([[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]])
        self.recorder = TransitionRecorder(self.store, SnapshotWriter(data_dir, NAMES), {KEY[:2]: zone})
        self.image = np.full((120, 160, 3), 90, np.uint8)

    def feed(self, seq: list[tuple[float, Condition, int]]) -> list[str]:
        """Observations (pts, condition, count); returns the transitions they caused, all committed."""
        kinds = []
        for pts, condition, count in seq:
            boxes = Detections.from_arrays(
                np.tile([[20, 20, 40, 90]], (count, 1)), np.full(count, 0.9), np.zeros(count)
            )
            obs = Observation("crowd", "cam", "square", "zone", pts, condition, 0.9, count, boxes)
            for transition in self.lifecycle.update(obs):
                self.recorder.record([transition], Frame("cam", pts, self.image))
                kinds.append(transition.kind)
        return kinds

    def outbox(self) -> list[tuple[str, int, str, int]]:
        """(event, event_seq, status, attempts) per message, as the sender's store has them."""
        return self.store.sql.execute(
            "SELECT event_id, event_seq, status, attempts FROM outbox ORDER BY seq"
        ).fetchall()


def steady(start: float, end: float, condition: Condition, count: int = 8, step: float = 0.5) -> list:
    """Observations every ``step`` seconds of stream time from ``start`` to ``end`` (inclusive)."""
    n = round((end - start) / step)
    return [(start + i * step, condition, count) for i in range(n + 1)]
