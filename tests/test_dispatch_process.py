"""Whole processes: SIGKILL at the worst moments, and `street-vision run` feeding `street-vision receiver`."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import pytest

from vision.events.lifecycle import Timers

from .conftest import ROOT, SAMPLE
from .dispatch_support import SECRET, F, Receiver, Sender, T, steady, validate, wait_for

ENV = {**os.environ, "HOOK_SECRET": SECRET}


def demo_config(tmp_path: Path, url: str, retry: str = "backoff_initial: 0.05\n  backoff_max: 0.2") -> Path:
    """configs/demo.yaml on the bundled clip, with a webhook and test-sized retry delays."""
    demo = (ROOT / "configs" / "demo.yaml").read_text()
    text = demo.replace("../sample_videos/plaza.mp4", str(SAMPLE)).replace("../data", "data")
    text += f"dispatch:\n  webhook_url: {url}\n  secret: ${{HOOK_SECRET}}\n  timeout: 2\n  {retry}\n"
    config = tmp_path / "demo.yaml"
    config.write_text(text)
    return config


def start(*args: str, env: dict[str, str] = ENV) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vision.cli", *args],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=10)


def outbox_rows(store: Path) -> list[tuple[str, int, str]]:
    if not store.exists():
        return []
    with sqlite3.connect(store) as db:
        try:
            return db.execute("SELECT event_id, event_seq, status FROM outbox ORDER BY seq").fetchall()
        except sqlite3.OperationalError:  # the tables are not created yet
            return []


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    server = Receiver(tmp_path / "receiver.sqlite")
    yield server
    server.stop()


def test_killed_after_the_outbox_write_before_delivery_then_restart_delivers(
    tmp_path: Path, receiver: Receiver
) -> None:
    config = demo_config(tmp_path, receiver.url)
    store = tmp_path / "data" / "street-vision.sqlite"
    run = start("run", str(config))  # the receiver is down: connections are refused
    try:
        wait_for(lambda: outbox_rows(store), "the open to be committed to the outbox", 60)
    finally:
        kill(run)
    left = outbox_rows(store)
    assert left and all(status == "pending" for _, _, status in left)
    assert receiver.tickets() == []

    receiver.start()
    drained = start("outbox", "drain", str(config), "--seconds", "20")
    out, err = drained.communicate(timeout=60)
    assert drained.returncode == 0, err
    assert out.strip() == f"outbox: {len(left)} delivered, 0 pending, 0 dead"
    assert [(event, seq, "delivered") for event, seq, _ in left] == outbox_rows(store)
    history = receiver.history()
    assert [(h[1], h[2]) for h in history] == [(event, seq) for event, seq, _ in left]
    assert history[0][3] == "open" and all(h[4] == 0 for h in history)
    assert SECRET not in out + err


def test_a_drain_beside_a_running_service_is_refused_on_sqlite(tmp_path: Path, receiver: Receiver) -> None:
    """On SQLite one dispatcher at a time delivers an outbox (no row lock claims a message): `outbox drain`
    while `run` delivers would send the same message twice; it exits 2 naming the run (vision/store/lease.py).
    """
    config = demo_config(tmp_path, receiver.url)
    store = tmp_path / "data" / "street-vision.sqlite"
    run = start("run", str(config))  # the receiver is down: the run's dispatcher keeps the open pending
    try:
        wait_for(lambda: outbox_rows(store), "the open to be committed to the outbox", 60)
        drained = start("outbox", "drain", str(config), "--seconds", "5")
        out, err = drained.communicate(timeout=60)
        assert drained.returncode == 2 and out == "", err
        assert f"is being delivered by another street-vision service (pid {run.pid} on " in err, err
        assert "Traceback" not in err
    finally:
        kill(run)
    assert all(status == "pending" for _, _, status in outbox_rows(store))


def test_killed_mid_send_redelivers_with_the_same_key_and_the_receiver_dedupes(
    tmp_path: Path, receiver: Receiver
) -> None:
    sender = Sender(tmp_path / "data", Timers(1.0, 2.0, 1.0, 0.0))
    kinds = sender.feed(steady(0, 2, T, 8) + steady(2.5, 4, T, 12) + steady(4.5, 7, F, 0))
    sender.store.close()
    assert kinds == ["open", "update", "close"]
    config = tmp_path / "hook.yaml"
    config.write_text(
        f"cameras:\n  cam:\n    url: unused.mp4\ndispatch:\n  webhook_url: {receiver.url}\n"
        f"  secret: ${{HOOK_SECRET}}\n  backoff_initial: 0.05\nstorage:\n  data_dir: {sender.data_dir}\n"
    )
    receiver.start()
    receiver.faults.slow = 1  # the receiver applies the open, and its answer is held back
    drain = start("outbox", "drain", str(config), "--seconds", "20")
    try:
        assert receiver.faults.applied.wait(20), "the open never reached the receiver"
    finally:
        kill(drain)  # the sender dies while its request is in flight
    receiver.faults.release.set()
    (event_id,) = {h[1] for h in receiver.history()}
    assert [(h[2], h[3]) for h in receiver.history()] == [(1, "open")]
    assert outbox_rows(sender.store.path)[0] == (event_id, 1, "pending")  # the sender never saw the answer

    again = start("outbox", "drain", str(config), "--seconds", "20")
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert out.strip() == "outbox: 3 delivered, 0 pending, 0 dead"
    assert receiver.faults.seen == [f"{event_id}.{n}" for n in (1, 1, 2, 3)]  # the same key, twice
    assert [(h[2], h[3], h[4]) for h in receiver.history()] == [
        (1, "open", 1),
        (2, "update", 0),
        (3, "close", 0),
    ]
    assert receiver.tickets()[0][2] == "closed"
    assert [status for _, _, status in outbox_rows(sender.store.path)] == ["delivered"] * 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_demo_run_opens_updates_and_closes_one_ticket_at_the_reference_receiver(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "STREET_VISION_WEBHOOK_SECRET": SECRET, "HOOK_SECRET": SECRET}
    db = tmp_path / "tickets.sqlite"
    server = start("receiver", "--port", str(port), "--db", str(db), env=env)
    try:
        wait_for(lambda: _healthy(port), "street-vision receiver to answer /health", 30)
        config = demo_config(tmp_path, f"http://127.0.0.1:{port}/webhook")
        run = start("run", str(config), "--jsonl", "--drain-seconds", "20", env=env)
        out, err = run.communicate(timeout=240)
    finally:
        server.terminate()
        server_out, server_err = server.communicate(timeout=20)
    assert run.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    summary = lines[-1]
    sent = [line for line in lines if line["kind"] == "event"]
    assert summary["outbox"] == {"delivered": len(sent), "pending": 0, "blocked": 0, "dead": 0}

    tickets = stored_tickets(db)
    assert len(tickets) == 1 and tickets[0]["state"] == "closed"
    history = tickets[0]["history"]
    assert [h["transition"] for h in history] == [s["transition"] for s in sent]
    assert history[0]["transition"] == "open" and history[-1]["transition"] == "close"
    assert "update" in [h["transition"] for h in history]
    assert [h["sequence"] for h in history] == list(range(1, len(history) + 1))
    for stored in tickets[0]["bodies"]:
        validate(stored)
        for name in ("clean", "annotated"):
            picture = cv2.imread(str(tmp_path / "data" / stored["snapshots"][name]))
            assert picture is not None and picture.shape == (576, 768, 3)
    assert SECRET not in out + err + server_out + server_err


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def stored_tickets(db: Path) -> list[dict]:
    """The receiver's tickets, read straight from its SQLite file."""
    with sqlite3.connect(db) as conn:
        tickets = []
        for ticket_id, state in conn.execute("SELECT ticket_id, state FROM tickets ORDER BY rowid"):
            rows = conn.execute(
                "SELECT sequence, transition, body FROM history WHERE ticket_id = ? ORDER BY sequence",
                (ticket_id,),
            ).fetchall()
            history = [{"sequence": s, "transition": t} for s, t, _ in rows]
            tickets.append(
                {"state": state, "history": history, "bodies": [json.loads(b) for _, _, b in rows]}
            )
        return tickets


def test_receiver_command_needs_the_secret_in_its_environment() -> None:
    env = {k: v for k, v in os.environ.items() if k != "STREET_VISION_WEBHOOK_SECRET"}
    result = subprocess.run(
        [sys.executable, "-m", "vision.cli", "receiver", "--port", "9"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "STREET_VISION_WEBHOOK_SECRET is not set" in result.stderr
