"""Reading a signed request: the one place both directions authenticate what they receive.

The reference receiver (outbound tickets) and the service's inbound report endpoint check
requests the same way: the signature headers first (a malformed signature or a stale
timestamp costs nothing), then at most ``max_body`` raw bytes as they stream in, and the
signature over exactly those bytes before anything parses them.
"""

from __future__ import annotations

import re
import time

from fastapi import HTTPException, Request

from vision.dispatch.signing import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    check_headers,
    verify,
)

KEY = re.compile(r"^[\x21-\x7e]{1,200}$")  # an idempotency key: printable ASCII, no spaces


async def capped_body(request: Request, max_body: int) -> bytes:
    """The body as it streams in, refused with 413 past ``max_body`` bytes (announced or not)."""
    too_big = HTTPException(413, f"body over {max_body} bytes")
    declared = request.headers.get("content-length", "")
    if declared and (not declared.isascii() or not declared.isdigit() or int(declared) > max_body):
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


async def signed_body(
    request: Request,
    secret: str,
    tolerance: float,
    max_body: int,
    timestamp: str | None,
    signature: str | None,
    key: str | None,
) -> bytes:
    """The raw body of an authentic, fresh request with a well-formed idempotency key; else a 4xx
    that says why (never what the secret or the expected signature is)."""
    for name, value in (
        (TIMESTAMP_HEADER, timestamp),
        (SIGNATURE_HEADER, signature),
        (IDEMPOTENCY_HEADER, key),
    ):
        if not value:
            raise HTTPException(401 if name != IDEMPOTENCY_HEADER else 400, f"missing {name} header")
    problem = check_headers(timestamp or "", signature or "", time.time(), tolerance)
    if problem:
        raise HTTPException(401, problem)
    if not KEY.match(key or ""):
        raise HTTPException(400, f"{IDEMPOTENCY_HEADER} must be 1 to 200 printable ASCII characters")
    raw = await capped_body(request, max_body)
    problem = verify(secret, timestamp or "", signature or "", raw, time.time(), tolerance)
    if problem:
        raise HTTPException(401, problem)
    return raw
