"""Is an object at rest? Frigate's test: its box keeps overlapping the box where it came to rest.

The resting box is the mean of the first boxes seen at rest, then frozen, so a slow
drift (a person inching along a queue) eventually falls below the overlap threshold
instead of dragging the resting box with it. Leaving the resting box only counts once
it lasts ``move_time`` seconds, so one odd box (a passer-by hiding half a bicycle, a
detector glitch) does not restart the rest time.
"""

from __future__ import annotations

import numpy as np

from vision.detect.nms import iou

ANCHOR_BOXES = 10  # boxes averaged into the resting box before it is frozen (Frigate uses 10)


def rest_step(
    anchor: np.ndarray,
    count: np.ndarray,
    rest_since: np.ndarray,
    away_since: np.ndarray,
    boxes: np.ndarray,
    pts: float,
    min_iou: float,
    move_time: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """New (anchor, count, rest_since, away_since) of tracks that got ``boxes`` at ``pts``.

    ``away_since`` is NaN while the box is on its resting box, else when it first left it.
    """
    on = iou(boxes, anchor) >= min_iou
    away = np.where(on, np.nan, np.where(np.isnan(away_since), pts, away_since))
    moved = ~on & (pts - away >= move_time)
    refine = on & (count < ANCHOR_BOXES)
    n = count[:, None].astype(np.float32)
    anchor = np.where(refine[:, None], (anchor * n + boxes) / (n + 1), anchor)
    anchor = np.where(moved[:, None], boxes, anchor).astype(np.float32)
    count = np.where(moved, 1, np.where(refine, count + 1, count)).astype(np.int32)
    rest_since = np.where(moved, pts, rest_since)
    away = np.where(moved, np.nan, away)
    return anchor, count, rest_since, away
