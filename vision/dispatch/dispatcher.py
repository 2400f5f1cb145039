"""The dispatcher: a thread with its own handle on the store that delivers the outbox.

It only claims messages and records outcomes; the pipeline never waits for it. A
failed attempt (a 5xx, a timeout, no connection, or 408/425/429) is retried with
exponential backoff and jitter (wall clock: this is about the network), waiting at
least what a 429/503's ``Retry-After`` asks; after ``max_attempts`` the message is
dead-lettered until an operator re-sends it. Any other 4xx is the receiver refusing
this message for good (a bad payload, a bad signature): it is dead-lettered at once,
with the answer kept, instead of blocking its event for a day of retries. Either way
only its own event's later messages wait behind it. A crash at any point loses
nothing: a message is marked delivered only after the receiver's 2xx answer, so at
worst it is sent again, with the same idempotency key. On PostgreSQL several
dispatchers (threads, processes, machines) may deliver one outbox: each claims the
message it sends, so none is sent twice by two of them.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter

from vision.config import DispatchConfig
from vision.dispatch import outbox, payload
from vision.dispatch.webhook import WebhookClient
from vision.store.base import EventStore, StoreOpener

log = logging.getLogger(__name__)

IDLE_POLL_S = 1.0  # also picks up messages written or re-sent by another process
DRAIN_POLL_S = 0.05


def backoff(attempts: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Seconds before attempt ``attempts + 1``: doubling from ``initial`` up to ``maximum``, times 0.5-1.

    The jitter spreads retries of many messages (and many senders) after an outage.
    """
    delay = min(maximum, initial * 2.0 ** min(attempts - 1, 60))
    return delay * (0.5 + 0.5 * rng.random())


class Dispatcher:
    """Delivers the outbox of one store to ``config.webhook_url``; ``open_store`` is called in the
    thread that uses the handle it returns."""

    def __init__(self, open_store: StoreOpener, config: DispatchConfig) -> None:
        if not config.webhook_url or config.secret is None:
            raise ValueError("dispatch needs dispatch.webhook_url and dispatch.secret")
        self.open_store = open_store
        self.config = config
        self.client = WebhookClient(config.webhook_url, config.secret, config.timeout)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rng = random.Random()
        self.dead_letters: Counter[str] = Counter()  # by reason: permanent, exhausted (read by /metrics)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dispatcher", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        """A new message was committed: look now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Finish the attempt in flight (bounded by the timeout) and stop."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self.config.timeout + 5.0)
        self.client.close()

    def drain(self, seconds: float) -> outbox.Counts:
        """Wait up to ``seconds`` until nothing deliverable is left; return what is where."""
        store = self.open_store()
        try:
            deadline = time.monotonic() + seconds
            while True:
                counts = store.outbox_counts()
                if counts.deliverable == 0 or time.monotonic() >= deadline:
                    return counts
                time.sleep(DRAIN_POLL_S)
        finally:
            store.close()

    def _run(self) -> None:
        store = self.open_store()
        try:
            while not self._stop.is_set():
                try:
                    sent = self.deliver_one(store)
                except Exception:  # a store problem must not silently end delivery for the whole run
                    log.exception("dispatcher: cannot read or update the outbox in %s", store.location)
                    sent = False
                if not sent:
                    self._wake.wait(self._idle_seconds(store))
                    self._wake.clear()
        finally:
            store.close()

    def _idle_seconds(self, store: EventStore) -> float:
        try:
            due = store.next_attempt_at()
        except Exception:  # the store is down: look again at the next poll
            log.exception("dispatcher: cannot read the outbox in %s", store.location)
            due = None
        return IDLE_POLL_S if due is None else min(IDLE_POLL_S, max(0.0, due - time.time()))

    def deliver_one(self, store: EventStore) -> bool:
        """Attempt the message that is due first, if any; True when one was attempted."""
        with store.claim(time.time()) as message:
            if message is None:
                return False
            self._attempt(store, message)
            return True

    def _attempt(self, store: EventStore, message: outbox.Message) -> None:
        """Send one claimed message and record the outcome."""
        answer = self.client.post(payload.body(message), message.key)
        if answer.delivered:
            store.mark_delivered(message, answer.ticket_id)
            ticket = answer.ticket_id or message.ticket_id
            log.info("delivered %s %s%s", message.kind, message.key, f" (ticket {ticket})" if ticket else "")
            return
        attempts = message.attempts + 1
        error = answer.error or "failed"
        if answer.permanent or attempts >= self.config.max_attempts:
            reason = "permanent" if answer.permanent else "exhausted"
            why = "refused for good" if answer.permanent else f"gave up after {attempts} attempts"
            store.mark_failed(message, f"{why}: {error}", None)
            self.dead_letters[reason] += 1
            log.error(
                "dead-lettered %s %s (%s): %s; its event's later messages wait behind it; after a fix, "
                "re-send with: street-vision outbox resend CONFIG",
                message.kind,
                message.key,
                why,
                error,
            )
            return
        delay = backoff(attempts, self.config.backoff_initial, self.config.backoff_max, self._rng)
        delay = max(delay, answer.retry_after or 0.0)
        store.mark_failed(message, error, time.time() + delay)
        log.warning(
            "%s %s not delivered: %s; attempt %d of %d, next in %.1f s (kept in the outbox)",
            message.kind,
            message.key,
            error,
            attempts,
            self.config.max_attempts,
            delay,
        )
