"""Is an object at rest? Frigate's test: its box keeps overlapping the box where it came to rest.

The resting box is the mean of the first boxes seen at rest, then frozen, so a slow
drift (a person inching along a queue) eventually falls below the overlap threshold
instead of dragging the resting box with it. Leaving the resting box only counts once
it lasts ``move_time`` seconds, so one odd box (a passer-by hiding half a bicycle, a
detector glitch) does not restart the rest time.
"""

from __future__ import annotations

import numpy as np

ANCHOR_BOXES = 10  # boxes averaged into the resting box before it is frozen (Frigate uses 10)


def rest_step(
    anchor: np.ndarray,
    count: np.ndarray,
    rest_since: np.ndarray,
    away_since: np.ndarray,
    rows: np.ndarray,
    boxes: np.ndarray,
    overlap: np.ndarray,
    pts: float,
    min_iou: float,
    move_time: float,
) -> None:
    """Step the rest state (anchor, count, rest_since, away_since: every track's, changed in place) of
    the tracks ``rows`` that got ``boxes`` at ``pts``, whose IoU with their resting boxes is ``overlap``
    (taken with the frame's other overlaps, vision/track/match.py).

    ``away_since`` is NaN while the box is on its resting box, else when it first left it. Most steps
    change ``away_since`` alone (a box on its frozen resting box, or off it for less than
    ``move_time``): the other columns are read and written only where they change.
    """
    on = overlap >= min_iou
    before = away_since[rows]
    away = np.where(on, np.nan, np.where(np.isnan(before), pts, before))
    moved = pts - away >= move_time  # never where ``on``: NaN there
    refine = on & (count[rows] < ANCHOR_BOXES)
    at = rows[refine]  # the rows themselves, and whether there are any, in one step (not .any())
    if len(at):
        n = count[at, None].astype(np.float32)
        anchor[at] = (anchor[at] * n + boxes[refine]) / (n + 1)
        count[at] += 1
    at = rows[moved]
    if len(at):
        anchor[at] = boxes[moved]
        count[at] = 1
        rest_since[at] = pts
        away[moved] = np.nan
    away_since[rows] = away
