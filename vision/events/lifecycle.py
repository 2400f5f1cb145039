"""Debounce observations into events: pending -> open -> resolving -> resolved (-> reopened).

Timers add up stream time between consecutive healthy observations only, so an
UNKNOWN stretch (camera stalled, zone occluded) pauses them and never closes an
event: absence must be seen to be believed. A condition that comes back within
``reopen_window`` seconds of a close reopens the same event (and so the same
ticket) instead of opening a new one, so a worker's ticket is not split in two
by a brief lull.

Every close says why (:class:`vision.types.CloseReason`): ``resolved`` when absence
was seen; the camera unit closes events whose zone, rule or camera went away with
:meth:`Lifecycle.close`; an event nothing was seen of (neither present nor absent) for
``expire_after`` seconds closes as ``expired``. :meth:`Lifecycle.state` and
:meth:`Lifecycle.load` carry all of it across a restart; loaded timers come back
paused, so the time a process was down never counts towards opening or closing.
"""

from __future__ import annotations

import heapq
import itertools
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from vision.types import (
    OPERATOR_REPORTS,
    CloseReason,
    Condition,
    Detections,
    Event,
    EventState,
    Observation,
    Report,
    Transition,
    Verification,
)

Key = tuple[str, str, str, str]  # camera, zone, rule, subject


@dataclass(frozen=True, slots=True)
class Timers:
    """Seconds of stream time: to open, to close, between updates, and to reopen after a close."""

    min_duration: float
    close_after: float
    update_interval: float
    reopen_window: float  # 0: a closed event never reopens
    cooldown: float = 0.0  # after a close, no new event of this rule in this zone for this long
    expire_after: float = 0.0  # an open event seen neither present nor absent this long closes; 0 never
    verify_within: float = 300.0  # after a report of "handled": seconds of watching to see it gone


@dataclass(slots=True)
class _Track:
    event: Event
    last_pts: float
    condition: Condition  # the last healthy (TRUE/FALSE) condition
    held: float = 0.0  # seconds that condition has held, healthy time only
    paused: bool = False  # the last observation was UNKNOWN: the gap since does not count
    pending: bool = True  # not yet (re)opened: nothing reported for this episode
    reopening: bool = False  # the episode continues a recently resolved event
    reported_count: int = 0
    reported_at: float = 0.0
    verify_left: float | None = None  # seconds of watching left to see a reported fix hold


@dataclass(slots=True)
class _Closed:
    """Resolved events that may still reopen, per camera (each camera has its own stream clock)."""

    events: dict[Key, Event] = field(default_factory=dict)
    expiry: list[tuple[float, int, Key, Event]] = field(default_factory=list)  # heap by deadline


class Lifecycle:
    """All events of the pipeline, keyed by (camera, zone, rule, subject)."""

    def __init__(self, timers: dict[tuple[str, str, str], Timers]) -> None:
        self.timers = timers  # by (camera, zone, rule)
        self.tracks: dict[Key, _Track] = {}
        self.closed: dict[str, _Closed] = {}
        self.last_close: dict[tuple[str, str, str], float] = {}  # by (camera, zone, rule), for cooldown
        self._tie = itertools.count()  # heap tie-breaker: events do not compare

    def update(self, obs: Observation) -> list[Transition]:
        """Feed one observation; return the transitions it caused (at most one)."""
        key = (obs.camera_id, obs.zone, obs.rule, obs.subject)
        timers = self.timers[(obs.camera_id, obs.zone, obs.rule)]
        closed = self._forget_expired(obs.camera_id, obs.pts)
        track = self.tracks.get(key)
        if track is None:
            if obs.condition is not Condition.TRUE:
                return []
            earlier = closed.events.get(key)
            event = self._new_event(obs) if earlier is None else earlier
            track = self.tracks[key] = _Track(
                event, obs.pts, Condition.TRUE, _credit(obs), reopening=earlier is not None
            )
            return self._maybe_open(key, track, obs, timers)
        if obs.condition is Condition.UNKNOWN:
            track.paused = True
            unseen = obs.pts - track.last_pts
            if not track.pending and timers.expire_after > 0 and unseen >= timers.expire_after:
                return [self.close(key, CloseReason.EXPIRED, obs.pts)]
            return []
        seen = 0.0 if track.paused else obs.pts - track.last_pts  # healthy time since the last verdict
        if obs.condition is not track.condition:
            track.condition, track.held = obs.condition, _credit(obs)
        else:
            track.held += seen
        if track.verify_left is not None:
            track.verify_left -= seen
        track.last_pts, track.paused = obs.pts, False
        event = track.event
        if obs.condition is Condition.TRUE:
            event.count, event.confidence = obs.count, max(event.confidence, obs.confidence)
            event.peak_count = max(event.peak_count, obs.count)
            if track.pending:
                return self._maybe_open(key, track, obs, timers)
            event.state = EventState.OPEN
            if track.verify_left is not None and track.verify_left <= 0:
                return [self._fix_failed(track, obs)]
            return self._maybe_update(track, obs, timers)
        # FALSE
        if track.pending:  # a blip: forget it (a resolved event stays reopenable until its window ends)
            del self.tracks[key]
            return []
        event.state = EventState.RESOLVING
        if track.held >= timers.close_after:
            event.count = obs.count
            verified = event.verification is Verification.PENDING
            reason = CloseReason.VERIFIED_FIXED if verified else CloseReason.RESOLVED
            return [self.close(key, reason, obs.pts, obs.boxes)]
        return []

    def report(self, key: Key, report: Report, pts: float, note: str | None = None) -> list[Transition]:
        """What the ticketing side says about the open event of ``key``: ``handled`` starts the camera's
        verification of the fix; ``rejected`` and ``cancelled`` close it now; the others are noted.
        An operator's ``false_alarm`` closes it ``rejected``, ``closed`` closes it ``closed_by_operator``
        with their ``note``; ``confirmed`` changes nothing (the store keeps it in the history)."""
        track = self.tracks.get(key)
        if track is None or track.pending:
            return []  # closed already (or never reported): the store keeps the report in the history
        if report is Report.FALSE_ALARM:
            return [self.close(key, CloseReason.REJECTED, pts)]
        if report is Report.CLOSED:
            return [replace(self.close(key, CloseReason.CLOSED_BY_OPERATOR, pts), note=note)]
        if report in OPERATOR_REPORTS:
            return []
        track.event.report = report
        if report is Report.REJECTED:
            return [self.close(key, CloseReason.REJECTED, pts)]
        if report is Report.CANCELLED:
            return [self.close(key, CloseReason.CANCELLED, pts)]
        if report is Report.HANDLED:
            track.event.verification = Verification.PENDING
            track.verify_left = self.timers[key[:3]].verify_within
        return []

    @staticmethod
    def _fix_failed(track: _Track, obs: Observation) -> Transition:
        """The condition is still there ``verify_within`` after the fix was reported: the ticket goes back."""
        event = track.event
        event.verification, track.verify_left = Verification.FAILED, None
        event.failed_verifications += 1
        track.reported_count, track.reported_at = obs.count, obs.pts
        return Transition("reopen", obs.pts, event.to_record(), obs.boxes)

    def find(self, event_id: str) -> Key | None:
        """The key of the episode under way that carries ``event_id``, if any."""
        return next((key for key, t in self.tracks.items() if t.event.event_id == event_id), None)

    def close(self, key: Key, reason: CloseReason, pts: float, boxes: Detections | None = None) -> Transition:
        """Close the open event of ``key`` now, saying why; only one seen gone (``resolved``,
        ``verified_fixed``) may reopen."""
        track = self.tracks.pop(key)
        event = track.event
        event.state, event.resolved_at, event.close_reason = EventState.RESOLVED, pts, reason
        if event.verification is Verification.PENDING:
            event.verification = Verification.PASSED if reason is CloseReason.VERIFIED_FIXED else None
        self.last_close[key[:3]] = pts
        timers = self.timers.get(key[:3])
        seen_gone = reason in (CloseReason.RESOLVED, CloseReason.VERIFIED_FIXED)
        if seen_gone and timers is not None and timers.reopen_window > 0:
            closed = self.closed.setdefault(key[0], _Closed())
            closed.events[key] = event
            heapq.heappush(closed.expiry, (pts + timers.reopen_window, next(self._tie), key, event))
        return Transition("close", pts, event.to_record(), boxes if boxes is not None else Detections.empty())

    def forget(self, key: Key) -> None:
        """Drop a pending (never reported) episode, e.g. of a zone that was removed."""
        del self.tracks[key]

    def open_events(self) -> list[Event]:
        """Events that are open or being verified as gone (not pending)."""
        return [t.event for t in self.tracks.values() if not t.pending]

    def live_keys(self) -> list[Key]:
        """Every (camera, zone, rule, subject) with an episode under way, pending or open."""
        return list(self.tracks)

    def is_pending(self, key: Key) -> bool:
        return self.tracks[key].pending

    def state(self) -> dict[str, Any]:
        """Every episode, reopenable close and cooldown, as JSON-ready values."""
        return {
            "tracks": [
                {
                    "key": list(key),
                    "event": t.event.to_record(),
                    "last_pts": t.last_pts,
                    "condition": t.condition.value,
                    "held": t.held,
                    "pending": t.pending,
                    "reopening": t.reopening,
                    "reported_count": t.reported_count,
                    "reported_at": t.reported_at,
                    "verify_left": t.verify_left,
                }
                for key, t in self.tracks.items()
            ],
            "closed": [
                {"key": list(key), "event": event.to_record(), "deadline": deadline}
                for closed in self.closed.values()
                for deadline, _, key, event in closed.expiry
                if closed.events.get(key) is event
            ],
            "last_close": [[*key, pts] for key, pts in self.last_close.items()],
        }

    def load(self, state: dict[str, Any]) -> None:
        """Take back :meth:`state`; every episode comes back paused (the gap is unknown time)."""
        for item in state["tracks"]:
            key = _key(item["key"])
            self.tracks[key] = _Track(
                Event.from_record(item["event"]),
                float(item["last_pts"]),
                Condition(item["condition"]),
                held=float(item["held"]),
                paused=True,
                pending=bool(item["pending"]),
                reopening=bool(item["reopening"]),
                reported_count=int(item["reported_count"]),
                reported_at=float(item["reported_at"]),
                verify_left=item.get("verify_left"),
            )
        for item in state["closed"]:
            key, event = _key(item["key"]), Event.from_record(item["event"])
            closed = self.closed.setdefault(key[0], _Closed())
            closed.events[key] = event
            heapq.heappush(closed.expiry, (float(item["deadline"]), next(self._tie), key, event))
        for camera, zone, rule, pts in state["last_close"]:
            self.last_close[(camera, zone, rule)] = float(pts)

    def adopt(self, event: Event, pts: float) -> None:
        """Carry on an open event known only from the store (no snapshot of it): paused, nothing held."""
        key = (event.camera_id, event.zone, event.rule, event.subject)
        if key not in self.tracks:
            event.state = EventState.OPEN
            self.tracks[key] = _Track(event, pts, Condition.TRUE, paused=True, pending=False)
            self.tracks[key].reported_count, self.tracks[key].reported_at = event.count, pts

    def _forget_expired(self, camera_id: str, pts: float) -> _Closed:
        """Drop this camera's resolved events whose reopen window has passed (amortized O(1))."""
        closed = self.closed.setdefault(camera_id, _Closed())
        while closed.expiry and closed.expiry[0][0] < pts:
            _, _, key, event = heapq.heappop(closed.expiry)
            if closed.events.get(key) is event:
                del closed.events[key]
        return closed

    @staticmethod
    def _new_event(obs: Observation) -> Event:
        return Event(
            event_id=uuid.uuid4().hex,
            rule=obs.rule,
            camera_id=obs.camera_id,
            zone=obs.zone,
            subject=obs.subject,
            state=EventState.PENDING,
            first_seen=obs.pts - _credit(obs),
            confidence=obs.confidence,
            count=obs.count,
            peak_count=obs.count,
        )

    def _maybe_open(self, key: Key, track: _Track, obs: Observation, timers: Timers) -> list[Transition]:
        if track.held < timers.min_duration:
            return []
        last_close = self.last_close.get(key[:3])
        if not track.reopening and last_close is not None and obs.pts - last_close < timers.cooldown:
            return []  # cooling down: it stays pending, and opens once the cooldown is over
        event = track.event
        track.pending = False
        track.reported_count, track.reported_at = event.count, obs.pts
        if track.reopening:
            self.closed[obs.camera_id].events.pop(key, None)
            event.state, event.reopened_at, event.resolved_at = EventState.OPEN, obs.pts, None
            event.close_reason, event.verification = None, None
            event.reopens += 1
            return [Transition("reopen", obs.pts, event.to_record(), obs.boxes)]
        event.state, event.opened_at = EventState.OPEN, obs.pts
        return [Transition("open", obs.pts, event.to_record(), obs.boxes)]

    @staticmethod
    def _maybe_update(track: _Track, obs: Observation, timers: Timers) -> list[Transition]:
        if obs.count == track.reported_count or obs.pts - track.reported_at < timers.update_interval:
            return []
        track.reported_count, track.reported_at = obs.count, obs.pts
        return [Transition("update", obs.pts, track.event.to_record(), obs.boxes)]


def _credit(obs: Observation) -> float:
    """Seconds a condition held before it was first observed (a static object's age), else 0."""
    return 0.0 if obs.since is None or obs.condition is not Condition.TRUE else max(0.0, obs.pts - obs.since)


def _key(values: list[str]) -> Key:
    camera, zone, rule, subject = (str(v) for v in values)
    return camera, zone, rule, subject
