"""The outbox's SQL: enqueue in the store's transaction, claim, record outcomes, re-send, count, list.

An event's messages go out strictly in order: a message is claimable only when every
earlier one of its event is delivered (it is the event's *head*), so a dead-lettered
open holds back its updates until it is re-sent. On PostgreSQL several dispatchers
share one outbox: :meth:`OutboxQueries.claim` locks the head it takes (``FOR UPDATE
SKIP LOCKED``) for as long as its delivery runs, so no other dispatcher takes it, and
the event's next message is no head until this one is recorded delivered.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from vision.dispatch.outbox import Counts, Message
from vision.store.database import Database

# Pending messages whose earlier messages (same event) are all delivered: the ones that may go now.
_HEADS = """
o.status = 'pending' AND NOT EXISTS (
    SELECT 1 FROM outbox p WHERE p.event_id = o.event_id AND p.event_seq < o.event_seq
    AND p.status != 'delivered'
)
"""

_DETAILS = "JOIN transitions t ON t.seq = o.seq LEFT JOIN remote_tickets r ON r.event_id = o.event_id"

_BLOCKED = """
EXISTS (SELECT 1 FROM outbox p WHERE p.event_id = o.event_id AND p.event_seq < o.event_seq
        AND p.status = 'dead')
"""

LISTING = (
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


class OutboxQueries:
    """The outbox operations of a store over ``self.sql``."""

    sql: Database

    def enqueue(self, seq: int, event_id: str) -> None:
        """Add transition ``seq`` as the next message of its event (call inside the store's transaction)."""
        self.sql.execute(
            "INSERT INTO outbox (seq, event_id, event_seq) "
            "SELECT ?, ?, COALESCE(MAX(event_seq), 0) + 1 FROM outbox WHERE event_id = ?",
            (seq, event_id, event_id),
        )

    def next_due(self, now: float) -> Message | None:
        """The message to send now: the earliest due head of any event (no lock: for a look)."""
        return self._due(now, "")

    @contextmanager
    def claim(self, now: float) -> Iterator[Message | None]:
        """The message to send now, kept from every other dispatcher until the block ends; record its
        outcome inside the block. On SQLite (one dispatcher per store) this is :meth:`next_due`: a write
        lock held over a network call would stall the pipeline."""
        if not self.sql.dialect.claim:
            yield self.next_due(now)
            return
        with self.sql.transaction():
            yield self._due(now, self.sql.dialect.claim)

    def _due(self, now: float, lock: str) -> Message | None:
        row = self.sql.execute(
            "SELECT o.seq, o.event_id, o.event_seq, t.kind, o.attempts, t.payload, o.recorded_at, "
            f"r.ticket_id FROM outbox o {_DETAILS} WHERE {_HEADS} AND o.next_attempt_at <= ? "
            f"ORDER BY o.next_attempt_at, o.seq LIMIT 1 {lock}",
            (now,),
        ).fetchone()
        return None if row is None else Message(*row)

    def next_attempt_at(self) -> float | None:
        """When the next message becomes due (wall clock), or None when nothing can be sent."""
        row = self.sql.execute(f"SELECT MIN(o.next_attempt_at) FROM outbox o WHERE {_HEADS}").fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def mark_delivered(self, message: Message, ticket_id: str | None) -> None:
        """Record the delivery and, from the first answer that has one, the remote ticket id."""
        with self.sql.transaction():
            self.sql.execute(
                "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, last_error = NULL, "
                f"delivered_at = {self.sql.dialect.now} WHERE seq = ?",
                (message.seq,),
            )
            if ticket_id:
                self.sql.execute(
                    "INSERT INTO remote_tickets (event_id, ticket_id) VALUES (?, ?) "
                    "ON CONFLICT (event_id) DO NOTHING",
                    (message.event_id, ticket_id),
                )

    def mark_failed(self, message: Message, error: str, retry_at: float | None) -> None:
        """Schedule another attempt at ``retry_at`` (wall clock), or dead-letter when it is None."""
        with self.sql.transaction():
            self.sql.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, status = ? "
                "WHERE seq = ?",
                (error, retry_at or 0.0, "pending" if retry_at is not None else "dead", message.seq),
            )

    def resend(self, event_id: str | None = None) -> int:
        """Put dead-lettered messages (all, or one event's) back in line with fresh attempts."""
        one = "" if event_id is None else " AND event_id = ?"
        with self.sql.transaction():
            return self.sql.execute(
                "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = 0 "
                f"WHERE status = 'dead'{one}",
                () if event_id is None else (event_id,),
            ).rowcount

    def due_now(self) -> int:
        """Make every pending message due now, cutting its backoff short (after the receiver is fixed)."""
        with self.sql.transaction():
            return self.sql.execute("UPDATE outbox SET next_attempt_at = 0 WHERE status = 'pending'").rowcount

    def outbox_counts(self) -> Counts:
        by_status = dict(self.sql.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall())
        blocked = self.sql.execute(
            f"SELECT COUNT(*) FROM outbox o WHERE o.status = 'pending' AND {_BLOCKED}"
        ).fetchone()
        return Counts(
            by_status.get("delivered", 0),
            by_status.get("pending", 0),
            blocked[0] if blocked else 0,
            by_status.get("dead", 0),
        )

    def outbox_listing(
        self, include_delivered: bool = False, event_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Messages in order (all, or one event's), with their state, for ``street-vision outbox list``
        and the API."""
        where = [] if include_delivered else ["o.status != 'delivered'"]
        where += [] if event_id is None else ["o.event_id = ?"]
        rows = self.sql.execute(
            "SELECT o.seq, o.event_id, o.event_seq, t.kind, "
            f"CASE WHEN o.status = 'pending' AND {_BLOCKED} THEN 'blocked' ELSE o.status END, "
            "o.attempts, o.next_attempt_at, o.recorded_at, o.delivered_at, o.last_error, r.ticket_id "
            f"FROM outbox o {_DETAILS}{' WHERE ' + ' AND '.join(where) if where else ''} "
            "ORDER BY o.seq",
            () if event_id is None else (event_id,),
        ).fetchall()
        return [dict(zip(LISTING, row, strict=True)) for row in rows]
