"""Several dispatchers on one PostgreSQL outbox: each message claimed by one of them, events in order.

The claims are checked directly on two handles (what one holds the other skips), then
two Dispatcher threads, each with its own connection pool as two processes would have,
deliver a backlog of several events to the real reference receiver.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vision.config import StorageConfig
from vision.dispatch.dispatcher import Dispatcher
from vision.events.lifecycle import Timers
from vision.store import open_store

from .dispatch_support import BOUND_S, F, Receiver, Sender, T, dispatch_config, steady
from .pg_support import PostgresServer

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
