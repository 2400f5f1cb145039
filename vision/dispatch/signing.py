"""HMAC-SHA256 request signatures, shared by the webhook client and the reference receiver.

The signature covers ``"<timestamp>." + body``: the timestamp lets a receiver refuse
old requests (a replay), the body binds the signature to exactly what was sent.
"""

from __future__ import annotations

import hashlib
import hmac
import re

TIMESTAMP_HEADER = "X-Street-Vision-Timestamp"
SIGNATURE_HEADER = "X-Street-Vision-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SCHEME = "v1"
SECRET_ENV = "STREET_VISION_WEBHOOK_SECRET"  # where the reference receiver reads the shared secret
API_KEY_ENV = "STREET_VISION_OPEN311_API_KEY"  # the api_key of the GeoReport v2 test server
SIGNATURE = re.compile(rf"^{SCHEME}=[0-9a-f]{{64}}$")
TIMESTAMP = re.compile(r"^[0-9]{1,12}$")  # whole Unix seconds, ASCII digits only


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=<hex>``: HMAC-SHA256 of ``timestamp``, a dot and the raw body, keyed with ``secret``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def signed_headers(secret: str, body: bytes, key: str, now: float) -> dict[str, str]:
    """The headers of one delivery attempt (a retry gets a fresh timestamp, the same key)."""
    timestamp = str(int(now))
    return {
        "Content-Type": "application/json",
        IDEMPOTENCY_HEADER: key,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def check_headers(timestamp: str, sent: str, now: float, tolerance: float) -> str | None:
    """What can be refused before the body is read: a malformed timestamp or signature, or a stale
    timestamp. None when the headers are well formed and fresh, else why not (safe to return)."""
    if not TIMESTAMP.match(timestamp):
        return f"{TIMESTAMP_HEADER} must be whole Unix seconds"
    if not SIGNATURE.match(sent.strip()):
        return f"malformed {SIGNATURE_HEADER}: expected {SCHEME}= and 64 lowercase hex digits"
    age = now - int(timestamp)
    if abs(age) > tolerance:
        return f"stale timestamp: {age:.0f} s from the receiver's clock, tolerance {tolerance:.0f} s"
    return None


def verify(secret: str, timestamp: str, sent: str, body: bytes, now: float, tolerance: float) -> str | None:
    """None when the request is authentic and fresh, else why not (safe to return to the caller)."""
    problem = check_headers(timestamp, sent, now, tolerance)
    if problem:
        return problem
    if not hmac.compare_digest(signature(secret, timestamp, body), sent.strip()):
        return "bad signature"
    return None
