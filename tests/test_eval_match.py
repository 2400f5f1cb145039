"""Event-level matching and scores on hand-made tickets and incidents."""

from __future__ import annotations

import io

import numpy as np
import pytest

from vision.evaluate.match import Role, Ticket, match
from vision.evaluate.metrics import VideoMatch, event_metrics
from vision.evaluate.progress import Progress
from vision.evaluate.replay import Recorder
from vision.evaluate.truth import Incident
from vision.types import Detections, Transition

END = 40.0  # video length of every case


def ticket(opened: float, resolved: float | None, zone: str = "z", kind: str = "litter", box=None) -> Ticket:
    return Ticket(f"t{opened}", kind, zone, "s", opened, resolved, box)


def incident(start: float, end: float | None, zone: str = "z", kind: str = "litter", **kw) -> Incident:
    return Incident(type=kind, zone=zone, start=start, end=end, **kw)


def scores(tickets: list[Ticket], incidents: list[Incident], tolerance: float = 1.0) -> dict:
    m = match(tickets, incidents, END, tolerance)
    return event_metrics([VideoMatch(tickets, incidents, m)])


def test_one_ticket_for_one_incident() -> None:
    m = match([ticket(15.0, 34.0)], [incident(10.0, 30.0)], END, 1.0)
    assert m.roles == [Role.PRIMARY] and m.incident_of == [0]
    out = m.outcomes[0]
    assert out.time_to_detect == pytest.approx(5.0) and out.time_to_close == pytest.approx(4.0)
    assert out.false_closes == 0 and not out.unclosed


def test_duplicate_and_false_close() -> None:
    # the first ticket closes at 20 s while the incident lasts to 30 s; a second one opens at 22 s
    tickets = [ticket(12.0, 20.0), ticket(22.0, 35.0)]
    m = match(tickets, [incident(10.0, 30.0)], END, 1.0)
    assert m.roles == [Role.PRIMARY, Role.DUPLICATE]
    out = m.outcomes[0]
    assert out.tickets == [0, 1]
    assert out.time_to_detect == pytest.approx(2.0)  # the first open
    assert out.false_closes == 1
    assert out.time_to_close == pytest.approx(5.0)  # the last close: 35 - 30
    s = scores(tickets, [incident(10.0, 30.0)])["litter"]
    assert s["precision"] == 1.0 and s["recall"] == 1.0  # a duplicate is redundant, not false
    assert s["duplicates"] == 1 and s["duplicates_per_incident"] == 1.0 and s["false_closes"] == 1


def test_open_at_end() -> None:
    # the incident lasts to the end: a ticket still open is right, and there is nothing to close
    m = match([ticket(15.0, None)], [incident(10.0, None)], END, 1.0)
    assert m.roles == [Role.PRIMARY]
    assert m.outcomes[0].time_to_close is None and not m.outcomes[0].unclosed
    assert m.outcomes[0].false_closes == 0
    # the incident ended at 20 s but the ticket stayed open to the end of the video
    m = match([ticket(15.0, None)], [incident(10.0, 20.0)], END, 1.0)
    assert m.roles == [Role.PRIMARY] and m.outcomes[0].unclosed and m.outcomes[0].time_to_close is None
    # a ticket still open at the end lasts until the end: it overlaps an incident that begins late
    m = match([ticket(5.0, None)], [incident(35.0, 38.0)], END, 1.0)
    assert m.roles == [Role.PRIMARY] and m.outcomes[0].time_to_detect == pytest.approx(-30.0)


def test_unclosed_only_when_the_video_went_on_long_enough_for_the_rule_to_close_it() -> None:
    # the incident ended at 20 s and its rule needs 5 s to see it gone and close its ticket; with the
    # tolerance (1 s) on the annotated end, an open ticket must be closed by 26 s
    ended = [incident(10.0, 20.0)]
    m = match([ticket(12.0, None)], ended, 26.0, 1.0, [5.0])
    out = m.outcomes[0]
    assert out.close_due == pytest.approx(26.0) and out.unclosed  # it had the time and did not close
    # the clip ends at 25.8 s: too soon for the rule to close it; not unclosed, and no time to close
    out = match([ticket(12.0, None)], ended, 25.8, 1.0, [5.0]).outcomes[0]
    assert out.close_due == pytest.approx(26.0) and not out.unclosed and out.time_to_close is None
    # a ticket that did close in so short a clip has its time to close
    out = match([ticket(12.0, 23.0)], ended, 25.8, 1.0, [5.0]).outcomes[0]
    assert not out.unclosed and out.time_to_close == pytest.approx(3.0)
    # the scores count only the incident whose rule had the time
    early, late = incident(10.0, 20.0), incident(10.0, 38.0)
    videos = [
        VideoMatch([ticket(12.0, None)], [early], match([ticket(12.0, None)], [early], END, 1.0, [5.0])),
        VideoMatch([ticket(12.0, None)], [late], match([ticket(12.0, None)], [late], END, 1.0, [5.0])),
    ]
    assert event_metrics(videos)["litter"]["unclosed"] == 1
    # an incident that lasts to the end has nothing to close, and no due time
    out = match([ticket(12.0, None)], [incident(10.0, None)], END, 1.0, [5.0]).outcomes[0]
    assert out.close_due is None and not out.unclosed


def test_no_tickets() -> None:
    s = scores([], [incident(1.0, 5.0), incident(10.0, 20.0)])["litter"]
    assert s["recall"] == 0.0 and s["precision"] is None and s["f1"] == 0.0
    assert s["time_to_detect_mean"] is None and s["false_tickets"] == 0
    # nothing happened and nothing was reported: no score at all, and no false ticket
    v = VideoMatch([], [], match([], [], END, 1.0), watched=[("litter", "z")])
    s = event_metrics([v])["litter"]
    assert s["tickets"] == 0 and s["precision"] is None and s["recall"] is None and s["f1"] is None


def test_false_tickets_by_zone_type_and_time() -> None:
    tickets = [
        ticket(12.0, 18.0, zone="other"),  # another zone
        ticket(12.0, 18.0, kind="crowd"),  # another event type
        ticket(32.0, 36.0),  # after the incident, beyond the tolerance
        ticket(30.5, 33.0),  # right after it ended, within the tolerance: its ticket
    ]
    m = match(tickets, [incident(10.0, 30.0)], END, 1.0)
    assert m.roles == [Role.FALSE, Role.FALSE, Role.FALSE, Role.PRIMARY]
    s = scores(tickets, [incident(10.0, 30.0)])
    assert s["litter"]["precision"] == pytest.approx(1 / 3) and s["litter"]["false_tickets"] == 2
    assert s["litter"]["f1"] == pytest.approx(2 * (1 / 3) / (1 / 3 + 1))
    assert s["crowd"]["false_tickets"] == 1 and s["crowd"]["recall"] is None


def test_ambiguous_incidents_count_neither_way() -> None:
    incidents = [incident(10.0, 30.0), incident(12.0, 20.0, zone="w", ambiguous=True)]
    tickets = [ticket(14.0, 33.0), ticket(15.0, 22.0, zone="w")]
    m = match(tickets, incidents, END, 1.0)
    assert m.roles == [Role.PRIMARY, Role.AMBIGUOUS]
    s = scores(tickets, incidents)["litter"]
    assert s["incidents"] == 1 and s["precision"] == 1.0 and s["recall"] == 1.0
    # missing an ambiguous incident is no miss
    s = scores([tickets[0]], incidents)["litter"]
    assert s["recall"] == 1.0


def test_boxes_tell_overlapping_incidents_apart() -> None:
    left = incident(0.0, 20.0, box=(0, 0, 50, 100))
    right = incident(0.0, 20.0, box=(300, 0, 350, 100))
    m = match([ticket(9.0, 23.0, box=(305, 5, 352, 98))], [left, right], END, 1.0)
    assert m.incident_of == [1]


def test_a_ticket_about_another_subject_is_false_even_at_the_right_time_and_place() -> None:
    # the only incident is the man on the left; the ticket is about someone on the right
    left = incident(0.0, 20.0, box=(0, 0, 50, 100))
    m = match([ticket(9.0, 23.0, box=(305, 5, 352, 98))], [left], END, 1.0)
    assert m.roles == [Role.FALSE] and not m.outcomes[0].detected
    s = scores([ticket(9.0, 23.0, box=(305, 5, 352, 98))], [left])["litter"]
    assert (s["recall"], s["precision"], s["false_tickets"]) == (0.0, 0.0, 1)
    # a loose overlap (the subject moved a little since the annotated box) still matches
    m = match([ticket(9.0, 23.0, box=(20, 0, 70, 100))], [left], END, 1.0)
    assert m.roles == [Role.PRIMARY]
    # without a box on either side, type, zone and time decide
    assert match([ticket(9.0, 23.0)], [left], END, 1.0).roles == [Role.PRIMARY]


def test_as_many_incidents_as_possible_get_their_own_ticket() -> None:
    # the first ticket overlaps both incidents, the second only the later one: both are found
    incidents = [incident(0.0, 10.0), incident(5.0, 20.0)]
    tickets = [ticket(6.0, 9.0), ticket(12.0, 18.0)]
    m = match(tickets, incidents, END, 1.0)
    assert sorted(m.incident_of) == [0, 1] and m.roles == [Role.PRIMARY, Role.PRIMARY]


def test_scores_add_up_over_videos() -> None:
    a = [incident(10.0, 30.0)]
    b = [incident(5.0, 15.0), incident(20.0, 25.0)]
    ta = [ticket(14.0, 33.0)]
    tb = [ticket(8.0, 21.0), ticket(36.0, 38.0)]
    videos = [VideoMatch(ta, a, match(ta, a, END, 1.0)), VideoMatch(tb, b, match(tb, b, END, 1.0))]
    s = event_metrics(videos)["litter"]
    # found: a (4 s), b[0] (3 s); b[1] missed; b's second ticket is false
    assert (s["incidents"], s["detected"], s["tickets"], s["false_tickets"]) == (3, 2, 3, 1)
    assert s["recall"] == pytest.approx(2 / 3) and s["precision"] == pytest.approx(2 / 3)
    assert s["time_to_detect_mean"] == pytest.approx(3.5) and s["time_to_detect_max"] == pytest.approx(4.0)
    assert s["time_to_close_mean"] == pytest.approx(4.5) and s["time_to_close_max"] == pytest.approx(6.0)


def test_a_reopened_ticket_closed_too_early() -> None:
    # one ticket, closed at 18 s while the incident went on, reopened, closed for good at 33 s
    t = Ticket("e", "litter", "z", "s", 12.0, 33.0, None, reopened_after=(18.0,))
    m = match([t], [incident(10.0, 30.0)], END, 1.0)
    assert m.roles == [Role.PRIMARY]
    assert m.outcomes[0].false_closes == 1 and m.outcomes[0].time_to_close == pytest.approx(3.0)


def test_recorder_follows_a_ticket_through_reopens() -> None:
    recorder = Recorder({0: "person"}, None, None, Progress(io.StringIO()))
    event = {"event_id": "e1", "type": "crowd", "zone": "z", "subject": "zone"}
    boxes = Detections.from_arrays(np.array([[0, 0, 10, 10], [5, 5, 20, 30]]), np.ones(2), np.zeros(2))
    for kind, pts in [("open", 5.0), ("update", 6.0), ("close", 9.0), ("reopen", 10.0), ("close", 14.0)]:
        recorder.transition(Transition(kind, pts, event, boxes), {})
    recorder.transition(Transition("open", 20.0, {**event, "event_id": "e2"}), {})
    first, second = recorder.tickets()
    assert (first.opened_at, first.reopened_after, first.resolved_at) == (5.0, (9.0,), 14.0)
    assert first.box == (0.0, 0.0, 20.0, 30.0)  # the evidence's envelope when it opened
    assert (second.opened_at, second.resolved_at, second.box) == (20.0, None, None)
