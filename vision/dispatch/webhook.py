"""The webhook client: one signed POST per attempt, and an answer the dispatcher can act on.

Every failure becomes one readable line naming the URL (with any password in it
hidden) and what went wrong; the secret is only ever used to compute a signature.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from vision.dispatch.signing import signed_headers
from vision.secrets import redact_url

# httpx logs every request URL at INFO; a webhook URL may carry a token in its query.
logging.getLogger("httpx").setLevel(logging.WARNING)

EXCERPT = 200  # characters of an error answer worth showing


@dataclass(frozen=True, slots=True)
class Answer:
    """The outcome of one attempt: delivered (with the receiver's ticket id, if it gave one) or why not."""

    delivered: bool
    ticket_id: str | None = None
    error: str | None = None


class WebhookClient:
    """POSTs bodies to one URL; ``post`` never raises for network or HTTP trouble."""

    def __init__(self, url: str, secret: SecretStr, timeout: float) -> None:
        self.url = url
        self.shown_url = redact_url(url)
        self._secret = secret
        self._http = httpx.Client(timeout=timeout, follow_redirects=False)
        self.timeout = timeout

    def post(self, body: bytes, key: str) -> Answer:
        headers = signed_headers(self._secret.get_secret_value(), body, key, time.time())
        try:
            response = self._http.post(self.url, content=body, headers=headers)
        except httpx.TimeoutException:
            return self._failed(f"no answer within {self.timeout:g} s")
        except httpx.ConnectError as exc:
            return self._failed(f"cannot connect ({_reason(exc)})")
        except httpx.HTTPError as exc:
            return self._failed(f"{type(exc).__name__} ({_reason(exc)})")
        if response.is_success:
            return Answer(True, ticket_id=_ticket_id(response))
        hint = (
            " (redirects are not followed: set webhook_url to the final URL)" if response.is_redirect else ""
        )
        excerpt = " ".join(response.text[:EXCERPT].split())
        return self._failed(f"HTTP {response.status_code}{hint}" + (f": {excerpt}" if excerpt else ""))

    def close(self) -> None:
        self._http.close()

    def _failed(self, what: str) -> Answer:
        return Answer(False, error=f"POST {self.shown_url}: {what}")


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
