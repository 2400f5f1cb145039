"""The durable outbox: one row per transition to deliver, in the store's SQLite file.

Rows are written by the store in the same transaction as the event and its
transition, so nothing can be sent that was not recorded, and nothing recorded can be
lost by a crash. The dispatcher only reads and updates them. An event's messages go
out strictly in order: a message waits until every earlier one of its event is
delivered, so a dead-lettered open holds back its updates until it is re-sent.

Retry times are wall-clock Unix seconds: they are about the network, not the stream.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from vision.db import immediate

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY REFERENCES transitions (seq),
    event_id TEXT NOT NULL,
    event_seq INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    recorded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    delivered_at TEXT,
    last_error TEXT,
    UNIQUE (event_id, event_seq)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS remote_tickets (
    event_id TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL
);
"""

# Pending messages whose earlier messages (same event) are all delivered: the ones that may go now.
_HEADS = """
FROM outbox o
WHERE o.status = 'pending' AND NOT EXISTS (
    SELECT 1 FROM outbox p WHERE p.event_id = o.event_id AND p.event_seq < o.event_seq
    AND p.status != 'delivered'
)
"""

_DETAILS = "JOIN transitions t ON t.seq = o.seq LEFT JOIN remote_tickets r ON r.event_id = o.event_id"

_BLOCKED = """
EXISTS (SELECT 1 FROM outbox p WHERE p.event_id = o.event_id AND p.event_seq < o.event_seq
        AND p.status = 'dead')
"""


@dataclass(frozen=True, slots=True)
class Message:
    """One outbox row with what is needed to send it."""

    seq: int
    event_id: str
    event_seq: int
    kind: str
    attempts: int
    payload: str  # the stored transition payload (JSON)
    recorded_at: str
    ticket_id: str | None  # the receiver's ticket id, once its first answer gave one

    @property
    def key(self) -> str:
        """The idempotency key: the same for every attempt, across restarts."""
        return f"{self.event_id}.{self.event_seq}"


def enqueue(db: sqlite3.Connection, seq: int, event_id: str) -> None:
    """Add transition ``seq`` as the next message of its event (call inside the store's transaction)."""
    db.execute(
        "INSERT INTO outbox (seq, event_id, event_seq) "
        "SELECT ?, ?, COALESCE(MAX(event_seq), 0) + 1 FROM outbox WHERE event_id = ?",
        (seq, event_id, event_id),
    )


def next_due(db: sqlite3.Connection, now: float) -> Message | None:
    """The message to send now: the earliest due head of any event."""
    row = db.execute(
        "SELECT o.seq, o.event_id, o.event_seq, t.kind, o.attempts, t.payload, o.recorded_at, r.ticket_id "
        f"FROM (SELECT o.* {_HEADS} AND o.next_attempt_at <= ?) o {_DETAILS} "
        "ORDER BY o.next_attempt_at, o.seq LIMIT 1",
        (now,),
    ).fetchone()
    return None if row is None else Message(*row)


def next_attempt_at(db: sqlite3.Connection) -> float | None:
    """When the next message becomes due (wall clock), or None when nothing can be sent."""
    row = db.execute("SELECT MIN(o.next_attempt_at) " + _HEADS).fetchone()
    return None if row[0] is None else float(row[0])


def mark_delivered(db: sqlite3.Connection, message: Message, ticket_id: str | None) -> None:
    """Record the delivery and, from the first answer that has one, the remote ticket id."""
    with immediate(db):
        db.execute(
            "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, last_error = NULL, "
            "delivered_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE seq = ?",
            (message.seq,),
        )
        if ticket_id:
            db.execute(
                "INSERT OR IGNORE INTO remote_tickets (event_id, ticket_id) VALUES (?, ?)",
                (message.event_id, ticket_id),
            )


def mark_failed(db: sqlite3.Connection, message: Message, error: str, retry_at: float | None) -> None:
    """Schedule another attempt at ``retry_at`` (wall clock), or dead-letter when it is None."""
    with immediate(db):
        db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, status = ? "
            "WHERE seq = ?",
            (error, retry_at or 0.0, "pending" if retry_at is not None else "dead", message.seq),
        )


def resend(db: sqlite3.Connection, event_id: str | None = None) -> int:
    """Put dead-lettered messages (all, or one event's) back in line with fresh attempts."""
    with immediate(db):
        cursor = db.execute(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = 0 "
            "WHERE status = 'dead' AND (? IS NULL OR event_id = ?)",
            (event_id, event_id),
        )
    return cursor.rowcount


def due_now(db: sqlite3.Connection) -> int:
    """Make every pending message due now, cutting its backoff short (after the receiver is fixed)."""
    with immediate(db):
        cursor = db.execute("UPDATE outbox SET next_attempt_at = 0 WHERE status = 'pending'")
    return cursor.rowcount


@dataclass(frozen=True, slots=True)
class Counts:
    """How much of the outbox is where; ``blocked`` are pending behind a dead message of their event."""

    delivered: int = 0
    pending: int = 0
    blocked: int = 0
    dead: int = 0

    @property
    def deliverable(self) -> int:
        return self.pending - self.blocked

    def to_record(self) -> dict[str, int]:
        return {
            "delivered": self.delivered,
            "pending": self.pending,
            "blocked": self.blocked,
            "dead": self.dead,
        }


def counts(db: sqlite3.Connection) -> Counts:
    by_status = dict(db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall())
    blocked = db.execute(
        f"SELECT COUNT(*) FROM outbox o WHERE o.status = 'pending' AND {_BLOCKED}"
    ).fetchone()
    return Counts(
        by_status.get("delivered", 0), by_status.get("pending", 0), blocked[0], by_status.get("dead", 0)
    )


def listing(db: sqlite3.Connection, include_delivered: bool = False) -> list[dict[str, Any]]:
    """Messages in order, with their state, for ``street-vision outbox list``."""
    rows = db.execute(
        "SELECT o.seq, o.event_id, o.event_seq, t.kind, "
        f"CASE WHEN o.status = 'pending' AND {_BLOCKED} THEN 'blocked' ELSE o.status END, "
        "o.attempts, o.next_attempt_at, o.recorded_at, o.delivered_at, o.last_error, r.ticket_id "
        f"FROM outbox o {_DETAILS} WHERE ? OR o.status != 'delivered' ORDER BY o.seq",
        (include_delivered,),
    ).fetchall()
    names = (
        "seq",
        "event_id",
        "event_seq",
        "transition",
        "status",
        "attempts",
        "next_attempt_at",
        "recorded_at",
        "delivered_at",
        "last_error",
        "ticket_id",
    )
    return [dict(zip(names, row, strict=True)) for row in rows]
