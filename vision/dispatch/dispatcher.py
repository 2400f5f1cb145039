"""The dispatcher: one thread per dispatch target, each with its own handle on the store, delivering
that target's part of the outbox.

They only claim messages and record outcomes; the pipeline never waits for them, and a
target that is down holds back only its own messages, never another target's. A
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
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from vision.config import CameraConfig, Config, DispatchConfig
from vision.dispatch import open311_status, outbox
from vision.dispatch.media import MediaLinks
from vision.dispatch.open311 import Open311Client, Places
from vision.dispatch.targets import TargetConfig
from vision.dispatch.webhook import Answer, WebhookClient
from vision.store.base import EventStore, StoreOpener

log = logging.getLogger(__name__)

IDLE_POLL_S = 1.0  # also picks up messages written or re-sent by another process
HELD_POLL_S = 0.1  # a due message that another dispatcher is sending: look again this soon, not at once
DRAIN_POLL_S = 0.05


def backoff(attempts: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Seconds before attempt ``attempts + 1``: doubling from ``initial`` up to ``maximum``, times 0.5-1.

    The jitter spreads retries of many messages (and many senders) after an outage.
    """
    delay = min(maximum, initial * 2.0 ** min(attempts - 1, 60))
    return delay * (0.5 + 0.5 * rng.random())


class Client(Protocol):
    """What a lane needs of a target's client: deliver one message, and let go of its connections."""

    def send(self, message: outbox.Message) -> Answer: ...
    def close(self) -> None: ...


class Dispatcher:
    """Delivers the outbox of one store to every target of ``config`` (``dispatch.webhook_url`` is the
    target named ``webhook``); ``open_store`` is called in each thread that uses the handle it returns.
    ``cameras`` place Open311 requests; ``data_dir`` keeps the key of their media links."""

    def __init__(
        self,
        open_store: StoreOpener,
        config: DispatchConfig,
        cameras: dict[str, CameraConfig] | None = None,
        data_dir: Path | None = None,
    ) -> None:
        targets = config.all_targets()
        if not targets:
            raise ValueError("dispatch needs dispatch.webhook_url and dispatch.secret, or dispatch.targets")
        self.open_store = open_store
        self.dead_letters: Counter[str] = Counter()  # by reason: permanent, exhausted (read by /metrics)
        self.on_report: Callable[[str], None] | None = None  # a polled status was stored for this camera
        media = MediaLinks(config.public_url, data_dir) if config.public_url and data_dir else None
        places = _places(cameras or {})
        self.lanes = [Lane(self, name, target, places, media) for name, target in targets.items()]

    @classmethod
    def of(cls, open_store: StoreOpener, config: Config) -> Dispatcher:
        return cls(open_store, config.dispatch, config.cameras, config.storage.data_dir)

    def start(self) -> None:
        for lane in self.lanes:
            lane.start()

    def notify(self) -> None:
        """A new message was committed: look now rather than at the next poll."""
        for lane in self.lanes:
            lane.wake.set()

    def stop(self) -> None:
        """Finish the attempts in flight (bounded by their timeouts) and stop."""
        for lane in self.lanes:
            lane.stopping.set()
            lane.wake.set()
        for lane in self.lanes:
            lane.join()

    def drain(self, seconds: float) -> outbox.Counts:
        """Wait up to ``seconds`` until nothing deliverable to these targets is left; return what is where
        (the whole outbox, messages to targets not in the config included)."""
        store = self.open_store()
        try:
            deadline = time.monotonic() + seconds
            while True:
                left = sum(store.outbox_counts(lane.name).deliverable for lane in self.lanes)
                if left == 0 or time.monotonic() >= deadline:
                    return store.outbox_counts()
                time.sleep(DRAIN_POLL_S)
        finally:
            store.close()


class Lane:
    """One target's delivery thread: its messages in order, its retries, its dead letters, and (Open311)
    the polls of its requests' status."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        name: str,
        target: TargetConfig,
        places: Places,
        media: MediaLinks | None,
    ) -> None:
        self.dispatcher = dispatcher
        self.name = name
        self.target = target
        self.client: Client
        self.poller: Open311Client | None = None
        if target.kind == "open311":
            self.poller = Open311Client(target, places, media)
            self.client = self.poller
        else:
            assert target.secret is not None, "a webhook target has a secret (checked by the config)"
            self.client = WebhookClient(target.url, target.secret, target.timeout)
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._rng = random.Random()
        self._next_poll = 0.0  # monotonic

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"dispatcher-{self.name}", daemon=True)
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(self.target.timeout + 5.0)
        self.client.close()

    def _run(self) -> None:
        store = self.dispatcher.open_store()
        try:
            while not self.stopping.is_set():
                try:
                    sent = self.deliver_one(store)
                    self._poll(store)
                except Exception:  # a store problem must not silently end delivery for the whole run
                    log.exception(
                        "dispatcher %s: cannot read or update the outbox in %s", self.name, store.location
                    )
                    sent = False
                if not sent:
                    self.wake.wait(self._idle_seconds(store))
                    self.wake.clear()
        finally:
            store.close()

    def _poll(self, store: EventStore) -> None:
        """Ask the Open311 target about its open requests when ``poll_interval`` has passed."""
        if self.poller is None or time.monotonic() < self._next_poll:
            return
        self._next_poll = time.monotonic() + self.target.poll_interval
        open311_status.poll(store, self.name, self.poller, self.dispatcher.on_report)

    def _idle_seconds(self, store: EventStore) -> float:
        try:
            due = store.next_attempt_at(self.name)
        except Exception:  # the store is down: look again at the next poll
            log.exception("dispatcher %s: cannot read the outbox in %s", self.name, store.location)
            due = None
        wait = IDLE_POLL_S if due is None else due - time.time()
        # due already, yet not claimed: held by another dispatcher until its send ends
        idle = min(IDLE_POLL_S, wait if wait > 0 else HELD_POLL_S)
        if self.poller is not None:
            idle = min(idle, max(0.0, self._next_poll - time.monotonic()))
        return idle

    def deliver_one(self, store: EventStore) -> bool:
        """Attempt this target's message that is due first, if any; True when one was attempted."""
        with store.claim(time.time(), self.name) as message:
            if message is None:
                return False
            self._attempt(store, message)
            return True

    def _attempt(self, store: EventStore, message: outbox.Message) -> None:
        """Send one claimed message and record the outcome."""
        answer = self.client.send(message)
        if answer.delivered:
            store.mark_delivered(message, answer.ticket_id, answer.replace)
            ticket = answer.ticket_id or message.ticket_id
            log.info(
                "delivered %s %s to %s%s",
                message.kind,
                message.key,
                self.name,
                f" (ticket {ticket})" if ticket else "",
            )
            return
        attempts = message.attempts + 1
        error = answer.error or "failed"
        if answer.permanent or attempts >= self.target.max_attempts:
            reason = "permanent" if answer.permanent else "exhausted"
            why = "refused for good" if answer.permanent else f"gave up after {attempts} attempts"
            store.mark_failed(message, f"{why}: {error}", None)
            self.dispatcher.dead_letters[reason] += 1
            log.error(
                "dead-lettered %s %s at %s (%s): %s; its event's later messages to %s wait behind it; "
                "after a fix, re-send with: street-vision outbox resend CONFIG --target %s",
                message.kind,
                message.key,
                self.name,
                why,
                error,
                self.name,
                self.name,
            )
            return
        delay = backoff(attempts, self.target.backoff_initial, self.target.backoff_max, self._rng)
        delay = max(delay, answer.retry_after or 0.0)
        store.mark_failed(message, error, time.time() + delay)
        log.warning(
            "%s %s not delivered to %s: %s; attempt %d of %d, next in %.1f s (kept in the outbox)",
            message.kind,
            message.key,
            self.name,
            error,
            attempts,
            self.target.max_attempts,
            delay,
        )


def _places(cameras: dict[str, CameraConfig]) -> Places:
    """Where each zone and camera is for Open311 (under the zone name "" for the camera's own)."""
    places: Places = {}
    for camera_id, camera in cameras.items():
        if camera.location is not None:
            places[(camera_id, "")] = camera.location
        for zone_name, zone in camera.zones.items():
            if zone.location is not None:
                places[(camera_id, zone_name)] = zone.location
    return places
