"""The store: an event, its transition and its outbox message are written together or not at all."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from vision.store import Store
from vision.types import Transition

EVENT = {
    "event_id": "e1",
    "type": "crowd",
    "camera": "cam",
    "zone": "z",
    "subject": "zone",
    "state": "open",
    "first_seen": 0.0,
    "opened_at": 1.0,
    "resolved_at": None,
    "reopened_at": None,
    "reopens": 0,
    "confidence": 0.9,
    "count": 5,
    "peak_count": 5,
    "close_reason": None,
    "report": None,
    "verification": None,
    "failed_verifications": 0,
}


def rows(store: Store, table: str) -> int:
    return store.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_transition_and_outbox_message_commit_together_or_not_at_all(tmp_path: Path) -> None:
    store = Store(tmp_path, dispatch=True)
    store.record([(Transition("open", 1.0, EVENT), {"transition": "open"})])
    store.record([(Transition("update", 2.0, {**EVENT, "count": 7}), {"transition": "update"})])
    with pytest.raises(TypeError):  # the payload cannot be stored: nothing of this transition may be
        store.record([(Transition("close", 3.0, {**EVENT, "state": "resolved"}), {"bad": object()})])
    assert (rows(store, "transitions"), rows(store, "outbox")) == (2, 2)
    assert store.db.execute("SELECT state, count FROM events").fetchall() == [("open", 7)]
    assert store.db.execute("SELECT event_seq, status FROM outbox ORDER BY seq").fetchall() == [
        (1, "pending"),
        (2, "pending"),
    ]


def test_without_dispatch_there_is_no_outbox_message(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.record([(Transition("open", 1.0, EVENT), {"transition": "open"})])
    assert (rows(store, "transitions"), rows(store, "outbox")) == (1, 0)


def test_a_store_from_before_reopening_gains_the_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "street-vision.sqlite")
    columns = [
        c
        for c in EVENT
        if c
        not in ("reopened_at", "reopens", "close_reason", "report", "verification", "failed_verifications")
    ]
    rest = ", ".join(columns[1:])
    old.execute(f"CREATE TABLE events (run_id INTEGER NOT NULL, event_id TEXT PRIMARY KEY, {rest})")
    old.execute(
        f"INSERT INTO events VALUES (1, {', '.join('?' * len(columns))})", [EVENT[c] for c in columns]
    )
    old.commit()
    old.close()
    store = Store(tmp_path, dispatch=True)
    store.record(
        [
            (
                Transition(
                    "close", 3.0, {**EVENT, "state": "resolved", "reopens": 0, "close_reason": "resolved"}
                ),
                {"transition": "close"},
            )
        ]
    )
    assert store.db.execute("SELECT event_id, state, reopens FROM events").fetchall() == [
        ("e1", "resolved", 0)
    ]


def test_transitions_and_the_camera_state_commit_together(tmp_path: Path) -> None:
    from vision.camera.unit import Snapshot

    store = Store(tmp_path, dispatch=True)
    store.record([(Transition("open", 1.0, EVENT), {"transition": "open"})], Snapshot({"pts": 1.0, "n": 1}))
    with pytest.raises(TypeError):  # a bad payload: neither the close nor the state after it is kept
        store.record(
            [(Transition("close", 3.0, {**EVENT, "state": "resolved"}), {"bad": object()})],
            Snapshot({"pts": 3.0, "n": 2}),
        )
    snapshot, _ = store.snapshot("cam")
    assert snapshot.state == {"pts": 1.0, "n": 1} and snapshot.arrays is None
    assert [e.event_id for e in store.open_events("cam")] == ["e1"] and store.cameras() == {"cam"}
    store.checkpoint("cam", Snapshot({"pts": 2.0}, b"arrays"))
    store.record([(Transition("update", 2.5, EVENT), {"transition": "update"})], Snapshot({"pts": 2.5}))
    snapshot, _ = store.snapshot("cam")  # a transition's state keeps the checkpoint's arrays
    assert snapshot.state == {"pts": 2.5} and snapshot.arrays == b"arrays"
    store.forget_camera("cam")
    assert store.snapshot("cam") is None
