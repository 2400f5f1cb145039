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
    has a box of no track beside them. Three people, not five; with ``second_box`` null, five."""
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
    assert count(CrowdConfig(second_box=None), found, table) == 5
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
