"""Camera drift: is a static change only the background moved by a pixel or two?

A camera that drifts or shakes moves the whole picture by a pixel or two. Where the scene has
a strong edge (a painted line, a kerb, a bridge's rim) the moved edge differs from the
background model along its length and, once the camera rests there, stays changed and
still: to a static-object model, something that arrived and stayed. Thin strips never make
a blob, but a thick or blurred edge, or one seen at an enlarged analysis scale, can. Such
a change is *explained* by the background moved by the camera's shift, which an object
lying on the ground never is (it differs from every nearby place of the background).
Measured with shifts up to 4 frame pixels, the share of a blob's pixels so explained was
0.85-1.0 for the jittering highway's edges and 0.79-0.81 for the car park's stall lines
(0.2-0.4 with shifts up to 2 pixels: that camera moves further), and at most 0.03 for the
bundle dropped on the sample walkway, with or without a ±2 px shake of its frames (0.26 at
most for anything else there: a man standing still, a passer-by).
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

SHIFTS = 5  # shifts tried per axis, evenly over [-reach, reach] (the middle one, no shift, is skipped)
# a shift's position is rounded to 1/32 pixel (OpenCV's INTER_TAB_SIZE): the pixels it blends lie within
# reach plus this of the unshifted one
ROUNDING = 1 / 32
# float32 blending and subtracting err by a few units in the last place: the bound allows this much more
# (relative to the grey levels, plus an absolute part for a black background)
SLACK = (1e-4, 1e-3)


def explained(
    image: np.ndarray,
    background: np.ndarray,
    gain: float,
    box: tuple[int, int, int, int],
    pixels: np.ndarray,
    reach: tuple[float, float],
    threshold: float,
    share: float,
) -> bool:
    """Whether at least ``share`` (0-1] of ``pixels`` (a bool mask over ``box`` = x, y, w, h of ``image``)
    are where ``background`` times ``gain`` (the global brightness ratio), moved by one shift within
    ``reach`` (x, y; pixels, sub-pixel steps), matches ``image`` within ``threshold``; False without
    pixels. ``image`` and ``background``: float32, one shape.

    A moved background is a blend of the background's pixels within reach, so it lies between their
    least and their most: a pixel farther than ``threshold`` from that range (an object on plain ground,
    most of a real blob) matches no shift. Those bounds (an erosion and a dilation of the crop) settle
    most blobs that are not drift without moving the background at all; the shifts are tried only if
    enough pixels could match, and stop at the first that explains ``share`` (whole-pixel shifts are
    all gathered at once, :func:`whole_moved`): the verdict is the one that the best of all shifts
    gives."""
    count = int(np.count_nonzero(pixels))
    if count == 0:
        return False
    x, y, w, h = box
    pad = math.ceil(max(reach)) + 1
    top, left = max(0, y - pad), max(0, x - pad)
    near = background[top : y + h + pad, left : x + w + pad] * np.float32(gain)
    here = image[y : y + h, x : x + w]
    rows, cols = slice(y - top, y - top + h), slice(x - left, x - left + w)
    window, moves, whole = _shifts(reach)
    low, high = cv2.erode(near, window)[rows, cols], cv2.dilate(near, window)[rows, cols]
    slack = SLACK[0] * float(np.abs(near).max()) + SLACK[1]
    could = pixels & (here > low - (threshold + slack)) & (here < high + (threshold + slack))
    if np.count_nonzero(could) / count < share:
        return False
    mine = here[pixels]  # the blob's pixels alone are counted
    if whole is not None:  # every shift a whole pixel: all of them at once, the verdict the same
        ys, xs = np.nonzero(pixels)
        hits = np.count_nonzero(
            np.abs(mine - whole_moved(near, ys + rows.start, xs + cols.start, whole)) < threshold, 1
        )
        return bool((hits / count >= share).any())
    size = near.shape[::-1]
    for move in moves:
        moved = cv2.warpAffine(near, move, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if np.count_nonzero(np.abs(mine - moved[rows, cols][pixels]) < threshold) / count >= share:
            return True
    return False


def whole_moved(near: np.ndarray, ys: np.ndarray, xs: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """The pixels (``ys``, ``xs``) of ``near`` moved by each whole-pixel shift of ``whole`` (rows of dx,
    dy) as ``cv2.warpAffine`` (INTER_LINEAR, BORDER_REPLICATE) moves them: each a pixel of ``near``, the
    nearest within it (its blend weights are 1 and 0), one row per shift. One gather for every shift,
    not a warp and a count each (most of a drift check's cost on the capacity camera's car park)."""
    height, width = near.shape
    rows = np.clip(ys - whole[:, 1:], 0, height - 1)
    cols = np.clip(xs - whole[:, :1], 0, width - 1)
    return near[rows, cols]


@functools.lru_cache(maxsize=64)
def _shifts(
    reach: tuple[float, float],
) -> tuple[np.ndarray, tuple[np.ndarray, ...], np.ndarray | None]:
    """The window of the pixels a shift within ``reach`` (x, y) blends, the affine matrices of the
    shifts tried, each across with each down, but no shift, and those shifts (dx, dy) as whole pixels if
    every one is (an even reach: 2 where drift_px's 4 frame pixels are 2 analysis pixels, as on a
    640x360 camera's halved scale; see :func:`whole_moved`), else None. Made once per reach (a zone's
    scale), not at every check (their linspaces and matrices were a third of a check's time on the car
    park lane, the capacity benchmark's clip)."""
    across, down = (math.ceil(r + ROUNDING) for r in reach)
    window = np.ones((2 * down + 1, 2 * across + 1), np.uint8)
    shifts = (
        (dx, dy)
        for dx in np.linspace(-reach[0], reach[0], SHIFTS)
        for dy in np.linspace(-reach[1], reach[1], SHIFTS)
    )
    matrices = tuple(np.float32([[1, 0, dx], [0, 1, dy]]) for dx, dy in shifts if dx != 0 or dy != 0)
    steps = np.array([m[:, 2] for m in matrices])
    whole = steps.astype(np.intp) if np.array_equal(steps, np.round(steps)) else None
    return window, matrices, whole
