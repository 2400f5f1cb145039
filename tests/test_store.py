"""The store: an event, its transition and its outbox message are written together or not at all.

Each test runs on both backends (the ``storage`` fixture: SQLite and PostgreSQL) unless it is
about one of them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from vision.config import ConfigError, StorageConfig, parse_config
from vision.store import EventStore, Store, open_store
from vision.store.migrations import STEPS
from vision.types import Transition

from .pg_support import PASSWORD, PostgresServer

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


def query(store: EventStore, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (with ``?`` placeholders) on either backend."""
    return store.sql.execute(sql, params).fetchall()


def rows(store: EventStore, table: str) -> int:
    return query(store, f"SELECT COUNT(*) FROM {table}")[0][0]


def test_transition_and_outbox_message_commit_together_or_not_at_all(storage: StorageConfig) -> None:
    store = open_store(storage, dispatch=True)
    store.record([(Transition("open", 1.0, EVENT), {"transition": "open"})])
    store.record([(Transition("update", 2.0, {**EVENT, "count": 7}), {"transition": "update"})])
    with pytest.raises(TypeError):  # the payload cannot be stored: nothing of this transition may be
        store.record([(Transition("close", 3.0, {**EVENT, "state": "resolved"}), {"bad": object()})])
    assert (rows(store, "transitions"), rows(store, "outbox")) == (2, 2)
    assert query(store, "SELECT state, count FROM events") == [("open", 7)]
    assert query(store, "SELECT event_seq, status FROM outbox ORDER BY seq") == [
        (1, "pending"),
        (2, "pending"),
    ]
    store.close()


def test_without_dispatch_there_is_no_outbox_message(storage: StorageConfig) -> None:
    store = open_store(storage)
    store.record([(Transition("open", 1.0, EVENT), {"transition": "open"})])
    assert (rows(store, "transitions"), rows(store, "outbox")) == (1, 0)
    store.close()


def test_migrations_apply_once_and_a_second_run_numbers_its_own_rows(storage: StorageConfig) -> None:
    first = open_store(storage)
    versions = [step.version for step in STEPS]
    assert [row[0] for row in query(first, "SELECT version FROM schema_version ORDER BY version")] == versions
    second = open_store(storage)  # the schema is current: nothing is applied again
    assert rows(second, "schema_version") == len(versions)
    assert (first.run_id, second.run_id) == (1, 2)
    second.record([(Transition("open", 1.0, EVENT), {"transition": "open"})])
    assert query(first, "SELECT run_id FROM events") == [(2,)]
    first.close()
    second.close()


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
    assert query(store, "SELECT event_id, state, reopens FROM events") == [("e1", "resolved", 0)]
    versions = [row[0] for row in query(store, "SELECT version FROM schema_version")]
    assert versions == [step.version for step in STEPS]


def test_transitions_and_the_camera_state_commit_together(storage: StorageConfig) -> None:
    from vision.camera.unit import Snapshot

    store = open_store(storage, dispatch=True)
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
    assert query(store, "SELECT arrays FROM camera_arrays") == [(b"arrays",)]  # in their own table
    assert query(store, "SELECT arrays FROM camera_state") == [(None,)]
    store.forget_camera("cam")
    assert store.snapshot("cam") is None and rows(store, "camera_arrays") == 0
    store.close()


def test_a_checkpoint_stored_before_the_arrays_had_their_own_table_still_restores(
    storage: StorageConfig,
) -> None:
    """Step 6 moves camera_state's arrays to camera_arrays: a camera checkpointed before carries on."""
    from vision.camera.unit import Snapshot

    store = open_store(storage)
    store.checkpoint("cam", Snapshot({"pts": 2.0}, b"old arrays"))
    with store.sql.transaction():  # as a store from before step 6 holds its checkpoint
        store.sql.execute("DROP TABLE camera_arrays")
        store.sql.execute("UPDATE camera_state SET arrays = ?", (b"old arrays",))
        store.sql.execute("DELETE FROM schema_version WHERE version = 6")
    store.close()
    store = open_store(storage)
    saved = store.snapshot("cam")
    assert saved is not None and saved[0].state == {"pts": 2.0} and saved[0].arrays == b"old arrays"
    assert query(store, "SELECT arrays FROM camera_state") == [(None,)]
    store.close()


def test_storage_url_is_checked_and_its_password_never_shown(
    postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (
        "cameras: {cam: {url: x.mp4}}\nstorage:\n  url: postgresql://vision:${PGPASSWORD}@127.0.0.1:%d/%s\n"
    )
    database = postgres.database()
    config = parse_config(text % (postgres.port, database), env={"PGPASSWORD": PASSWORD})
    assert config.storage.url is not None and PASSWORD not in str(config.storage) + repr(config.storage)
    assert PASSWORD not in config.model_dump_json()
    store = open_store(config.storage)
    assert store.location == f"postgresql://vision:***@127.0.0.1:{postgres.port}/{database}"
    store.close()
    monkeypatch.setenv("PGPASSWORD", PASSWORD)  # none in the URL: libpq reads it from the environment
    bare = open_store(StorageConfig(url=postgres.url(database, password=None)))
    assert bare.outbox_counts().pending == 0
    bare.close()
    monkeypatch.delenv("PGPASSWORD")
    wrong = parse_config(text % (postgres.port, "postgres"), env={"PGPASSWORD": "not-the-password"})
    with pytest.raises(ConfigError) as refused:  # the server refuses the login: said, password hidden
        open_store(wrong.storage)
    assert "storage.url postgresql://vision:***@" in str(refused.value) and "password" in str(refused.value)
    assert "not-the-password" not in str(refused.value)
    with pytest.raises(ConfigError) as bad:
        parse_config("cameras: {cam: {url: x.mp4}}\nstorage: {url: 'mysql://db/x'}\n")
    assert "storage.url" in str(bad.value) and "must be a postgresql:// URL" in str(bad.value)
    with pytest.raises(ConfigError) as capped:
        parse_config("cameras: {cam: {url: x.mp4}}\nstorage: {url: 'postgresql://db/x', max_bytes: 1GB}\n")
    assert "max_bytes caps the SQLite file" in str(capped.value)


def test_the_api_reads_filter_order_and_count_alike_on_both_backends(storage: StorageConfig) -> None:
    store = open_store(storage, dispatch=True)
    for n, (camera, wall) in enumerate([("a", "2024-05-01T10:00:00.000+00:00"), ("b", None), ("a", None)]):
        event = {**EVENT, "event_id": f"e{n}", "camera": camera, "first_seen": float(10 - n)}
        payload = {"transition": "open"} | ({"wall_time": wall} if wall else {})
        store.record([(Transition("open", 1.0, event), payload)])
    store.record(
        [(Transition("close", 2.0, {**EVENT, "event_id": "e0", "camera": "a", "state": "resolved"}), {})]
    )
    assert [e["event_id"] for e in store.events({})] == ["e2", "e1", "e0"]  # newest first
    assert [e["event_id"] for e in store.events({"camera": "a", "state": "open"})] == ["e2"]
    assert [e["event_id"] for e in store.events({}, limit=1, offset=1)] == ["e1"]
    since = store.events({}, since="2024-05-01T09:00:00.000+00:00", until="2024-05-01T11:00:00.000+00:00")
    assert [(e["event_id"], e["wall_time"]) for e in since] == [("e0", "2024-05-01T10:00:00.000+00:00")]
    found = store.event("e0")
    assert found is not None and found[0]["state"] == "resolved"
    assert [(t["kind"], t["payload"]) for t in found[1]] == [
        ("open", {"transition": "open", "wall_time": "2024-05-01T10:00:00.000+00:00"}),
        ("close", {}),
    ]
    assert store.event("nope") is None
    assert [e.event_id for e in store.open_events()] == ["e2", "e1"]  # oldest first_seen first
    tallies = store.tallies()
    assert sorted(tallies.events) == [("crowd", "open", 2), ("crowd", "resolved", 1)]
    assert (tallies.attempts, tallies.delivered, tallies.outbox) == (0, 0, [("pending", 4)])
    with store.claim(0.0) as message:
        assert message is not None
        store.mark_failed(message, "down", None)
    assert [m["status"] for m in store.outbox_listing()] == ["dead", "pending", "pending", "blocked"]
    assert store.outbox_counts().to_record() == {"delivered": 0, "pending": 3, "blocked": 1, "dead": 1}
    assert store.resend("e1") == 0 and store.resend() == 1 and store.due_now() == 4
    store.close()


def test_postgres_connections_probe_a_vanished_peer_and_keep_the_urls_options(
    postgres: PostgresServer,
) -> None:
    """A dispatcher whose machine vanishes closes no connection; its row lock (the message it was
    sending) is freed only when the server gives up on the silent peer: in about 25 s, not the
    operating system's 2 hours. Options in the URL itself are kept beside the keepalives."""
    url = postgres.url(postgres.database()) + "?options=-c%20application_name%3Dsv-test"
    store = open_store(StorageConfig(url=url), run=False)
    try:
        settings = [
            query(store, f"SHOW {name}")[0][0]
            for name in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count")
        ]
        assert settings == ["10", "5", "3"]
        assert query(store, "SHOW application_name")[0][0] == "sv-test"
    finally:
        store.close()
