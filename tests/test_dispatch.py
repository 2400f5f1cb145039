"""Outbox -> signed webhook -> the real reference receiver over loopback HTTP, in one process.

Every test asserts on what the receiver stored (its SQLite file), not only on what
the sender believes it sent; the sender's store is each backend in turn (``storage``).
"""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import pytest

from vision.config import StorageConfig
from vision.dispatch.dispatcher import Dispatcher, backoff
from vision.dispatch.outbox import Message
from vision.dispatch.payload import body
from vision.dispatch.signing import signed_headers
from vision.events.lifecycle import Timers

from .conftest import ROOT
from .dispatch_support import (
    BOUND_S,
    SECRET,
    F,
    Receiver,
    Refusal,
    Sender,
    T,
    U,
    dispatch_config,
    steady,
    validate,
    wait_for,
)
from .pg_support import PASSWORD, pg_config_url

TIMERS = Timers(min_duration=1.0, close_after=2.0, update_interval=1.0, reopen_window=10.0)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    server = Receiver(tmp_path / "receiver.sqlite")
    yield server
    server.stop()


@pytest.fixture
def sender(storage: StorageConfig) -> Iterator[Sender]:
    side = Sender(storage.data_dir, TIMERS, storage)
    yield side
    side.store.close()


def dispatching(sender: Sender, receiver: Receiver, **overrides: float) -> Dispatcher:
    dispatcher = Dispatcher(sender.store.another, dispatch_config(receiver.url, **overrides))
    dispatcher.start()
    return dispatcher


def test_open_update_close_reopen_and_a_new_episode_reach_the_receiver(
    sender: Sender, receiver: Receiver
) -> None:
    receiver.start()
    dispatcher = dispatching(sender, receiver)
    try:
        kinds = sender.feed(
            steady(0, 2, T, 8)  # opens at 1.0
            + steady(2.5, 4, T, 11)  # more people: an update
            + steady(4.5, 7, F, 2)  # verified absence: closes at 6.5
            + steady(7.5, 9, T, 9)  # back within the reopen window: the same ticket reopens
            + steady(9.5, 12, F, 1)  # closes again at 11.5
            + steady(30, 31.5, T, 8)  # long after the window: a new event, a new ticket
        )
        assert kinds == ["open", "update", "close", "reopen", "close", "open"]
        counts = dispatcher.drain(BOUND_S)
    finally:
        dispatcher.stop()
    assert counts.deliverable == 0 and counts.delivered == 6

    (first, _, closed), (second, _, opened) = receiver.tickets()
    assert (closed, opened) == ("closed", "open")
    history = receiver.history()
    assert [(h[2], h[3], h[4]) for h in history] == [
        (1, "open", 0),
        (2, "update", 0),
        (3, "close", 0),
        (4, "reopen", 0),
        (5, "close", 0),
        (1, "open", 0),
    ]
    assert [h[0] for h in history] == [first] * 5 + [second]
    bodies = receiver.bodies()
    for sent in bodies:
        validate(sent)
        assert sent["idempotency_key"] == f"{sent['event']['event_id']}.{sent['sequence']}"
        for name in ("clean", "annotated"):
            picture = cv2.imread(str(sender.data_dir / sent["snapshots"][name]))
            assert picture.shape == sender.image.shape
    # the open carries no ticket id; every later message quotes the one the receiver answered with
    assert [b["ticket_id"] for b in bodies] == [None, first, first, first, first, None]
    reopened = bodies[3]["event"]
    assert reopened["reopens"] == 1 and reopened["resolved_at"] is None and reopened["opened_at"] == 1.0
    remote = dict(sender.store.sql.execute("SELECT event_id, ticket_id FROM remote_tickets"))
    assert remote == {history[0][1]: first, history[5][1]: second}


def test_receiver_down_then_up_delivers_everything_in_order(
    sender: Sender, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    sender.feed(steady(0, 2, T, 8) + steady(2.5, 4, T, 12) + steady(4.5, 7, F, 0))
    with caplog.at_level(logging.INFO):
        dispatcher = dispatching(sender, receiver)
        try:
            wait_for(lambda: sender.outbox()[0][3] >= 3, "three refused attempts at the open")
            # nothing behind the open was tried: an event's messages go strictly in order
            assert [(m[2], m[3]) for m in sender.outbox()[1:]] == [("pending", 0), ("pending", 0)]
            error = sender.store.sql.execute("SELECT last_error FROM outbox WHERE event_seq = 1").rows[0][0]
            assert error.startswith(f"POST {receiver.url}: cannot connect") and "refused" in error
            receiver.start()
            counts = dispatcher.drain(BOUND_S)
        finally:
            dispatcher.stop()
    assert counts.delivered == 3 and counts.pending == 0
    assert [(h[2], h[3]) for h in receiver.history()] == [(1, "open"), (2, "update"), (3, "close")]
    assert receiver.tickets()[0][2] == "closed"
    assert receiver.url in caplog.text and "kept in the outbox" in caplog.text
    assert SECRET not in caplog.text


def test_500s_and_a_timeout_are_retried_and_the_late_duplicate_is_deduped(
    sender: Sender, receiver: Receiver
) -> None:
    receiver.start()
    receiver.faults.fail = 2  # the open is refused twice with 500
    receiver.faults.slow, receiver.faults.hold = 1, 3.0  # then applied, but answered after the timeout
    sender.feed(steady(0, 2, T, 8) + steady(2.5, 5, F, 0))
    dispatcher = dispatching(sender, receiver, timeout=1.0)
    try:
        counts = dispatcher.drain(BOUND_S)
    finally:
        dispatcher.stop()
    assert counts.delivered == 2 and counts.pending == 0
    (ticket, event_id, state), *_ = receiver.tickets()
    assert state == "closed"
    open_key = f"{event_id}.1"
    assert receiver.faults.seen[:4] == [open_key] * 4  # 500, 500, timed out (but applied), duplicate
    assert [(h[2], h[3], h[4]) for h in receiver.history()] == [(1, "open", 1), (2, "close", 0)]
    error = sender.store.sql.execute("SELECT attempts FROM outbox WHERE event_seq = 1").fetchone()
    assert error == (4,)
    assert sender.store.sql.execute("SELECT ticket_id FROM remote_tickets").fetchone() == (ticket,)


def test_camera_outage_while_open_never_closes_the_ticket(sender: Sender, receiver: Receiver) -> None:
    receiver.start()
    dispatcher = dispatching(sender, receiver)
    try:
        # open; the zone empties for one second; then the camera is dark for an hour of stream time
        assert sender.feed(steady(0, 2, T, 8) + steady(2.5, 3, F, 0) + steady(3.5, 3603.5, U, 0, 5.0)) == [
            "open"
        ]
        dispatcher.drain(BOUND_S)
        assert [(h[3], h[4]) for h in receiver.history()] == [("open", 0)]
        assert receiver.tickets()[0][2] == "open"
        # the picture is back and the zone is seen empty long enough: now it closes
        assert sender.feed(steady(3604, 3606.5, F, 0)) == ["close"]
        dispatcher.drain(BOUND_S)
    finally:
        dispatcher.stop()
    assert [h[3] for h in receiver.history()] == ["open", "close"]
    assert receiver.tickets()[0][2] == "closed"


def opened(sender: Sender, receiver: Receiver) -> tuple[Message, bytes]:
    """Start the receiver and commit an open; return its outbox message and the body it would send."""
    receiver.start()
    sender.feed(steady(0, 2, T, 8))
    message = sender.store.next_due(time.time())
    assert message is not None
    return message, body(message)


def test_bad_signatures_are_rejected_and_nothing_is_stored(sender: Sender, receiver: Receiver) -> None:
    message, raw = opened(sender, receiver)
    good = signed_headers(SECRET, raw, message.key, time.time())
    attempts = [
        (signed_headers("not-the-secret", raw, message.key, time.time()), raw, "bad signature"),
        (good, raw.replace(b'"count":8', b'"count":1'), "bad signature"),  # tampered in transit
        ({k: v for k, v in good.items() if "Signature" not in k}, raw, "missing X-Street-Vision-Signature"),
    ]
    for headers, content, why in attempts:
        answer = httpx.post(receiver.url, content=content, headers=headers, timeout=5)
        assert answer.status_code == 401 and why in answer.text
        assert SECRET not in answer.text and "not-the-secret" not in answer.text
    assert receiver.tickets() == []
    assert httpx.post(receiver.url, content=raw, headers=good, timeout=5).status_code == 200


def test_replayed_request_is_deduped_and_a_stale_one_refused(sender: Sender, receiver: Receiver) -> None:
    message, raw = opened(sender, receiver)
    headers = signed_headers(SECRET, raw, message.key, time.time())
    first = httpx.post(receiver.url, content=raw, headers=headers, timeout=5).json()
    replay = httpx.post(receiver.url, content=raw, headers=headers, timeout=5).json()
    assert first["duplicate"] is False and replay == {**first, "duplicate": True}
    assert [(h[3], h[4]) for h in receiver.history()] == [("open", 1)]
    stale = signed_headers(SECRET, raw, message.key, time.time() - 3600)  # captured an hour ago
    answer = httpx.post(receiver.url, content=raw, headers=stale, timeout=5)
    assert answer.status_code == 401 and "stale timestamp" in answer.text
    assert [(h[3], h[4]) for h in receiver.history()] == [("open", 1)]


def test_backoff_doubles_with_jitter_up_to_the_maximum() -> None:
    rng = random.Random(7)
    delays = [backoff(n, 1.0, 300.0, rng) for n in range(1, 13)]
    nominal = [min(300.0, 2.0 ** (n - 1)) for n in range(1, 13)]
    assert all(d / 2 <= got <= d for got, d in zip(delays, nominal, strict=True))
    assert len({round(got / d, 6) for got, d in zip(delays, nominal, strict=True)}) == 12  # jittered


def write_config(path: Path, sender: Sender, url: str, backoff: float = 0.05, max_attempts: int = 2) -> Path:
    """A config on the sender's store; a PostgreSQL password is left to ``${PGPASSWORD}``."""
    store = f"  url: {pg_config_url(sender.storage.url)}\n" if sender.storage.url else ""
    path.write_text(
        "cameras:\n  cam:\n    url: unused.mp4\n"
        f"dispatch:\n  webhook_url: {url}\n  secret: ${{HOOK_SECRET}}\n"
        f"  max_attempts: {max_attempts}\n  backoff_initial: {backoff}\n  backoff_max: {2 * backoff}\n"
        "  timeout: 2\n"
        f"storage:\n  data_dir: {sender.data_dir}\n{store}"
    )
    return path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"HOOK_SECRET": SECRET, "PGPASSWORD": PASSWORD, "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "vision.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )


def test_dead_letters_are_listed_and_resent(tmp_path: Path, sender: Sender, receiver: Receiver) -> None:
    receiver.start()
    receiver.faults.fail = 2  # max_attempts is 2: the open dies
    sender.feed(steady(0, 2, T, 8) + steady(2.5, 5, F, 0))
    config = write_config(tmp_path / "hook.yaml", sender, receiver.url)
    dispatcher = dispatching(sender, receiver, max_attempts=2)
    try:
        counts = dispatcher.drain(BOUND_S)
    finally:
        dispatcher.stop()
    assert (counts.dead, counts.blocked, counts.delivered) == (1, 1, 0)
    assert receiver.tickets() == []

    listed = cli("outbox", "list", str(config))
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert " open    dead " in lines[0] and "2 attempt(s)" in lines[0]
    assert (
        lines[1]
        == f"    last error: gave up after 2 attempts: POST {receiver.url}: HTTP 500: injected failure"
    )
    assert " close   blocked " in lines[2]
    assert lines[-1] == "outbox: 0 delivered, 1 pending, 1 dead (1 pending behind a dead message)"
    as_json = [json.loads(line) for line in cli("outbox", "list", str(config), "--json").stdout.splitlines()]
    assert [m["status"] for m in as_json] == ["dead", "blocked"]

    resent = cli("outbox", "resend", str(config))
    assert "1 dead message(s) back in line" in resent.stdout
    drained = cli("outbox", "drain", str(config), "--seconds", "20")
    assert drained.returncode == 0, drained.stderr
    assert drained.stdout.strip() == "outbox: 2 delivered, 0 pending, 0 dead"
    assert [(h[2], h[3]) for h in receiver.history()] == [(1, "open"), (2, "close")]
    for result in (listed, resent, drained):
        assert SECRET not in result.stdout + result.stderr and PASSWORD not in result.stdout + result.stderr


def event_ids(sender: Sender) -> list[str]:
    return [row[0] for row in sender.store.sql.execute("SELECT event_id FROM events ORDER BY first_seen")]


def test_a_refused_message_is_dead_at_once_and_holds_back_only_its_own_event(
    tmp_path: Path, sender: Sender, receiver: Receiver
) -> None:
    receiver.start()
    sender.feed(steady(0, 2, T, 8) + steady(2.5, 5, F, 0) + steady(30, 32, T, 9) + steady(32.5, 35, F, 0))
    first, second = event_ids(sender)
    refusal = '{"detail": "boxes.0.class_id: Input should be greater than or equal to 0"}'
    receiver.faults.refuse[first] = Refusal(422, refusal)
    dispatcher = dispatching(sender, receiver)  # 50 attempts before giving up on a message that may pass
    try:
        counts = dispatcher.drain(BOUND_S)
    finally:
        dispatcher.stop()
    assert (counts.dead, counts.blocked, counts.delivered) == (1, 1, 2)
    assert receiver.faults.seen.count(f"{first}.1") == 1  # refused once, never sent again
    assert [(h[1], h[2], h[3]) for h in receiver.history()] == [(second, 1, "open"), (second, 2, "close")]
    assert dispatcher.dead_letters == {"permanent": 1}

    config = write_config(tmp_path / "hook.yaml", sender, receiver.url, max_attempts=50)
    listed = cli("outbox", "list", str(config)).stdout.splitlines()
    assert " open    dead " in listed[0] and "1 attempt(s)" in listed[0]
    assert listed[1] == f"    last error: refused for good: POST {receiver.url}: HTTP 422: {refusal}"
    assert " close   blocked " in listed[2]
    assert listed[-1] == "outbox: 2 delivered, 1 pending, 1 dead (1 pending behind a dead message)"

    receiver.faults.refuse.clear()  # the receiver (or the sender) is fixed
    assert "1 dead message(s) back in line" in cli("outbox", "resend", str(config)).stdout
    drained = cli("outbox", "drain", str(config), "--seconds", "20")
    assert drained.returncode == 0, drained.stderr
    assert drained.stdout.strip() == "outbox: 4 delivered, 0 pending, 0 dead"
    history = [(h[1], h[2], h[3]) for h in receiver.history()]
    assert history == [(second, 1, "open"), (second, 2, "close"), (first, 1, "open"), (first, 2, "close")]


def test_a_wrong_secret_is_refused_by_the_receiver_and_resent_after_the_fix(
    sender: Sender, receiver: Receiver
) -> None:
    receiver.start()
    sender.feed(steady(0, 2, T, 8) + steady(2.5, 5, F, 0))
    dispatcher = dispatching(sender, receiver, secret="not-the-receivers-secret")
    try:
        counts = dispatcher.drain(BOUND_S)
    finally:
        dispatcher.stop()
    assert (counts.dead, counts.blocked, counts.delivered) == (1, 1, 0)
    assert [m[2:] for m in sender.outbox()] == [("dead", 1), ("pending", 0)]
    error = sender.store.sql.execute("SELECT last_error FROM outbox WHERE event_seq = 1").rows[0][0]
    assert error.startswith(f"refused for good: POST {receiver.url}: HTTP 401") and "bad signature" in error
    assert "not-the-receivers-secret" not in error and receiver.tickets() == []

    assert sender.store.resend() == 1
    dispatcher = dispatching(sender, receiver)  # the right secret now
    try:
        counts = dispatcher.drain(BOUND_S)
    finally:
        dispatcher.stop()
    assert counts.delivered == 2 and counts.dead == 0
    assert [(h[2], h[3]) for h in receiver.history()] == [(1, "open"), (2, "close")]


@pytest.mark.parametrize(("status", "retry_after"), [(408, None), (425, None), (429, "1"), (503, "1")])
def test_not_now_answers_are_retried_and_retry_after_is_honoured(
    sender: Sender, receiver: Receiver, status: int, retry_after: str | None
) -> None:
    receiver.start()
    sender.feed(steady(0, 2, T, 8))
    (event,) = event_ids(sender)
    headers = {"Retry-After": retry_after} if retry_after else {}
    receiver.faults.refuse[event] = Refusal(status, '{"detail": "not now"}', headers, times=1)
    dispatcher = dispatching(sender, receiver)  # backoff 0.05-0.2 s
    try:
        counts = dispatcher.drain(BOUND_S)
    finally:
        dispatcher.stop()
    assert counts.delivered == 1 and counts.dead == 0
    assert receiver.faults.seen == [f"{event}.1"] * 2 and sender.outbox()[0][3] == 2
    waited = receiver.faults.seen_at[1] - receiver.faults.seen_at[0]
    assert waited >= 0.95 if retry_after else waited < 0.5
    assert dispatcher.dead_letters == {}


def test_drain_now_cuts_the_backoff_short(tmp_path: Path, sender: Sender, receiver: Receiver) -> None:
    sender.feed(steady(0, 2, T, 8))
    dispatcher = dispatching(sender, receiver, backoff_initial=300.0, backoff_max=300.0)
    try:  # the receiver is down: the first attempt fails and the next is 150-300 s away
        wait_for(lambda: sender.outbox()[0][3] == 1, "the first refused attempt")
    finally:
        dispatcher.stop()
    receiver.start()
    config = write_config(tmp_path / "hook.yaml", sender, receiver.url, backoff=300.0, max_attempts=5)
    waiting = cli("outbox", "drain", str(config), "--seconds", "1")
    assert waiting.returncode == 1 and waiting.stdout.strip() == "outbox: 0 delivered, 1 pending, 0 dead"
    drained = cli("outbox", "drain", str(config), "--now", "--seconds", "20")
    assert drained.returncode == 0, drained.stderr
    assert drained.stdout.strip() == "outbox: 1 delivered, 0 pending, 0 dead"
    assert [(h[2], h[3]) for h in receiver.history()] == [(1, "open")]
