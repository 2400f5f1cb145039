"""The outbox's SQL: enqueue in the store's transaction, claim, record outcomes, re-send, count, list.

Each transition becomes one message per dispatch target its event is routed to (see
:mod:`vision.dispatch.routing`); each target has its own order. An event's messages to
one target go out strictly in order: a message is claimable only when every earlier
one of its event to that target is delivered (it is the event's *head* there), so a
dead-lettered open holds back its updates at that target, and only there, until it is
re-sent. On PostgreSQL several dispatchers
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

# Pending messages whose earlier messages (same event, same target) are all delivered: they may go now.
_HEADS = """
o.status = 'pending' AND NOT EXISTS (
    SELECT 1 FROM outbox p WHERE p.event_id = o.event_id AND p.target = o.target
    AND p.event_seq < o.event_seq AND p.status != 'delivered'
)
"""

_DETAILS = (
    "JOIN transitions t ON t.seq = o.seq "
    "LEFT JOIN remote_tickets r ON r.event_id = o.event_id AND r.target = o.target"
)

_BLOCKED = """
EXISTS (SELECT 1 FROM outbox p WHERE p.event_id = o.event_id AND p.target = o.target
        AND p.event_seq < o.event_seq AND p.status = 'dead')
"""

LISTING = (
    "seq",
    "target",
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

    def enqueue(self, seq: int, event_id: str, targets: list[str]) -> None:
        """Add transition ``seq`` as the next message of its event to each target (call inside the
        store's transaction)."""
        self.sql.executemany(
            "INSERT INTO outbox (seq, target, event_id, event_seq) "
            "SELECT ?, ?, ?, COALESCE(MAX(event_seq), 0) + 1 FROM outbox WHERE event_id = ? AND target = ?",
            [(seq, target, event_id, event_id, target) for target in targets],
        )

    def routed_targets(self, event_id: str) -> list[str]:
        """The targets an event's earlier messages went to (its later ones follow them)."""
        rows = self.sql.execute(
            "SELECT DISTINCT target FROM outbox WHERE event_id = ? ORDER BY target", (event_id,)
        )
        return [str(row[0]) for row in rows]

    def next_due(self, now: float, target: str | None = None) -> Message | None:
        """The message to send now: the earliest due head of any event (to ``target``, or any; no lock:
        for a look)."""
        return self._due(now, "", target)

    @contextmanager
    def claim(self, now: float, target: str | None = None) -> Iterator[Message | None]:
        """The message to send now (to ``target``, or any), kept from every other dispatcher until the
        block ends; record its outcome inside the block. On SQLite (one dispatcher per store) this is
        :meth:`next_due`: a write lock held over a network call would stall the pipeline."""
        if not self.sql.dialect.claim:
            yield self.next_due(now, target)
            return
        with self.sql.transaction():
            yield self._due(now, self.sql.dialect.claim, target)

    def _due(self, now: float, lock: str, target: str | None) -> Message | None:
        one = "" if target is None else " AND o.target = ?"
        row = self.sql.execute(
            "SELECT o.id, o.target, o.seq, o.event_id, o.event_seq, t.kind, o.attempts, t.payload, "
            f"o.recorded_at, r.ticket_id FROM outbox o {_DETAILS} WHERE {_HEADS} AND o.next_attempt_at <= ?"
            f"{one} ORDER BY o.next_attempt_at, o.id LIMIT 1 {lock}",
            (now,) if target is None else (now, target),
        ).fetchone()
        return None if row is None else Message(*row)

    def next_attempt_at(self, target: str | None = None) -> float | None:
        """When the next message (to ``target``, or any) becomes due (wall clock), or None when nothing
        can be sent."""
        one = "" if target is None else " AND o.target = ?"
        row = self.sql.execute(
            f"SELECT MIN(o.next_attempt_at) FROM outbox o WHERE {_HEADS}{one}",
            () if target is None else (target,),
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def mark_delivered(self, message: Message, ticket_id: str | None, replace: bool = False) -> None:
        """Record the delivery and, from the first answer that has one, the remote ticket id at its target
        (``replace``: this answer's id takes over, as when an Open311 reopen files a new request)."""
        with self.sql.transaction():
            self.sql.execute(
                "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, last_error = NULL, "
                f"delivered_at = {self.sql.dialect.now} WHERE id = ?",
                (message.id,),
            )
            if ticket_id:
                self.set_ticket(message.event_id, message.target, ticket_id, replace)

    def set_ticket(self, event_id: str, target: str, ticket_id: str, replace: bool = True) -> None:
        """The event's ticket id at ``target`` (an Open311 token turns into its request id later)."""
        conflict = "DO UPDATE SET ticket_id = excluded.ticket_id" if replace else "DO NOTHING"
        with self.sql.transaction():
            self.sql.execute(
                "INSERT INTO remote_tickets (event_id, target, ticket_id) VALUES (?, ?, ?) "
                f"ON CONFLICT (event_id, target) {conflict}",
                (event_id, target, ticket_id),
            )

    def mark_failed(self, message: Message, error: str, retry_at: float | None) -> None:
        """Schedule another attempt at ``retry_at`` (wall clock), or dead-letter when it is None."""
        with self.sql.transaction():
            self.sql.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, status = ? "
                "WHERE id = ?",
                (error, retry_at or 0.0, "pending" if retry_at is not None else "dead", message.id),
            )

    def resend(self, event_id: str | None = None, target: str | None = None) -> int:
        """Put dead-lettered messages (all, or one event's, or one target's) back in line with fresh
        attempts."""
        where, params = _narrow(event_id, target)
        with self.sql.transaction():
            return self.sql.execute(
                "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = 0 "
                f"WHERE status = 'dead'{where}",
                params,
            ).rowcount

    def due_now(self, target: str | None = None) -> int:
        """Make every pending message (to ``target``, or any) due now, cutting its backoff short (after
        the receiver is fixed)."""
        where, params = _narrow(None, target)
        with self.sql.transaction():
            return self.sql.execute(
                f"UPDATE outbox SET next_attempt_at = 0 WHERE status = 'pending'{where}", params
            ).rowcount

    def open_tickets(self, target: str) -> list[tuple[str, str]]:
        """(event id, ticket id) at ``target`` of events not resolved: what a status poll asks about."""
        rows = self.sql.execute(
            "SELECT r.event_id, r.ticket_id FROM remote_tickets r JOIN events e ON e.event_id = r.event_id "
            "WHERE r.target = ? AND e.state != 'resolved' ORDER BY r.event_id",
            (target,),
        )
        return [(str(e), str(t)) for e, t in rows]

    def outbox_counts(self, target: str | None = None) -> Counts:
        """How much of the outbox (to ``target``, or all of it) is where."""
        where, params = _narrow(None, target)
        by_status = dict(
            self.sql.execute(
                f"SELECT status, COUNT(*) FROM outbox WHERE 1 = 1{where} GROUP BY status", params
            ).fetchall()
        )
        blocked = self.sql.execute(
            f"SELECT COUNT(*) FROM outbox o WHERE o.status = 'pending' AND {_BLOCKED}{where}", params
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
            "SELECT o.seq, o.target, o.event_id, o.event_seq, t.kind, "
            f"CASE WHEN o.status = 'pending' AND {_BLOCKED} THEN 'blocked' ELSE o.status END, "
            "o.attempts, o.next_attempt_at, o.recorded_at, o.delivered_at, o.last_error, r.ticket_id "
            f"FROM outbox o {_DETAILS}{' WHERE ' + ' AND '.join(where) if where else ''} "
            "ORDER BY o.id",
            () if event_id is None else (event_id,),
        ).fetchall()
        return [dict(zip(LISTING, row, strict=True)) for row in rows]


def _narrow(event_id: str | None, target: str | None) -> tuple[str, tuple[str, ...]]:
    """`` AND ...`` conditions (unqualified columns) for one event and/or one target, with their values."""
    where, params = "", ()
    if event_id is not None:
        where, params = " AND event_id = ?", (event_id,)
    if target is not None:
        where, params = f"{where} AND target = ?", (*params, target)
    return where, params
