"""Several dispatchers on one PostgreSQL outbox: each message claimed by one of them, events in order.

The claims are checked directly on two handles (what one holds the other skips), then
two Dispatcher threads, each with its own connection pool as two processes would have,
deliver a backlog of several events to the real reference receiver; last, two
`street-vision outbox drain` processes deliver one, and the one caught sending a given
message is SIGKILLed while the receiver holds its answer.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vision.config import StorageConfig
from vision.dispatch.dispatcher import Dispatcher
from vision.events.lifecycle import Timers
from vision.store import open_store

from .conftest import ROOT
from .dispatch_support import BOUND_S, SECRET, F, Receiver, Sender, T, dispatch_config, steady, wait_for
from .pg_support import PASSWORD, PostgresServer, pg_config_url

TIMERS = Timers(min_duration=1.0, close_after=2.0, update_interval=1.0, reopen_window=5.0)


@pytest.fixture
def shared(postgres: PostgresServer, tmp_path: Path) -> StorageConfig:
    return StorageConfig(data_dir=tmp_path, url=postgres.url(postgres.database()))


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    server = Receiver(tmp_path / "receiver.sqlite")
    yield server
    server.stop()


def episodes(sender: Sender, count: int) -> list[str]:
    """``count`` events one after another, each opened, updated and closed (three messages each)."""
    kinds: list[str] = []
    for i in range(count):
        t = 100.0 * i
        kinds += sender.feed(
            steady(t, t + 2, T, 8) + steady(t + 2.5, t + 4, T, 12) + steady(t + 4.5, t + 7, F, 0)
        )
    return kinds


def test_a_claimed_message_and_its_event_are_skipped_by_the_other_dispatcher(shared: StorageConfig) -> None:
    sender = Sender(shared.data_dir, TIMERS, shared)
    one, other = open_store(shared, run=False), open_store(shared, run=False)
    try:
        assert episodes(sender, 2) == ["open", "update", "close"] * 2
        first, second = (
            row[0] for row in sender.store.sql.execute("SELECT event_id FROM events ORDER BY row_no")
        )
        with one.claim(time.time()) as held:
            assert held is not None and held.key == f"{first}.1"
            with other.claim(time.time()) as taken:  # the first event's head is held; its next is no head
                assert taken is not None and taken.key == f"{second}.1"
                with sender.store.claim(time.time()) as third:  # a third: both heads are held
                    assert third is None
                other.mark_delivered(taken, "T-2")
            one.mark_failed(held, "boom", time.time() + 3600)  # held back for an hour
        with other.claim(time.time()) as taken:  # the second event goes on; the first waits for its retry
            assert taken is not None and taken.key == f"{second}.2" and taken.ticket_id == "T-2"
        with pytest.raises(RuntimeError), other.claim(time.time()) as crashed:  # a dispatcher dies mid-send
            assert crashed is not None and crashed.key == f"{second}.2"
            raise RuntimeError("killed")
        with one.claim(time.time()) as again:  # nothing was recorded: the message is there to take again
            assert again is not None and again.key == f"{second}.2" and again.attempts == 0
    finally:
        one.close()
        other.close()
        sender.store.close()


def test_two_dispatchers_deliver_every_message_once_in_order_per_event(
    shared: StorageConfig, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    sender = Sender(shared.data_dir, TIMERS, shared)
    try:
        assert episodes(sender, 6) == ["open", "update", "close"] * 6
    finally:
        sender.store.close()
    receiver.start()
    receiver.faults.slow, receiver.faults.hold = 18, 0.1  # every answer takes a while: the two overlap
    dispatchers = [
        Dispatcher(lambda: open_store(shared, run=False), dispatch_config(receiver.url)) for _ in range(2)
    ]
    with caplog.at_level(logging.INFO, logger="vision.dispatch.dispatcher"):
        for dispatcher in dispatchers:
            dispatcher.start()
        try:
            counts = dispatchers[0].drain(BOUND_S)
        finally:
            for dispatcher in dispatchers:
                dispatcher.stop()
    assert (counts.delivered, counts.pending, counts.dead) == (18, 0, 0)
    keys = receiver.faults.seen
    assert len(keys) == len(set(keys)) == 18  # every message sent exactly once, by one dispatcher
    history = receiver.history()
    assert all(replays == 0 for *_, replays in history)
    by_event: dict[str, list[int]] = {}
    for key in keys:  # in the order the receiver got them
        event_id, _, seq = key.rpartition(".")
        by_event.setdefault(event_id, []).append(int(seq))
    assert len(by_event) == 6 and all(seqs == [1, 2, 3] for seqs in by_event.values())
    assert {state for _, _, state in receiver.tickets()} == {"closed"}
    senders = {r.thread for r in caplog.records if r.getMessage().startswith("delivered ")}
    assert len(senders) == 2  # both dispatchers delivered some


def process_of(port: int, pids: list[int]) -> int | None:
    """Which of ``pids`` holds the local end of a TCP connection from 127.0.0.1:``port`` now (Linux
    /proc), if any does."""
    rows = (line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:])
    sockets = {f"socket:[{row[9]}]" for row in rows if int(row[1].rpartition(":")[2], 16) == port}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) in sockets:
                    return pid
    return None


def test_a_dispatcher_process_killed_mid_send_leaves_its_message_to_the_other(
    shared: StorageConfig, receiver: Receiver, tmp_path: Path
) -> None:
    """Two `outbox drain` processes deliver four tickets (open, update, close each). The receiver applies
    the second ticket's update and holds its answer; once the other process is sending too, the one
    that sent the update is SIGKILLed mid-request. Its claim (a row lock of its transaction) ends with
    its connection, so the other process sends the update again with the same key, the receiver answers
    it as a duplicate, and the close follows: every key applied once, every ticket's messages in order,
    nothing lost."""
    sender = Sender(shared.data_dir, TIMERS, shared)
    try:
        assert episodes(sender, 4) == ["open", "update", "close"] * 4
        events = [row[0] for row in sender.store.sql.execute("SELECT event_id FROM events ORDER BY row_no")]
    finally:
        sender.store.close()
    held = f"{events[1]}.2"
    config = tmp_path / "dispatch.yaml"
    config.write_text(
        f"cameras:\n  cam:\n    url: unused.mp4\ndispatch:\n  webhook_url: {receiver.url}\n"
        "  secret: ${HOOK_SECRET}\n  timeout: 30\n  backoff_initial: 0.05\n  backoff_max: 0.2\n"
        f"storage:\n  data_dir: {shared.data_dir}\n  url: {pg_config_url(shared.url)}\n"
    )
    receiver.start()
    receiver.faults.hold_key = held
    env = os.environ | {"PYTHONPATH": str(ROOT), "HOOK_SECRET": SECRET, "PGPASSWORD": PASSWORD}
    command = [sys.executable, "-m", "vision.cli", "outbox", "drain", str(config), "--seconds", "20"]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    drains = [subprocess.Popen(command, cwd=ROOT, env=env, text=True, **pipes) for _ in range(2)]
    faults = receiver.faults
    try:
        assert faults.applied.wait(BOUND_S), f"{held} never reached the receiver"
        assert faults.held_from is not None
        victim = process_of(faults.held_from[1], [d.pid for d in drains])
        assert victim is not None, "the held request came from neither dispatcher"
        killed, survivor = sorted(drains, key=lambda d: d.pid != victim)
        other = [survivor.pid]
        wait_for(lambda: any(process_of(p, other) for _, p in set(faults.seen_from)), "the other's sends")
        killed.send_signal(signal.SIGKILL)  # while its request is open: it never sees the answer
        killed.communicate(timeout=10)
        assert killed.returncode == -signal.SIGKILL
        faults.release.set()
        out, err = survivor.communicate(timeout=60)
    finally:
        for drain in drains:
            if drain.poll() is None:
                drain.kill()
                drain.communicate(timeout=10)
    assert survivor.returncode == 0, err[-3000:]
    assert out.strip() == "outbox: 12 delivered, 0 pending, 0 dead", out
    seen = faults.seen
    assert seen.count(held) == 2  # sent by the killed process, then again by the other one
    assert sorted(set(seen)) == sorted(f"{e}.{n}" for e in events for n in (1, 2, 3)) and len(seen) == 13
    for event in events:  # in the order they arrived: no message of a ticket before an earlier one
        arrived = [int(key.rpartition(".")[2]) for key in seen if key.rpartition(".")[0] == event]
        assert arrived == ([1, 2, 2, 3] if event == events[1] else [1, 2, 3]), (event, seen)
    history = receiver.history()  # each transition applied once; the second send answered as a duplicate
    assert sorted((h[1], h[2], h[3]) for h in history) == sorted(
        (e, n, kind) for e in events for n, kind in enumerate(["open", "update", "close"], 1)
    )
    assert {(h[1], h[2]): h[4] for h in history if h[4]} == {(events[1], 2): 1}, history
    assert {state for _, _, state in receiver.tickets()} == {"closed"}
    assert SECRET not in out + err and PASSWORD not in out + err
