"""Event-level scores per event type, over every video of a suite.

Precision asks how many tickets had a real incident behind them (a duplicate is
redundant, not false: it is counted on its own); recall asks how many real incidents
got a ticket. Times are in seconds of video: time to detect is first open minus the
incident's start, time to close is last close minus its end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vision.evaluate.match import Matching, Role, Ticket
from vision.evaluate.truth import Incident

Metrics = dict[str, float | int | None]

# what each key means, for the report and for the threshold file's checks
METRIC_HELP = {
    "incidents": "real incidents (not ambiguous)",
    "detected": "real incidents with at least one ticket",
    "tickets": "tickets opened",
    "false_tickets": "tickets with no incident behind them",
    "duplicates": "tickets beyond the first for the same incident",
    "precision": "tickets with a real incident / tickets (ambiguous ones left out)",
    "recall": "detected / incidents",
    "f1": "harmonic mean of precision and recall",
    "duplicates_per_incident": "duplicates / detected",
    "time_to_detect_mean": "mean seconds from incident start to its first ticket",
    "time_to_detect_max": "longest seconds from incident start to its first ticket",
    "time_to_close_mean": "mean seconds from incident end to its last ticket closing",
    "time_to_close_max": "longest seconds from incident end to its last ticket closing",
    "false_closes": "tickets closed while their incident was still going on",
    "unclosed": "incidents that ended, whose ticket stayed open to the end of a video that went on long "
    "enough for the rule to close it (its close time and the tolerance after the incident's end)",
}


@dataclass(frozen=True)
class VideoMatch:
    """One video's tickets, incidents and their matching, and what its camera watched."""

    tickets: list[Ticket]
    incidents: list[Incident]
    matching: Matching
    watched: list[tuple[str, str]] = field(default_factory=list)  # (event type, zone) pairs


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _stats(values: list[float], name: str) -> Metrics:
    if not values:
        return {f"{name}_mean": None, f"{name}_max": None}
    return {f"{name}_mean": float(np.mean(values)), f"{name}_max": float(np.max(values))}


def event_metrics(videos: list[VideoMatch]) -> dict[str, Metrics]:
    """Scores per event type: every type watched, or with an incident or a ticket."""
    types = sorted(
        {t.type for v in videos for t in v.tickets}
        | {i.type for v in videos for i in v.incidents}
        | {rule for v in videos for rule, _ in v.watched}
    )
    return {name: _metrics_of(name, videos) for name in types}


def _metrics_of(name: str, videos: list[VideoMatch]) -> Metrics:
    roles: list[Role] = []
    outcomes = []
    for v in videos:
        roles += [r for t, r in zip(v.tickets, v.matching.roles, strict=True) if t.type == name]
        outcomes += [
            o
            for i, o in zip(v.incidents, v.matching.outcomes, strict=True)
            if i.type == name and not i.ambiguous
        ]
    true = sum(r in (Role.PRIMARY, Role.DUPLICATE) for r in roles)
    judged = sum(r is not Role.AMBIGUOUS for r in roles)
    detected = [o for o in outcomes if o.detected]
    precision = _ratio(true, judged)
    recall = _ratio(len(detected), len(outcomes))
    f1 = None
    if recall is not None:
        p = 1.0 if precision is None else precision  # no ticket at all: none of them was false
        f1 = 2 * p * recall / (p + recall) if p + recall > 0 else 0.0
    duplicates = sum(r is Role.DUPLICATE for r in roles)
    return {
        "incidents": len(outcomes),
        "detected": len(detected),
        "tickets": len(roles),
        "false_tickets": sum(r is Role.FALSE for r in roles),
        "duplicates": duplicates,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "duplicates_per_incident": _ratio(duplicates, len(detected)),
        **_stats([o.time_to_detect for o in detected if o.time_to_detect is not None], "time_to_detect"),
        **_stats([o.time_to_close for o in detected if o.time_to_close is not None], "time_to_close"),
        "false_closes": sum(o.false_closes for o in detected),
        "unclosed": sum(o.unclosed for o in detected),
    }
