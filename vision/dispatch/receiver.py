"""The reference ticket receiver: what a city's ticketing side must do with street-vision's webhook.

Integrators copy it. It checks the signature headers before reading the body (a
malformed signature or a stale timestamp costs nothing), reads at most
``MAX_WEBHOOK_BODY`` bytes as they stream in, checks the signature over those raw
bytes before parsing them, answers a repeated idempotency key with the same ticket id
instead of applying it twice, applies an event's transitions in order only (an
``update`` for a closed ticket is kept in its history but only a ``reopen`` opens it
again), and keeps every ticket with its history in SQLite.

Run it with ``street-vision receiver`` (secret from ``STREET_VISION_WEBHOOK_SECRET``).
"""

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from vision.db import SharedFile, immediate
from vision.dispatch.payload import WebhookPayload
from vision.dispatch.signed import signed_body
from vision.dispatch.signing import IDEMPOTENCY_HEADER, SECRET_ENV, SIGNATURE_HEADER, TIMESTAMP_HEADER

WEBHOOK_PATH = "/webhook"
MAX_WEBHOOK_BODY = 1024 * 1024  # bytes; a transition with a hundred boxes is about 20 KiB

SCHEMA = """
CREATE TABLE IF NOT EXISTS tickets (
    ticket_id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    camera TEXT NOT NULL,
    zone TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'closed')),
    last_sequence INTEGER NOT NULL,
    event TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS history (
    idempotency_key TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES tickets (ticket_id),
    sequence INTEGER NOT NULL,
    transition TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    replays INTEGER NOT NULL DEFAULT 0,
    UNIQUE (ticket_id, sequence)
);
"""


class Receipt(BaseModel):
    """The answer to an accepted delivery; the sender stores ``ticket_id`` and quotes it later."""

    ticket_id: str = Field(description="This receiver's ticket for the event.")
    state: str = Field(description="open or closed, after this delivery.")
    duplicate: bool = Field(description="True when this idempotency key was already applied.")


class HistoryEntry(BaseModel):
    sequence: int
    transition: str
    idempotency_key: str
    received_at: str
    replays: int


class Ticket(BaseModel):
    """A ticket and every transition applied to it, in order."""

    ticket_id: str
    event_id: str
    type: str
    camera: str
    zone: str
    state: str
    event: dict[str, Any]
    created_at: str
    updated_at: str
    history: list[HistoryEntry]


class TicketStore(SharedFile):
    """The receiver's SQLite file, behind one connection that requests (on a thread pool) take in turn."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, SCHEMA)

    def apply(self, delivery: WebhookPayload, raw: bytes) -> Receipt:
        """Apply one transition once; a repeated key gets the same ticket id and only counts the replay."""
        with self.connection() as db, immediate(db):
            seen = db.execute(
                "SELECT h.ticket_id, t.state FROM history h JOIN tickets t USING (ticket_id) "
                "WHERE h.idempotency_key = ?",
                (delivery.idempotency_key,),
            ).fetchone()
            if seen is not None:
                db.execute(
                    "UPDATE history SET replays = replays + 1 WHERE idempotency_key = ?",
                    (delivery.idempotency_key,),
                )
                return Receipt(ticket_id=seen[0], state=seen[1], duplicate=True)
            ticket_id, state = self._ticket_for(db, delivery)
            if state == "closed" and delivery.transition == "update":  # late news of a closed ticket:
                db.execute(  # kept in order and in the history, but only a reopen opens it again
                    "UPDATE tickets SET last_sequence = ?, "
                    "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE ticket_id = ?",
                    (delivery.sequence, ticket_id),
                )
            else:
                state = "closed" if delivery.transition == "close" else "open"
                db.execute(
                    "UPDATE tickets SET state = ?, last_sequence = ?, event = ?, "
                    "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE ticket_id = ?",
                    (state, delivery.sequence, delivery.event.model_dump_json(), ticket_id),
                )
            db.execute(
                "INSERT INTO history (idempotency_key, ticket_id, sequence, transition, body) "
                "VALUES (?,?,?,?,?)",
                (delivery.idempotency_key, ticket_id, delivery.sequence, delivery.transition, raw.decode()),
            )
            return Receipt(ticket_id=ticket_id, state=state, duplicate=False)

    @staticmethod
    def _ticket_for(db: sqlite3.Connection, delivery: WebhookPayload) -> tuple[str, str]:
        """The ticket and its state now: the open creates it; every later transition must follow the
        last one applied."""
        event = delivery.event
        if delivery.transition == "open":
            if delivery.sequence != 1:
                raise HTTPException(422, f"an open must be sequence 1, got {delivery.sequence}")
            ticket_id = f"T-{uuid.uuid4().hex[:12]}"
            try:
                db.execute(
                    "INSERT INTO tickets (ticket_id, event_id, type, camera, zone, state, last_sequence, "
                    "event) VALUES (?,?,?,?,?,'open',0,'{}')",
                    (ticket_id, event.event_id, event.type, event.camera, event.zone),
                )
            except sqlite3.IntegrityError:
                raise HTTPException(409, f"event {event.event_id} already has a ticket") from None
            return ticket_id, "open"
        row = db.execute(
            "SELECT ticket_id, last_sequence, state FROM tickets WHERE event_id = ?", (event.event_id,)
        ).fetchone()
        if row is None:
            raise HTTPException(409, f"no ticket for event {event.event_id}: its open must come first")
        if delivery.ticket_id is not None and delivery.ticket_id != row[0]:
            raise HTTPException(
                409, f"ticket_id {delivery.ticket_id} is not the ticket of event {event.event_id}"
            )
        if delivery.sequence != row[1] + 1:
            raise HTTPException(409, f"out of order: expected sequence {row[1] + 1}, got {delivery.sequence}")
        return str(row[0]), str(row[2])

    def tickets(self) -> list[Ticket]:
        with self.connection() as db:
            rows = db.execute(
                "SELECT ticket_id, event_id, type, camera, zone, state, event, created_at, updated_at "
                "FROM tickets ORDER BY created_at, ticket_id"
            ).fetchall()
            return [self._ticket(db, row) for row in rows]

    def ticket(self, ticket_id: str) -> Ticket | None:
        with self.connection() as db:
            row = db.execute(
                "SELECT ticket_id, event_id, type, camera, zone, state, event, created_at, updated_at "
                "FROM tickets WHERE ticket_id = ?",
                (ticket_id,),
            ).fetchone()
            return None if row is None else self._ticket(db, row)

    @staticmethod
    def _ticket(db: sqlite3.Connection, row: tuple[Any, ...]) -> Ticket:
        history = db.execute(
            "SELECT sequence, transition, idempotency_key, received_at, replays FROM history "
            "WHERE ticket_id = ? ORDER BY sequence",
            (row[0],),
        ).fetchall()
        names = (
            "ticket_id",
            "event_id",
            "type",
            "camera",
            "zone",
            "state",
            "event",
            "created_at",
            "updated_at",
        )
        fields = dict(zip(names, row, strict=True))
        fields["event"] = json.loads(fields["event"])
        entries = [
            HistoryEntry(sequence=h[0], transition=h[1], idempotency_key=h[2], received_at=h[3], replays=h[4])
            for h in history
        ]
        return Ticket(**fields, history=entries)


def create_app(db_path: Path, secret: str, tolerance: float = 300.0) -> FastAPI:
    """The receiver as an ASGI app (the tests serve it with uvicorn on 127.0.0.1)."""
    if not secret:
        raise ValueError(f"the receiver needs the shared secret: set {SECRET_ENV}")
    store = TicketStore(db_path)
    app = FastAPI(title="street-vision reference ticket receiver", version="1")

    async def authentic(
        request: Request,
        timestamp: Annotated[str | None, Header(alias=TIMESTAMP_HEADER)] = None,
        signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
        key: Annotated[str | None, Header(alias=IDEMPOTENCY_HEADER)] = None,
    ) -> tuple[WebhookPayload, bytes]:
        """Headers first, then at most MAX_WEBHOOK_BODY raw bytes, authenticated before they are parsed:
        nothing unsigned is ever parsed, and a refused request costs no more than its headers."""
        raw = await signed_body(request, secret, tolerance, MAX_WEBHOOK_BODY, timestamp, signature, key)
        try:
            delivery = WebhookPayload.model_validate_json(raw)
        except ValidationError as exc:
            raise HTTPException(422, exc.errors(include_url=False, include_input=False)) from None
        if delivery.idempotency_key != key:
            raise HTTPException(400, f"{IDEMPOTENCY_HEADER} does not match the body's idempotency_key")
        return delivery, raw

    @app.post(WEBHOOK_PATH, response_model=Receipt, summary="Apply one ticket transition")
    async def receive(signed: Annotated[tuple[WebhookPayload, bytes], Depends(authentic)]) -> Receipt:
        return await run_in_threadpool(store.apply, *signed)

    @app.get("/tickets", response_model=list[Ticket], summary="Every ticket with its history")
    async def tickets() -> list[Ticket]:
        return await run_in_threadpool(store.tickets)

    @app.get("/tickets/{ticket_id}", response_model=Ticket, summary="One ticket with its history")
    async def ticket(ticket_id: str) -> Ticket:
        found = await run_in_threadpool(store.ticket, ticket_id)
        if found is None:
            raise HTTPException(404, f"no ticket {ticket_id}")
        return found

    @app.get("/health", summary="Liveness")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
