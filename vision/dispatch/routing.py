"""Which dispatch targets an event goes to: its type, its camera's group and the hour it happened.

An event is routed once, by the first of its transitions that dispatch sees (its open);
every later transition follows it to the same targets, so a ticket opened at 21:59
also gets its close at 22:05. The hour is the event's own time: the frame's wall time
that the payload carries for live cameras, else the wall-clock moment the transition was
committed (a recording read as fast as possible has no wall time of its own).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

from vision.dispatch.targets import IMPLICIT, TargetConfig


@dataclass(frozen=True)
class Route:
    """One target's conditions, ready to test."""

    target: str
    types: frozenset[str] | None
    groups: frozenset[str] | None
    spans: tuple[tuple[clock, clock], ...]
    zone: ZoneInfo

    @classmethod
    def of(cls, name: str, target: TargetConfig) -> Route:
        types = target.types()
        groups = target.route.groups
        return cls(
            name,
            None if types is None else frozenset(types),
            None if groups is None else frozenset(groups),
            tuple(target.route.spans()),
            ZoneInfo(target.route.timezone),
        )

    def takes(self, event_type: str, group: str | None, moment: float) -> bool:
        if self.types is not None and event_type not in self.types:
            return False
        if self.groups is not None and group not in self.groups:
            return False
        return not self.spans or within(datetime.fromtimestamp(moment, self.zone).time(), self.spans)


def within(local: clock, spans: tuple[tuple[clock, clock], ...]) -> bool:
    """Whether a local time of day falls in any span; a span whose end is before its start runs past
    midnight. The start is inside, the end is not."""
    return any(
        (start <= local < end) if start < end else (local >= start or local < end) for start, end in spans
    )


def event_time(payload: dict[str, Any], now: float) -> float:
    """The event's wall time: the frame's (``wall_time`` of a live camera), else ``now``."""
    wall = payload.get("wall_time")
    if isinstance(wall, str):
        try:
            moment = datetime.fromisoformat(wall.replace("Z", "+00:00"))
        except ValueError:
            return now
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return now


class Router:
    """The routes of a config's targets and the cameras' groups."""

    def __init__(self, targets: dict[str, TargetConfig], groups: dict[str, str | None]) -> None:
        self.routes = [Route.of(name, target) for name, target in targets.items()]
        self.groups = groups

    @classmethod
    def everything(cls) -> Router:
        """The single webhook of ``dispatch.webhook_url``: every event, to the target named ``webhook``."""
        router = cls({}, {})
        router.routes = [Route(IMPLICIT, None, None, (), ZoneInfo("UTC"))]
        return router

    @property
    def names(self) -> list[str]:
        return [route.target for route in self.routes]

    def targets(self, event: dict[str, Any], payload: dict[str, Any], now: float | None = None) -> list[str]:
        """The targets whose routes take this event at the time of this transition."""
        moment = event_time(payload, time.time() if now is None else now)
        group = self.groups.get(event["camera"])
        return [r.target for r in self.routes if r.takes(event["type"], group, moment)]
