"""The crowd rule counts each person once: a second box or a second track of someone counted does not add
a person (vision/rules/crowd.py; on vtest, benchmarks/footage_counts.md)."""

from __future__ import annotations

import numpy as np

from vision.rules.crowd import CrowdConfig, CrowdRule
from vision.scene.zones import Zone
from vision.track import TrackTable
from vision.types import Detections, Frame

from .rule_support import context

ZONE = Zone("z", np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float64))
IMAGE = np.zeros((200, 400, 3), np.uint8)
PTS = 10.0


def boxes(rows: list[tuple[list[float], float, int]]) -> Detections:
    """People's boxes of one frame: (xyxy, score, track id; -1 for a box of no confirmed track)."""
    return Detections.from_arrays(
        np.array([r[0] for r in rows], np.float32).reshape(-1, 4),
        np.array([r[1] for r in rows], np.float32),
        np.zeros(len(rows), np.int32),
        np.array([r[2] for r in rows], np.int64),
    )


def tracks(rows: list[tuple[int, list[float], float, float]]) -> TrackTable:
    """Confirmed people tracks at PTS: (id, box (detected; predicted while lost), first seen, last seen)."""
    n = len(rows)
    box = np.array([r[1] for r in rows], np.float32).reshape(n, 4)
    first = np.array([r[2] for r in rows], np.float64)
    last = np.array([r[3] for r in rows], np.float64)
    return TrackTable(
        PTS,
        np.array([r[0] for r in rows], np.int64),
        np.zeros(n, np.int32),
        first,
        last,
        np.full(n, 10, np.int32),
        (last == PTS).astype(np.int32),
        np.full(n, 0.9, np.float32),
        box,
        box.copy(),
        first.copy(),
        10.0,
        10.0,
        np.full((n, 1), np.nan),
        np.zeros((n, 1, 4), np.float32),
        np.full((n, 1), np.nan, np.float32),
    )


def count(config: CrowdConfig, found: Detections, table: TrackTable) -> int:
    rule = CrowdRule("cam", ZONE, config, {0: "person"})
    (o,) = rule.observe(context(Frame("cam", PTS, IMAGE), found, tracks=table))
    return int(o.details["instant_count"])


def test_a_box_of_no_track_inside_a_counted_persons_box_is_his_second_box() -> None:
    """Person 1 has his track's box and a second box (0.7, no track) lying inside it; person 2 is hidden
    (his track lost 0.2 s ago) and a box of no track lies on his predicted box; person 3, walking in,
    has a box of no track beside them. Three people, not five; with ``second_box`` null, four (person 2's
    box is then a track starting on his hidden track's box: him found again, ``refound_iou``); with
    ``refound_iou`` null too, five."""
    found = boxes(
        [
            ([100, 40, 120, 90], 0.9, 1),
            ([102, 50, 119, 88], 0.7, -1),  # inside person 1's box
            ([201, 42, 219, 90], 0.7, -1),  # on hidden person 2's predicted box
            ([300, 40, 320, 90], 0.7, -1),  # person 3, beside them: his own box
        ]
    )
    table = tracks([(1, [100, 40, 120, 90], 5.0, PTS), (2, [200, 40, 220, 90], 5.0, PTS - 0.2)])
    assert count(CrowdConfig(), found, table) == 3
    assert count(CrowdConfig(second_box=None), found, table) == 4
    assert count(CrowdConfig(second_box=None, refound_iou=None), found, table) == 5
    # a box of no track half over a counted person (a person walking in beside him) counts
    beside = boxes([([100, 40, 120, 90], 0.9, 1), ([110, 40, 130, 90], 0.7, -1)])
    assert count(CrowdConfig(), beside, tracks([(1, [100, 40, 120, 90], 5.0, PTS)])) == 2


def test_a_hidden_track_predicted_onto_another_tracks_box_is_that_person() -> None:
    """Track 2 lost its box 0.2 s ago and is predicted onto track 1's box (IoU 0.87: the tracker gave his
    box to another id): one person. Track 3, hidden behind track 1 with his head above (IoU 0.27), is a
    person of his own. With ``same_place_iou`` null, three."""
    found = boxes([([100, 40, 120, 90], 0.9, 1)])
    table = tracks(
        [
            (1, [100, 40, 120, 90], 5.0, PTS),
            (2, [101, 41, 121, 91], 5.0, PTS - 0.2),
            (3, [110, 35, 130, 80], 5.0, PTS - 0.2),
        ]
    )
    assert count(CrowdConfig(), found, table) == 2
    assert count(CrowdConfig(same_place_iou=None), found, table) == 3


def test_a_hidden_track_on_the_box_of_a_newer_track_is_that_person_found_again() -> None:
    """Track 1 lost its box 0.4 s ago and the tracker started him again beside it: track 2, first seen
    0.2 s ago, whose box overlaps track 1's predicted box at IoU 0.33 (under ``same_place_iou``). Track 3
    lost its box 0.2 s ago and a box of no track (0.7, a track starting) lies beside his predicted box.
    Two people, not four; with ``refound_iou`` null, four. Track 5, hidden behind track 4 (IoU 0.33),
    counts: track 4 was there before he was lost."""
    found = boxes([([110, 40, 130, 90], 0.9, 2), ([310, 40, 330, 90], 0.7, -1)])
    table = tracks(
        [
            (1, [100, 40, 120, 90], 5.0, PTS - 0.4),
            (2, [110, 40, 130, 90], PTS - 0.2, PTS),
            (3, [300, 40, 320, 90], 5.0, PTS - 0.2),
        ]
    )
    assert count(CrowdConfig(), found, table) == 2
    assert count(CrowdConfig(refound_iou=None), found, table) == 4
    hidden = tracks([(4, [110, 40, 130, 90], 5.0, PTS), (5, [100, 40, 120, 90], 6.0, PTS - 0.4)])
    assert count(CrowdConfig(), boxes([([110, 40, 130, 90], 0.9, 4)]), hidden) == 2


def test_a_hidden_track_predicted_onto_the_frames_border_walked_out() -> None:
    """Tracks 1 and 2 lost their boxes 0.4 s ago walking out at the right and the left of the 400 px
    frame: their predicted boxes reach its border (within 2 px). Track 3, lost as long, is hidden 3 px
    inside it. One person; with ``walked_out`` false, three."""
    table = tracks(
        [
            (1, [380, 40, 399, 90], 5.0, PTS - 0.4),
            (2, [-6, 40, 12, 90], 5.0, PTS - 0.4),
            (3, [3, 40, 23, 90], 5.0, PTS - 0.4),
        ]
    )
    assert count(CrowdConfig(), boxes([]), table) == 1
    assert count(CrowdConfig(walked_out=False), boxes([]), table) == 3
