"""Inbound reports: what the ticketing side says about an event (acknowledged, handled, rejected, ...).

A report is written here (deduplicated by the sender's idempotency key) before anything
acts on it, then applied by the camera unit that holds the event, between two frames;
it is marked applied in the same transaction as whatever it caused (a close, or the
camera's state with a verification under way). A report that arrives while no process
runs the camera is applied when it is restored. So none is lost, and none applies twice.
"""

from __future__ import annotations

import sqlite3
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    key TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    status TEXT NOT NULL,
    note TEXT,
    ticket_id TEXT,
    received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    applied INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS reports_event ON reports (event_id);
"""


def add(
    db: sqlite3.Connection, key: str, event_id: str, status: str, note: str | None, ticket_id: str | None
) -> bool:
    """Keep one report; False when its key was seen before (a retry: nothing to apply again)."""
    cursor = db.execute(
        "INSERT OR IGNORE INTO reports (key, event_id, status, note, ticket_id) VALUES (?,?,?,?,?)",
        (key, event_id, status, note, ticket_id),
    )
    return cursor.rowcount == 1


def pending(db: sqlite3.Connection, camera: str) -> list[tuple[str, str, str]]:
    """(key, event id, status) of the camera's reports not applied yet, in the order they came."""
    return db.execute(
        "SELECT r.key, r.event_id, r.status FROM reports r JOIN events e USING (event_id) "
        "WHERE r.applied = 0 AND e.camera = ? ORDER BY r.rowid",
        (camera,),
    ).fetchall()


def mark_applied(db: sqlite3.Connection, keys: list[str]) -> None:
    """Call inside the transaction that commits what the reports caused."""
    db.executemany("UPDATE reports SET applied = 1 WHERE key = ?", [(k,) for k in keys])


def history(db: sqlite3.Connection, event_id: str) -> list[dict[str, Any]]:
    """Every report of one event, oldest first."""
    rows = db.execute(
        "SELECT status, note, ticket_id, received_at, applied FROM reports WHERE event_id = ? ORDER BY rowid",
        (event_id,),
    ).fetchall()
    names = ("status", "note", "ticket_id", "received_at", "applied")
    return [dict(zip(names, row, strict=True)) | {"applied": bool(row[4])} for row in rows]
