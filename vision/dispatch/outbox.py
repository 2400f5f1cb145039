"""The durable outbox: one message per transition to deliver, kept in the store.

Messages are written by the store in the same transaction as the event and its
transition, so nothing can be sent that was not recorded, and nothing recorded can be
lost by a crash. The dispatcher only claims them and records outcomes (the SQL is the
store's: :mod:`vision.store.outbox`). An event's messages go out strictly in order: a
message waits until every earlier one of its event is delivered, so a dead-lettered
open holds back its updates until it is re-sent.

Retry times are wall-clock Unix seconds: they are about the network, not the stream.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Message:
    """One outbox row with what is needed to send it."""

    id: int  # the row: one per transition and target
    target: str  # the dispatch target's name
    seq: int  # the transition
    event_id: str
    event_seq: int
    kind: str
    attempts: int
    payload: str  # the stored transition payload (JSON)
    recorded_at: str
    ticket_id: str | None  # the receiver's ticket id, once its first answer gave one

    @property
    def key(self) -> str:
        """The idempotency key: the same for every attempt, across restarts; unique per target."""
        return f"{self.event_id}.{self.event_seq}"


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
