"""The webhook client: one signed POST per attempt, and an answer the dispatcher can act on.

Every failure becomes one readable line naming the URL (with any password in it
hidden) and what went wrong; the secret is only ever used to compute a signature.
"""

from __future__ import annotations

import email.utils
import logging
import time
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from vision.dispatch import payload
from vision.dispatch.outbox import Message
from vision.dispatch.signing import signed_headers
from vision.secrets import redact_url

# httpx logs every request URL at INFO; a webhook URL may carry a token in its query.
logging.getLogger("httpx").setLevel(logging.WARNING)

EXCERPT = 200  # characters of an error answer worth showing
# 4xx answers that say "not now" rather than "never": timeout, too early, too many requests
TRANSIENT_4XX = frozenset({408, 425, 429})
RETRY_AFTER_MAX_S = 3600.0  # a Retry-After further out than this is taken as this


@dataclass(frozen=True, slots=True)
class Answer:
    """The outcome of one attempt: delivered (with the receiver's ticket id, if it gave one) or why not."""

    delivered: bool
    ticket_id: str | None = None
    error: str | None = None
    status: int | None = None  # the HTTP status, when there was an answer
    retry_after: float | None = None  # seconds the receiver asked to wait (429, 503)
    replace: bool = False  # ticket_id replaces the event's earlier one (an Open311 reopen's new request)
    final: bool = False  # refused for good whatever the status (a 2xx that does not say what it filed)

    @property
    def permanent(self) -> bool:
        """The receiver refused this message for good (a 4xx but 408/425/429): resending cannot help."""
        if self.final:
            return True
        return self.status is not None and 400 <= self.status < 500 and self.status not in TRANSIENT_4XX


class WebhookClient:
    """POSTs bodies to one URL; ``post`` never raises for network or HTTP trouble."""

    def __init__(self, url: str, secret: SecretStr, timeout: float) -> None:
        self.url = url
        self.shown_url = redact_url(url)
        self._secret = secret
        self._http = httpx.Client(timeout=timeout, follow_redirects=False)
        self.timeout = timeout

    def send(self, message: Message) -> Answer:
        """Deliver one outbox message (the dispatcher's interface to every kind of target)."""
        return self.post(payload.body(message), message.key)

    def post(self, body: bytes, key: str) -> Answer:
        headers = signed_headers(self._secret.get_secret_value(), body, key, time.time())
        try:
            response = self._http.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Answer(False, error=f"POST {self.shown_url}: {unreachable(exc, self.timeout)}")
        if response.is_success:
            return Answer(True, ticket_id=_ticket_id(response))
        return refused(response, f"POST {self.shown_url}", "webhook_url")

    def close(self) -> None:
        self._http.close()


def unreachable(exc: httpx.HTTPError, timeout: float) -> str:
    """Why a request got no answer, in a few words that never include the request."""
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({_reason(exc)})"
    return f"{type(exc).__name__} ({_reason(exc)})"


def refused(response: httpx.Response, request: str, setting: str, excerpt: str | None = None) -> Answer:
    """A non-2xx answer as a failed attempt: its status, what the receiver said (``excerpt``, or the start
    of its body) and how long it asked us to wait."""
    hint = f" (redirects are not followed: set {setting} to the final URL)" if response.is_redirect else ""
    said = " ".join(response.text[:EXCERPT].split()) if excerpt is None else excerpt
    return Answer(
        False,
        error=f"{request}: HTTP {response.status_code}{hint}" + (f": {said}" if said else ""),
        status=response.status_code,
        retry_after=_retry_after(response) if response.status_code in (429, 503) else None,
    )


def _reason(exc: httpx.HTTPError) -> str:
    """httpx's own words (e.g. '[Errno 111] Connection refused'); they never include the request."""
    return str(exc) or type(exc).__name__


def _ticket_id(response: httpx.Response) -> str | None:
    """The ``ticket_id`` of a JSON answer; receivers that answer 204 or plain text give none."""
    try:
        data = response.json()
    except ValueError:
        return None
    value = data.get("ticket_id") if isinstance(data, dict) else None
    return str(value) if value is not None else None


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds from now (delta-seconds or an HTTP date), capped; None if absent or bad."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return min(float(value), RETRY_AFTER_MAX_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        return None
    return min(max(0.0, when.timestamp() - time.time()), RETRY_AFTER_MAX_S)
