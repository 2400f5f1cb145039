"""Retention: one pruning pass over a store with controlled wall-clock ages, and the size cap.

Ages are set on the rows and files themselves (recorded_at, updated_at, delivered_at,
file mtimes), and the pass is given the time it runs at, so each test says exactly
what one pass removes and what it keeps. The pass runs on both backends (``storage``);
the size cap and the file's vacuum are SQLite's.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vision.config import ConfigError, StorageConfig, load_config
from vision.store import EventStore, Store, open_store
from vision.store.retention import Pruned, Retention
from vision.store.sqlite import database_bytes
from vision.types import Detections, Transition

from .conftest import ROOT
from .test_store import EVENT, query

NOW = 1_700_000_000.0
HOUR = 3600.0
BASE = {k: v for k, v in EVENT.items() if k not in ("event_id", "state")}


def kept(storage: StorageConfig, **overrides: object) -> StorageConfig:
    """``storage`` with the retention these tests are written for."""
    retention = {"detections": "1h", "snapshots": "2h", "delivered_outbox": "3h", "closed_events": "4h"}
    values = {"data_dir": storage.data_dir, "url": storage.url, "retention": retention, **overrides}
    return StorageConfig(**values)


def record(store: EventStore, event_id: str, kinds: list[str]) -> None:
    """Commit ``kinds`` as the event's transitions; the last one sets its state."""
    for i, kind in enumerate(kinds):
        state = "resolved" if kind == "close" else "open"
        event = {**BASE, "event_id": event_id, "state": state}
        store.record([(Transition(kind, float(i), event), {"transition": kind})])


def age(store: EventStore, event_id: str, seconds: float, outbox: str = "delivered") -> None:
    """Make an event last change ``seconds`` ago, its messages ``outbox`` (and delivered that long ago)."""
    with store.sql.transaction():
        store.sql.execute("UPDATE events SET updated_at = ? WHERE event_id = ?", (NOW - seconds, event_id))
        store.sql.execute(
            "UPDATE outbox SET status = ?, delivered_at = CASE WHEN ? = 'delivered' "
            f"THEN {store.sql.dialect.iso('?')} END WHERE event_id = ?",
            (outbox, outbox, NOW - seconds, event_id),
        )


def frames(store: EventStore, count: int, boxes: int, recorded_at: float | None) -> None:
    for i in range(count):
        detections = Detections.from_arrays(
            np.tile([[10.0, 10.0, 50.0, 90.0]], (boxes, 1)), np.full(boxes, 0.8), np.zeros(boxes)
        )
        store.add_detections("cam", float(i), detections, {0: "person"})
    store.sql.execute("UPDATE detections SET recorded_at = ? WHERE recorded_at > ?", (recorded_at, NOW))


def pictures(data_dir: Path, event_id: str, names: list[str], seconds_ago: float, size: int = 1000) -> None:
    folder = data_dir / "snapshots" / event_id
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = folder / name
        path.write_bytes(os.urandom(size))
        os.utime(path, (NOW - seconds_ago, NOW - seconds_ago))


def left(store: EventStore, table: str) -> list[object]:
    """The event ids in ``table``, in the order the rows were written."""
    order = {"transitions": "seq", "remote_tickets": "event_id"}.get(table, store.sql.dialect.rowid)
    return [row[0] for row in query(store, f"SELECT event_id FROM {table} ORDER BY {order}")]


def test_one_pass_removes_exactly_what_is_past_its_retention(storage: StorageConfig) -> None:
    tmp_path = storage.data_dir
    store = open_store(storage, dispatch=True)
    # detections: a frame from an old store (no recorded_at; its run began 10 h ago), two 2 h old, one fresh
    frames(store, 1, 3, None)
    query(store, f"UPDATE runs SET started_at = {store.sql.dialect.iso('?')}", NOW - 10 * HOUR)
    frames(store, 2, 2, NOW - 2 * HOUR)
    frames(store, 1, 4, NOW - 0.5 * HOUR)

    record(store, "closed-old", ["open", "update", "close"])  # gone, with all its rows
    age(store, "closed-old", 5 * HOUR)
    record(store, "closed-dead", ["open", "close"])  # its close is dead-lettered: kept whole
    age(store, "closed-dead", 5 * HOUR)
    query(store, "UPDATE outbox SET status = 'dead' WHERE event_id = 'closed-dead' AND event_seq = 2")
    record(store, "closed-pending", ["open", "close"])  # its close still waits: kept whole
    age(store, "closed-pending", 5 * HOUR)
    query(store, "UPDATE outbox SET status = 'pending' WHERE event_id = 'closed-pending' AND event_seq = 2")
    record(store, "open-old", ["open", "update", "update"])  # open: kept, but old delivered messages go
    age(store, "open-old", 5 * HOUR)
    record(store, "closed-young", ["open", "close"])  # closed an hour ago: kept
    age(store, "closed-young", 1 * HOUR)
    store.sql.executemany(
        "INSERT INTO remote_tickets (event_id, ticket_id, target) VALUES (?, ?, ?)",
        [("closed-old", "T-1", "webhook"), ("open-old", "T-2", "webhook")],
    )

    pictures(tmp_path, "closed-old", ["0000000.000-open.jpg", "0000002.000-close.jpg"], 5 * HOUR)
    pictures(tmp_path, "open-old", ["0000000.000-open.jpg", "0000000.000-open-annotated.jpg"], 5 * HOUR)
    pictures(tmp_path, "open-old", ["0000002.000-update.jpg", "0000002.000-update-annotated.jpg"], 5 * HOUR)
    pictures(tmp_path, "closed-young", ["0000000.000-open.jpg", "0000001.000-close.jpg"], 1 * HOUR)
    pictures(tmp_path, "orphan", ["0000000.000-open.jpg"], 3 * HOUR)  # its event is long gone

    retention = Retention(store, kept(storage))
    pruned = retention.prune(NOW)

    # delivered messages: all but the last of closed-old, open-old, and the delivered opens of the two kept
    # because of their close
    assert pruned == Pruned(detections=7, outbox=6, events=1, transitions=3, snapshots=5)
    assert query(store, "SELECT COUNT(*), MIN(recorded_at) FROM detections") == [(4, NOW - 0.5 * HOUR)]
    events = ["closed-dead", "closed-pending", "open-old", "closed-young"]
    assert left(store, "events") == events
    assert sorted(set(left(store, "transitions"))) == sorted(events)
    assert len(left(store, "transitions")) == 2 + 2 + 3 + 2
    # an event's last message stays (the next one numbers from it); dead and pending ones always do
    assert query(store, "SELECT event_id, event_seq, status FROM outbox ORDER BY seq") == [
        ("closed-dead", 2, "dead"),
        ("closed-pending", 2, "pending"),
        ("open-old", 3, "delivered"),
        ("closed-young", 1, "delivered"),
        ("closed-young", 2, "delivered"),
    ]
    assert left(store, "remote_tickets") == ["open-old"]
    snapshots = tmp_path / "snapshots"
    assert sorted(p.name for p in snapshots.iterdir()) == ["closed-young", "open-old"]
    assert sorted(p.name for p in (snapshots / "open-old").iterdir()) == [
        "0000002.000-update-annotated.jpg",
        "0000002.000-update.jpg",
    ]
    assert retention.sizes.snapshots == 4 * 1000

    # the next message of the open event continues its numbering
    record(store, "open-old", ["close"])
    assert query(store, "SELECT MAX(event_seq) FROM outbox WHERE event_id = 'open-old'") == [(4,)]
    # closed now: its last pictures and its earlier delivered message may go; the young event stays
    assert Retention(store, kept(storage)).prune(NOW) == Pruned(outbox=1, snapshots=2)
    assert "open-old" in left(store, "events")
    store.close()


def test_max_bytes_prunes_oldest_first_until_under_the_cap_and_the_file_shrinks(tmp_path: Path) -> None:
    sqlite = StorageConfig(data_dir=tmp_path)
    store = Store(tmp_path, dispatch=True)
    frames(store, 400, 200, NOW - 60)  # 80,000 detection rows, all within their retention
    record(store, "closed", ["open", "close"])
    age(store, "closed", 60)
    record(store, "open", ["open"])
    age(store, "open", 60)
    pictures(tmp_path, "closed", ["0000000.000-open.jpg", "0000001.000-close.jpg"], 60, 400_000)
    pictures(tmp_path, "open", ["0000000.000-open.jpg"], 60, 400_000)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = database_bytes(store.path)
    assert before > 5_000_000

    cap = 700_000  # less than the pictures alone: the closed event's must go too
    retention = Retention(store, kept(sqlite, max_bytes=cap))
    pruned = retention.prune(NOW)

    assert pruned == Pruned(detections=80_000, snapshots=2)
    assert left(store, "events") == ["closed", "open"]  # under the cap before closed events were needed
    assert [p.name for p in (tmp_path / "snapshots").iterdir()] == ["open"]
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    after = database_bytes(store.path)
    assert after + 400_000 <= cap and after < before / 4  # the file itself shrank (incremental vacuum)

    # a cap below what open events need: everything closed goes, open ones stay
    tight = Retention(store, kept(sqlite, max_bytes="10KB")).prune(NOW)
    assert tight.events == 1 and left(store, "events") == ["open"]
    assert store.db.execute("SELECT COUNT(*) FROM detections").fetchone() == (0,)
    assert [p.name for p in (tmp_path / "snapshots").iterdir()] == ["open"]
    store.close()


def test_a_store_from_before_retention_gains_the_columns_and_is_pruned_by_its_runs(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "street-vision.sqlite")
    old.executescript(
        "CREATE TABLE runs (run_id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL "
        "DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), "
        "config_path TEXT);"
        "CREATE TABLE detections (run_id INTEGER NOT NULL, camera TEXT NOT NULL, pts REAL NOT NULL, "
        "class_id INTEGER NOT NULL, label TEXT NOT NULL, score REAL NOT NULL, x1 REAL NOT NULL, "
        "y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL, track_id INTEGER NOT NULL);"
        "INSERT INTO runs (started_at) VALUES ('2020-01-01T00:00:00.000Z');"
        "INSERT INTO detections VALUES (1, 'cam', 0.5, 0, 'person', 0.9, 1, 2, 3, 4, -1);"
    )
    old.commit()
    old.close()
    store = Store(tmp_path)
    frames(store, 1, 2, NOW - 60)
    assert Retention(store, kept(StorageConfig(data_dir=tmp_path))).prune(NOW).detections == 1
    assert store.db.execute("SELECT COUNT(*) FROM detections").fetchone() == (2,)
    store.close()


def test_durations_read_as_seconds_or_with_a_unit_and_errors_name_the_key(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "cameras: {cam: {url: x.mp4}}\n"
        "storage:\n  retention: {detections: 15m, snapshots: 2d, delivered_outbox: null,\n"
        "    closed_events: 7200}\n"
        "  max_bytes: 2GB\n"
    )
    storage_config = load_config(config).storage
    assert storage_config.retention.detections == 900
    assert storage_config.retention.snapshots == 2 * 86400
    assert storage_config.retention.delivered_outbox is None
    assert storage_config.retention.closed_events == 7200
    assert storage_config.max_bytes == 2_000_000_000
    config.write_text("cameras: {cam: {url: x.mp4}}\nstorage:\n  retention: {detections: a day}\n")
    with pytest.raises(ConfigError) as bad:
        load_config(config)
    assert "storage.retention.detections: 'a day' is not a duration" in str(bad.value)
    config.write_text("cameras: {cam: {url: x.mp4}}\nstorage:\n  retention: {closed_events: 30s}\n")
    with pytest.raises(ConfigError) as short:
        load_config(config)
    assert "storage.retention.closed_events (30 s) must be longer than events.reopen_window" in str(
        short.value
    )


def test_store_prune_command_prints_what_it_removed_and_converts_an_old_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    created = sqlite3.connect(data / "street-vision.sqlite")  # as versions before retention did
    created.execute("PRAGMA journal_mode=WAL")
    created.close()
    store = Store(data, dispatch=True)
    assert not store.shrinks
    frames(store, 3, 2, 1000.0)  # recorded in 1970: past any retention
    store.close()
    config = tmp_path / "c.yaml"
    config.write_text(f"cameras: {{cam: {{url: x.mp4}}}}\nstorage: {{data_dir: {data}}}\n")
    done = subprocess.run(
        [sys.executable, "-m", "vision.cli", "store", "prune", str(config), "--vacuum"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.splitlines()[0]
        == "pruned: 6 detections, 0 outbox, 0 events, 0 transitions, 0 snapshots, 0 clips"
    )
    assert done.stdout.splitlines()[1].startswith("store: database ")
    with sqlite3.connect(data / "street-vision.sqlite") as db:  # rewritten: later prunes shrink the file
        assert db.execute("PRAGMA auto_vacuum").fetchone() == (2,)
    missing = subprocess.run(
        [sys.executable, "-m", "vision.cli", "store", "prune", str(tmp_path / "none.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_clips_go_with_the_snapshots_and_their_rows_with_them(storage: StorageConfig) -> None:
    tmp_path = storage.data_dir
    store = open_store(storage)
    record(store, "open-old", ["open", "update"])  # open: the clip of its latest transition stays
    record(store, "closed-old", ["open", "close"])
    age(store, "closed-old", 1 * HOUR)  # the event stays (closed_events: 4 h), its pictures go (2 h)
    for event_id, names in (
        ("open-old", ["0000000.000-open.mp4", "0000001.000-close.mp4"]),
        ("closed-old", ["0000000.000-open.mp4", "0000001.000-close.mp4"]),
    ):
        pictures(tmp_path, event_id, [n.replace(".mp4", ".jpg") for n in names] + names, 3 * HOUR)
        for name in names:
            pts, kind = float(name[:11]), name[12:-4]
            clip = {"event_id": event_id, "kind": kind, "pts": pts, "file": f"snapshots/{event_id}/{name}"}
            store.add_clip(clip | {"start_pts": pts - 1, "end_pts": pts + 1, "frames": 3, "bytes": 1000})

    pruned = Retention(store, kept(storage)).prune(NOW)

    assert (pruned.snapshots, pruned.clips) == (3, 3)
    assert [c["file"] for c in store.clips("open-old")] == ["snapshots/open-old/0000001.000-close.mp4"]
    assert store.clips("closed-old") == []
    assert sorted(p.name for p in (tmp_path / "snapshots" / "open-old").iterdir()) == [
        "0000001.000-close.jpg",
        "0000001.000-close.mp4",
    ]
    # a closed event pruned whole takes its clip rows along
    record(store, "open-old", ["close"])
    age(store, "open-old", 5 * HOUR)
    assert Retention(store, kept(storage)).prune(NOW).events == 1
    assert query(store, "SELECT COUNT(*) FROM clips") == [(0,)]
    store.close()
