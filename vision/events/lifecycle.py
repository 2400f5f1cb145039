"""Debounce observations into events: pending -> open -> resolving -> resolved.

Timers add up stream time between consecutive healthy observations only, so an
UNKNOWN stretch (camera stalled, zone occluded) pauses them and never closes an
event: absence must be seen to be believed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from vision.types import Condition, Event, EventState, Observation, Transition

Key = tuple[str, str, str, str]  # camera, zone, rule, subject


@dataclass(frozen=True, slots=True)
class Timers:
    """Seconds of stream time: to open, to close, and between updates."""

    min_duration: float
    close_after: float
    update_interval: float


@dataclass(slots=True)
class _Track:
    event: Event
    last_pts: float
    condition: Condition  # the last healthy (TRUE/FALSE) condition
    held: float = 0.0  # seconds that condition has held, healthy time only
    paused: bool = False  # the last observation was UNKNOWN: the gap since does not count
    reported_count: int = 0
    reported_at: float = 0.0


class Lifecycle:
    """All events of the pipeline, keyed by (camera, zone, rule, subject)."""

    def __init__(self, timers: dict[tuple[str, str, str], Timers]) -> None:
        self.timers = timers  # by (camera, zone, rule)
        self.tracks: dict[Key, _Track] = {}

    def update(self, obs: Observation) -> list[Transition]:
        """Feed one observation; return the transitions it caused (at most one)."""
        key = (obs.camera_id, obs.zone, obs.rule, obs.subject)
        timers = self.timers[(obs.camera_id, obs.zone, obs.rule)]
        track = self.tracks.get(key)
        if track is None:
            if obs.condition is not Condition.TRUE:
                return []
            track = self.tracks[key] = _Track(self._new_event(obs), obs.pts, Condition.TRUE)
            return self._maybe_open(track, obs, timers)
        if obs.condition is Condition.UNKNOWN:
            track.paused = True
            return []
        if obs.condition is not track.condition:
            track.condition, track.held = obs.condition, 0.0
        elif not track.paused:
            track.held += obs.pts - track.last_pts
        track.last_pts, track.paused = obs.pts, False
        event = track.event
        if obs.condition is Condition.TRUE:
            event.count, event.confidence = obs.count, max(event.confidence, obs.confidence)
            event.peak_count = max(event.peak_count, obs.count)
            if event.state is EventState.PENDING:
                return self._maybe_open(track, obs, timers)
            event.state = EventState.OPEN
            return self._maybe_update(track, obs, timers)
        # FALSE
        if event.state is EventState.PENDING:
            del self.tracks[key]
            return []
        event.state = EventState.RESOLVING
        if track.held >= timers.close_after:
            event.state, event.resolved_at, event.count = EventState.RESOLVED, obs.pts, obs.count
            del self.tracks[key]
            return [Transition("close", obs.pts, event.to_record(), obs.boxes)]
        return []

    def open_events(self) -> list[Event]:
        """Events that are open or being verified as gone (not pending)."""
        return [t.event for t in self.tracks.values() if t.event.state is not EventState.PENDING]

    @staticmethod
    def _new_event(obs: Observation) -> Event:
        return Event(
            event_id=uuid.uuid4().hex,
            rule=obs.rule,
            camera_id=obs.camera_id,
            zone=obs.zone,
            subject=obs.subject,
            state=EventState.PENDING,
            first_seen=obs.pts,
            confidence=obs.confidence,
            count=obs.count,
            peak_count=obs.count,
        )

    @staticmethod
    def _maybe_open(track: _Track, obs: Observation, timers: Timers) -> list[Transition]:
        if track.held < timers.min_duration:
            return []
        event = track.event
        event.state, event.opened_at = EventState.OPEN, obs.pts
        track.reported_count, track.reported_at = event.count, obs.pts
        return [Transition("open", obs.pts, event.to_record(), obs.boxes)]

    @staticmethod
    def _maybe_update(track: _Track, obs: Observation, timers: Timers) -> list[Transition]:
        if obs.count == track.reported_count or obs.pts - track.reported_at < timers.update_interval:
            return []
        track.reported_count, track.reported_at = obs.count, obs.pts
        return [Transition("update", obs.pts, track.event.to_record(), obs.boxes)]
