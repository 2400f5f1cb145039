"""Tickets the system opened against incidents that really happened, one video at a time.

A ticket and an incident can match when they have the same event type and zone,
overlap in time (the incident widened by the annotation tolerance; a ticket still open
at the end of the video lasts until the end) and, when the incident has the subject's
box and the ticket has evidence boxes, the two boxes overlap (IoU at least
``MIN_BOX_IOU``): a ticket about the man left of the signpost is not the ticket of the
man right of it. Each incident first gets at most one ticket of its own, chosen to
match as many incidents as possible (then by time overlap, then by box overlap);
further tickets that match an incident are its duplicates; the rest are false
tickets. Tickets of incidents marked ambiguous count neither way.

A ticket still open at the end of the video is *unclosed* only if the video went on past
the incident's end long enough for its rule to close it: the rule's close time (seeing the
subject gone, then ``close_after``: vision/rules/base.py ``close_time``) and the annotation
tolerance. A clip that ends 3 s after a crowd disperses cannot close a ticket whose rule
needs 10 s of absence, and that is no fault of the ticket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from scipy.optimize import linear_sum_assignment

from vision.evaluate.truth import Incident
from vision.geometry import box_iou

# the ticket's evidence when it opened against the annotated subject: people move while an
# incident lasts, so a loose overlap; another subject does not overlap at all
MIN_BOX_IOU = 0.2


class Role(StrEnum):
    """What a ticket turned out to be."""

    PRIMARY = "primary"  # the first ticket of a real incident
    DUPLICATE = "duplicate"  # one more ticket for an incident that already has one
    AMBIGUOUS = "ambiguous"  # a ticket for an incident the annotator marked ambiguous
    FALSE = "false"  # no incident behind it


@dataclass(frozen=True)
class Ticket:
    """One event the system opened, as the evaluation saw it (stream seconds)."""

    event_id: str
    type: str
    zone: str
    subject: str
    opened_at: float
    resolved_at: float | None  # None: still open at the end of the video
    box: tuple[float, float, float, float] | None = None  # the evidence when it opened (union)
    reopened_after: tuple[float, ...] = ()  # closes that the same ticket was reopened after

    def until(self, video_end: float) -> float:
        return video_end if self.resolved_at is None else self.resolved_at


@dataclass
class Outcome:
    """How the system did on one incident."""

    tickets: list[int] = field(default_factory=list)  # indices of its tickets, its own one first
    time_to_detect: float | None = None  # first open - incident start
    time_to_close: float | None = None  # last close - incident end, once every ticket closed
    false_closes: int = 0  # tickets closed while the incident was still going on
    close_due: float | None = None  # by then its tickets must be closed: end + close time + tolerance
    unclosed: bool = False  # a ticket stayed open to the end of a video that went on past close_due

    @property
    def detected(self) -> bool:
        return bool(self.tickets)


@dataclass
class Matching:
    """The verdict on every ticket and every incident of one video."""

    roles: list[Role]  # per ticket
    incident_of: list[int | None]  # per ticket: the incident it belongs to
    outcomes: list[Outcome]  # per incident


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def match(
    tickets: list[Ticket],
    incidents: list[Incident],
    video_end: float,
    tolerance: float,
    close_times: list[float] | None = None,
) -> Matching:
    """Match the tickets of one video to its incidents; ``close_times``: per incident, seconds its rule
    needs to close a ticket once the incident ended (none: 0)."""
    n_t, n_i = len(tickets), len(incidents)
    ends = [video_end if inc.end is None else inc.end for inc in incidents]
    score = np.full((n_t, n_i), -1.0)  # -1: cannot match
    for ti, ticket in enumerate(tickets):
        t0, t1 = ticket.opened_at, ticket.until(video_end)
        for ii, inc in enumerate(incidents):
            if (ticket.type, ticket.zone) != (inc.type, inc.zone):
                continue
            if t1 < inc.start - tolerance or t0 > ends[ii] + tolerance:
                continue
            union = max(t1, ends[ii]) - min(t0, inc.start)
            overlap = _overlap(t0, t1, inc.start, ends[ii]) / union if union > 0 else 1.0
            boxes = 0.0
            if ticket.box is not None and inc.box is not None:
                boxes = float(box_iou(np.array(ticket.box), np.array([inc.box]))[0])
                if boxes < MIN_BOX_IOU:
                    continue  # another subject in the same zone at the same time
            score[ti, ii] = overlap + boxes
    roles = [Role.FALSE] * n_t
    incident_of: list[int | None] = [None] * n_t
    outcomes = [Outcome() for _ in incidents]
    if n_t and n_i:
        # one ticket per incident, as many incidents as possible, real ones before ambiguous ones
        real = np.array([0.0 if inc.ambiguous else 10.0 for inc in incidents])
        gain = np.where(score >= 0, 1e6 + real[None, :] + score, 0.0)
        rows, cols = linear_sum_assignment(gain, maximize=True)
        for ti, ii in zip(rows, cols, strict=True):
            if score[ti, ii] >= 0:
                incident_of[ti] = int(ii)
                outcomes[ii].tickets.append(int(ti))
        for ti in range(n_t):  # a further ticket that matches an incident is its duplicate
            if incident_of[ti] is None and (score[ti] >= 0).any():
                ii = int(np.argmax(score[ti]))
                incident_of[ti] = ii
                outcomes[ii].tickets.append(ti)
    for ti, ii in enumerate(incident_of):
        if ii is not None:
            own = outcomes[ii].tickets[0] == ti
            roles[ti] = Role.PRIMARY if own else Role.DUPLICATE
            if incidents[ii].ambiguous:
                roles[ti] = Role.AMBIGUOUS
    closing = [0.0] * n_i if close_times is None else close_times
    for inc, end, outcome, close_time in zip(incidents, ends, outcomes, closing, strict=True):
        _judge(inc, end, outcome, tickets, video_end, tolerance, close_time)
    return Matching(roles, incident_of, outcomes)


def _judge(
    inc: Incident,
    end: float,
    outcome: Outcome,
    tickets: list[Ticket],
    video_end: float,
    tolerance: float,
    close_time: float,
) -> None:
    """Fill in the timings of one incident from its tickets."""
    if not outcome.detected:
        return
    own = [tickets[i] for i in outcome.tickets]
    outcome.time_to_detect = min(t.opened_at for t in own) - inc.start
    closes = [c for t in own for c in (*t.reopened_after, t.resolved_at) if c is not None]
    outcome.false_closes = sum(c < end - tolerance for c in closes)
    if inc.end is None or inc.end >= video_end:
        return  # it lasts to the end: there is nothing to close
    outcome.close_due = inc.end + close_time + tolerance
    if any(t.resolved_at is None for t in own):
        outcome.unclosed = video_end >= outcome.close_due  # else the video ended before its rule could
    else:
        outcome.time_to_close = max(t.resolved_at for t in own if t.resolved_at is not None) - inc.end
