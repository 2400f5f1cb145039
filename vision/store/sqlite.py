"""The SQLite store under the data folder: detections, events, their transitions, the outbox,
and each camera's last snapshot.

WAL mode lets the API and the dispatcher read while the pipeline writes. Each event
transition is committed together with the event row, the camera's snapshot (what its
rules and timers need to carry on) and, when dispatch is on, its outbox message, in one
transaction, before anything is sent. So after any crash the store says exactly which
tickets are open, and a restarted camera carries them on.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np

from vision.camera.unit import Snapshot
from vision.db import connect, immediate
from vision.dispatch import outbox
from vision.store import reports
from vision.types import Detections, Event, Transition

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    config_path TEXT
);
CREATE TABLE IF NOT EXISTS detections (
    run_id INTEGER NOT NULL,
    camera TEXT NOT NULL,
    pts REAL NOT NULL,
    class_id INTEGER NOT NULL,
    label TEXT NOT NULL,
    score REAL NOT NULL,
    x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL,
    track_id INTEGER NOT NULL,
    recorded_at REAL
);
CREATE INDEX IF NOT EXISTS detections_camera_pts ON detections (camera, pts);
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY,
    run_id INTEGER NOT NULL,
    type TEXT NOT NULL,
    camera TEXT NOT NULL,
    zone TEXT NOT NULL,
    subject TEXT NOT NULL,
    state TEXT NOT NULL,
    first_seen REAL NOT NULL,
    opened_at REAL,
    resolved_at REAL,
    reopened_at REAL,
    reopens INTEGER NOT NULL DEFAULT 0,
    confidence REAL NOT NULL,
    count INTEGER NOT NULL,
    peak_count INTEGER NOT NULL,
    updated_at REAL
);
CREATE TABLE IF NOT EXISTS transitions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL REFERENCES events (event_id),
    kind TEXT NOT NULL,
    pts REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS camera_state (
    camera TEXT PRIMARY KEY,
    pts REAL,
    state TEXT NOT NULL,
    arrays BLOB,
    saved_at REAL NOT NULL
);
"""

DETECTION_COLUMNS = "run_id, camera, pts, class_id, label, score, x1, y1, x2, y2, track_id, recorded_at"
EVENT_COLUMNS = (
    "event_id",
    "type",
    "camera",
    "zone",
    "subject",
    "state",
    "first_seen",
    "opened_at",
    "resolved_at",
    "reopened_at",
    "reopens",
    "confidence",
    "count",
    "peak_count",
    "close_reason",
    "report",
    "verification",
    "failed_verifications",
)


class Store:
    """One SQLite file; one instance per process, used from the pipeline's thread.

    With ``dispatch`` on, every recorded transition also becomes an outbox message.
    """

    def __init__(
        self, data_dir: Path, config_path: str | None = None, dispatch: bool = False, any_thread: bool = False
    ) -> None:
        self.path = store_path(data_dir)
        self.dispatch = dispatch
        self.db = connect(self.path, any_thread)  # any_thread: built in one thread, used in another
        self.db.executescript(SCHEMA)
        self.db.executescript(outbox.SCHEMA)
        self.db.executescript(reports.SCHEMA)
        _add_missing_columns(
            self.db,
            "events",
            {
                "reopened_at": "REAL",
                "reopens": "INTEGER NOT NULL DEFAULT 0",
                "close_reason": "TEXT",
                "report": "TEXT",
                "verification": "TEXT",
                "failed_verifications": "INTEGER NOT NULL DEFAULT 0",
                "updated_at": "REAL",
            },
        )
        _add_missing_columns(self.db, "detections", {"recorded_at": "REAL"})
        cursor = self.db.execute("INSERT INTO runs (config_path) VALUES (?)", (config_path,))
        self.run_id = int(cursor.lastrowid or 0)

    def add_detections(self, camera: str, pts: float, detections: Detections, names: dict[int, str]) -> None:
        """Append one frame's boxes (one executemany, no per-box Python objects kept)."""
        if len(detections) == 0:
            return
        n = len(detections)
        rows = zip(
            [self.run_id] * n,
            [camera] * n,
            [pts] * n,
            detections.class_id.tolist(),
            [names.get(int(c), str(int(c))) for c in detections.class_id],
            detections.score.tolist(),
            *np.round(detections.xyxy, 1).T.tolist(),
            detections.track_id.tolist(),
            [time.time()] * n,  # wall clock, for retention only
            strict=True,
        )
        with immediate(self.db):  # one commit per frame, not one per box
            self.db.executemany(f"INSERT INTO detections ({DETECTION_COLUMNS}) VALUES ({'?,' * 11}?)", rows)

    def record(
        self,
        transitions: list[tuple[Transition, dict[str, Any]]],
        snapshot: Snapshot | None = None,
        applied: tuple[str, ...] = (),
        changed: tuple[dict[str, Any], ...] = (),
    ) -> None:
        """Upsert the events, append the transitions (and their outbox messages), save the camera's
        snapshot after them and mark the inbound reports that caused them ``applied``, in one
        transaction: the store never says a ticket is open that the camera's state does not carry,
        nor the other way round, and a report is applied exactly once. ``changed`` are event records
        that changed without a transition (a verification under way)."""
        with immediate(self.db):
            for event in changed:
                self._upsert_event(event)
            for transition, payload in transitions:
                self._record(transition, payload)
            camera = snapshot.state.get("camera") if snapshot is not None else None
            if snapshot is not None and (transitions or applied):
                self._save_state(camera or transitions[0][0].event["camera"], snapshot)
            reports.mark_applied(self.db, list(applied))

    def pending_reports(self, camera: str) -> list[tuple[str, str, str]]:
        """(key, event id, status) of the camera's inbound reports not applied yet."""
        return reports.pending(self.db, camera)

    def _record(self, transition: Transition, payload: dict[str, Any]) -> None:
        event = transition.event
        self._upsert_event(event)
        cursor = self.db.execute(
            "INSERT INTO transitions (event_id, kind, pts, payload) VALUES (?,?,?,?)",
            (event["event_id"], transition.kind, transition.pts, json.dumps(payload)),
        )
        if self.dispatch:
            outbox.enqueue(self.db, int(cursor.lastrowid or 0), event["event_id"])

    def _upsert_event(self, event: dict[str, Any]) -> None:
        values = [event[c] for c in EVENT_COLUMNS]
        placeholders = ",".join("?" * (len(EVENT_COLUMNS) + 1))
        updates = ",".join(f"{c}=excluded.{c}" for c in EVENT_COLUMNS[1:])
        self.db.execute(  # updated_at: wall clock, for retention only
            f"INSERT INTO events (run_id,updated_at,{','.join(EVENT_COLUMNS)}) VALUES (?,{placeholders}) "
            f"ON CONFLICT(event_id) DO UPDATE SET updated_at=excluded.updated_at,{updates}",
            [self.run_id, time.time(), *values],
        )

    def checkpoint(self, camera: str, snapshot: Snapshot) -> None:
        """Save a camera's snapshot between transitions (timers under way, background model)."""
        with immediate(self.db):
            self._save_state(camera, snapshot)

    def _save_state(self, camera: str, snapshot: Snapshot) -> None:
        """Upsert the camera's state; arrays are replaced only when the snapshot has them."""
        self.db.execute(
            "INSERT INTO camera_state (camera, pts, state, arrays, saved_at) VALUES (?,?,?,?,?) "
            "ON CONFLICT(camera) DO UPDATE SET pts=excluded.pts, state=excluded.state, "
            "arrays=COALESCE(excluded.arrays, camera_state.arrays), saved_at=excluded.saved_at",
            (camera, snapshot.state.get("pts"), json.dumps(snapshot.state), snapshot.arrays, time.time()),
        )

    def snapshot(self, camera: str) -> tuple[Snapshot, float] | None:
        """A camera's last saved snapshot and the wall time it was saved, or None."""
        row = self.db.execute(
            "SELECT state, arrays, saved_at FROM camera_state WHERE camera = ?", (camera,)
        ).fetchone()
        return None if row is None else (Snapshot(json.loads(row[0]), row[1]), float(row[2]))

    def forget_camera(self, camera: str) -> None:
        """Drop a camera's snapshot (it left the config; its events were closed)."""
        with immediate(self.db):
            self.db.execute("DELETE FROM camera_state WHERE camera = ?", (camera,))

    def open_events(self, camera: str | None = None) -> list[Event]:
        """Events not resolved (one camera's, or all), oldest first: the tickets still open."""
        rows = self.db.execute(
            f"SELECT {','.join(EVENT_COLUMNS)} FROM events WHERE state != 'resolved' "
            "AND (? IS NULL OR camera = ?) ORDER BY first_seen",
            (camera, camera),
        ).fetchall()
        return [Event.from_record(dict(zip(EVENT_COLUMNS, row, strict=True))) for row in rows]

    def cameras(self) -> set[str]:
        """Cameras that have open events or a saved snapshot."""
        rows = self.db.execute(
            "SELECT camera FROM camera_state UNION SELECT camera FROM events WHERE state != 'resolved'"
        )
        return {row[0] for row in rows}

    def close(self) -> None:
        self.db.close()


def store_path(data_dir: Path) -> Path:
    """The store's file inside the data folder (the dispatcher and the CLI open it by this)."""
    return data_dir / "street-vision.sqlite"


def _add_missing_columns(db: sqlite3.Connection, table: str, columns: dict[str, str]) -> None:
    """Bring a store written by an older version up to date, keeping its rows."""
    present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
    for name, kind in columns.items():
        if name not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
