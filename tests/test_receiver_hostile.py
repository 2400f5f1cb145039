"""The reference receiver under hostile requests: signature headers are checked before the body is
read, the body is capped while it streams in, odd bytes in a header are a 401 (never a 500), and an
update can never reopen a closed ticket."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from vision.dispatch.payload import body
from vision.dispatch.receiver import MAX_WEBHOOK_BODY
from vision.dispatch.signing import signed_headers
from vision.events.lifecycle import Timers

from .dispatch_support import SECRET, F, Receiver, Sender, T, steady

TIMERS = Timers(min_duration=1.0, close_after=2.0, update_interval=1.0, reopen_window=10.0)
WAIT_S = 10.0  # a refused request is answered within this, however much body is still to come


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    server = Receiver(tmp_path / "receiver.sqlite").start()
    yield server
    server.stop()


def raw_request(receiver: Receiver, headers: dict[str, bytes], body: bytes = b"") -> tuple[int, bytes]:
    """Send a request's head (and ``body``, maybe only part of what Content-Length says) over a bare
    socket; return the status and text the receiver answers without waiting for the rest."""
    head = f"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1:{receiver.port}\r\n".encode()
    head += b"".join(k.encode() + b": " + v + b"\r\n" for k, v in headers.items()) + b"\r\n"
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=WAIT_S) as sock:
        sock.sendall(head)
        with contextlib.suppress(OSError):  # answered and closed while the body still came: the point
            sock.sendall(body)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer) < answer.index(b"\r\n\r\n") + 10:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    return status, answer


def headers_for(timestamp: str, signature: bytes, length: int) -> dict[str, bytes]:
    return {
        "Content-Type": b"application/json",
        "Content-Length": str(length).encode(),
        "Idempotency-Key": b"e1.1",
        "X-Street-Vision-Timestamp": timestamp.encode(),
        "X-Street-Vision-Signature": signature,
    }


@pytest.mark.parametrize(
    ("signature", "why"),
    [
        ("v1=é".encode("latin-1"), b"malformed"),
        ("v1=ü".encode() * 30, b"malformed"),
        (b"v1=" + b"0" * 63, b"malformed"),
        (b"sha256=" + b"0" * 64, b"malformed"),
    ],
)
def test_a_malformed_signature_is_refused_before_the_body_is_read(
    receiver: Receiver, signature: bytes, why: bytes
) -> None:
    gigabyte = 2**30  # announced, never sent: the answer must not wait for it
    status, answer = raw_request(receiver, headers_for(str(int(time.time())), signature, gigabyte))
    assert status == 401 and why in answer


ARABIC_DIGITS = "\u0661\u0667" + "\u0660" * 8  # str.isdigit() says yes


@pytest.mark.parametrize(
    "timestamp",
    [ARABIC_DIGITS, "²", "1" * 40, str(int(time.time()) - 3600)],
    ids=["arabic-digits", "superscript", "40-digits", "an-hour-ago"],  # the same on every xdist worker
)
def test_a_bad_or_stale_timestamp_is_refused_before_the_body_is_read(
    receiver: Receiver, timestamp: str
) -> None:
    headers = headers_for("0", b"v1=" + b"0" * 64, 2**30)
    headers["X-Street-Vision-Timestamp"] = timestamp.encode()
    status, answer = raw_request(receiver, headers)
    assert (status == 401 and b"Timestamp" in answer) or b"stale" in answer


def test_a_body_over_the_cap_is_refused_while_it_streams(receiver: Receiver) -> None:
    signature = b"v1=" + b"0" * 64  # well formed, wrong: only the body can tell
    status, answer = raw_request(receiver, headers_for(str(int(time.time())), signature, 2**30))
    assert status == 413 and str(MAX_WEBHOOK_BODY).encode() in answer  # announced too large
    chunked = headers_for(str(int(time.time())), signature, 0)
    del chunked["Content-Length"]
    chunked["Transfer-Encoding"] = b"chunked"
    piece = b"x" * 65536
    stream = (f"{len(piece):x}\r\n".encode() + piece + b"\r\n") * (MAX_WEBHOOK_BODY // len(piece) + 4)
    status, answer = raw_request(receiver, chunked, stream)  # no end chunk: the sender never stops
    assert status == 413
    assert receiver.tickets() == []


def test_an_update_after_a_close_does_not_reopen_the_ticket(tmp_path: Path, receiver: Receiver) -> None:
    sender = Sender(tmp_path / "data", TIMERS)
    try:
        assert sender.feed([*steady(0, 2, T, 8), *steady(2.5, 6, F, 0)]) == ["open", "close"]
        ticket = None
        sent = []
        while (message := sender.store.next_due(time.time())) is not None:
            document = json.loads(body(message))
            document["ticket_id"] = ticket
            raw = json.dumps(document).encode()
            answer = httpx.post(
                receiver.url, content=raw, headers=signed_headers(SECRET, raw, message.key, time.time())
            )
            assert answer.status_code == 200, answer.text
            ticket = answer.json()["ticket_id"]
            sender.store.mark_delivered(message, None)
            sent.append(document)
    finally:
        sender.store.close()
    assert receiver.tickets()[0][2] == "closed"
    late = {
        **sent[0],
        "transition": "update",
        "sequence": 3,
        "idempotency_key": f"{sent[0]['event']['event_id']}.3",
    }
    late["ticket_id"] = ticket
    raw = json.dumps(late).encode()
    answer = httpx.post(
        receiver.url, content=raw, headers=signed_headers(SECRET, raw, late["idempotency_key"], time.time())
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "closed"
    assert receiver.tickets()[0][2] == "closed"
    assert [h[3] for h in receiver.history()] == ["open", "close", "update"]
    reopen = {
        **late,
        "transition": "reopen",
        "sequence": 4,
        "idempotency_key": late["idempotency_key"][:-1] + "4",
    }
    raw = json.dumps(reopen).encode()
    answer = httpx.post(
        receiver.url, content=raw, headers=signed_headers(SECRET, raw, reopen["idempotency_key"], time.time())
    )
    assert answer.status_code == 200 and answer.json()["state"] == "open"
    assert receiver.tickets()[0][2] == "open"
