"""What an object looks like, cheaply enough for every tracked box: colour histograms of its two halves.

Overlap alone cannot tell two people of the same size at the same spot apart, so a track that lost its
box is found again only on a box that looks like it (DeepSORT and BoT-SORT gate a re-match by an
appearance distance the same way; they use a ReID network, this uses colour). A box's look is a
histogram of Lab colours (L in 4 bins; a and b in 4 bins each around grey, 8 units wide: street
clothes are mostly dark, grey or muted, so the bins sit where such colours differ) of a grid of pixels
sampled from the central part of its upper and of its lower half (shirt and trousers, with little of
the background at the box's sides), each half's histogram summing to 1. Two looks differ by the
Bhattacharyya distance of the half that differs more (1 - the histograms' overlap, 0 to 1): a person
half hidden or at another pose keeps most of a half's colours, someone in another shirt or other
trousers does not. A fixed grid of samples (one gather for all boxes, a table from BGR to bin, no
resize, no colour conversion, no Python loop per box) keeps it to a dozen numpy calls a frame
(benchmarks/tracker_cost.md). The bins, the halves and the default threshold were chosen on vtest's
re-matches with the SSD, looked at by eye (docs/evaluation.md, "A close past its due time").
"""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np

GRID_X, GRID_Y = 8, 24  # pixels sampled across and down a box (GRID_Y / 2 rows per half)
SPAN_X, SPAN_Y = (0.2, 0.8), (0.1, 0.9)  # the box's central part: sides and head/feet are mostly background
L_BINS, AB_BINS, AB_STEP = 4, 4, 8  # Lab bins: lightness over 0-255, a and b in AB_STEP units around 128
HALVES = 2
BINS = L_BINS * AB_BINS * AB_BINS  # per half
SIZE = HALVES * BINS  # one look: [SIZE] float32, each half sums to 1
_FX = np.linspace(*SPAN_X, GRID_X, dtype=np.float32)
_FY = np.linspace(*SPAN_Y, GRID_Y, dtype=np.float32)
# the grid's x and y fractions side by side, with the box's coordinates each is taken between:
# one gather, one interpolation and one clip for both (box columns x1, y1 and x2, y2)
_F = np.concatenate([_FX, _FY])
_IS_X = np.arange(GRID_X + GRID_Y) < GRID_X
_ENDS = np.concatenate([np.where(_IS_X, 0, 1), np.where(_IS_X, 2, 3)])  # each sample's low, then high end
_HALF = np.repeat(np.arange(HALVES), GRID_Y // HALVES * GRID_X) * BINS  # each sample's half, in sample order
SHIFT = 2  # BGR looked up at 6 bits a channel: a, b off by 4 at most (8-bit Lab), 96% of colours in their bin


@cache
def colour_bins() -> np.ndarray:
    """The bin (half's histogram column) of every BGR colour at 6 bits a channel: one table lookup a
    pixel instead of a colour conversion and a binning of each sampled pixel. [2**18] uint8 (a quarter
    of int32's cache lines for its random lookups); made when the first tracker is made, not at import
    (~0.1 s of every command's start, most of which never track)."""
    levels = (np.arange(256 >> SHIFT, dtype=np.uint8) << SHIFT) + (1 << SHIFT) // 2  # each step's middle
    bgr = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 1, 3)
    lab = cv2.cvtColor(bgr, cv2.COLOR_BGR2Lab).reshape(-1, 3).astype(np.int16)
    ab = np.clip((lab[:, 1:] - 128) // AB_STEP + AB_BINS // 2, 0, AB_BINS - 1)
    return ((lab[:, 0] * L_BINS // 256 * AB_BINS + ab[:, 0]) * AB_BINS + ab[:, 1]).astype(np.uint8)


_PACK = np.array([1 << 2 * (8 - SHIFT), 1 << (8 - SHIFT), 1], np.int32)  # (b, g, r) at 6 bits -> table row


def check_frame(image: np.ndarray) -> None:
    """Refuse a frame looks cannot be taken from, naming what it is (the tracker checks every frame
    with boxes, even one none of whose boxes needs a look, so a wrong frame is found at once)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"appearance: the frame must be an HxWx3 uint8 BGR image, got {image.shape} {image.dtype}"
        )


def looks(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """[N, SIZE] looks of ``boxes`` (xyxy pixels, clipped to the image) in a BGR uint8 ``image``."""
    n = len(boxes)
    if n == 0:
        return np.zeros((0, SIZE), np.float32)
    check_frame(image)
    b = np.asarray(boxes, np.float32)
    h, w = image.shape[:2]
    ends = b.take(_ENDS, axis=1)
    lo = ends[:, : _F.size]
    grid = lo + (ends[:, _F.size :] - lo) * _F  # [N, GRID_X + GRID_Y]: x then y of the samples
    np.maximum(grid, 0, out=grid)  # np.clip's wrapper costs several times its two ufuncs
    np.minimum(grid, np.where(_IS_X, w - 1, h - 1), out=grid)
    xy = grid.astype(np.intp)
    at = (xy[:, GRID_X:, None] * w + xy[:, None, :GRID_X]).ravel()  # the samples' pixels, row by row
    pixels = image.reshape(-1, 3).take(at, axis=0)  # [N * GRID_Y * GRID_X, 3]; take: no np.take wrapper
    pixels >>= SHIFT  # in place: a fresh gather
    key = pixels.astype(np.int32) @ _PACK
    # each sample's column among all boxes' histograms: [N, HALVES, BINS] flattened
    index = colour_bins().take(key).reshape(n, -1) + (np.arange(0, n * SIZE, SIZE)[:, None] + _HALF)
    counts = np.bincount(index.ravel(), minlength=n * SIZE)
    return np.multiply(counts, HALVES / _HALF.size, dtype=np.float32).reshape(n, SIZE)  # in float32


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[K] distance of paired looks (rows of ``a`` and ``b``): the larger of the halves' Bhattacharyya
    distances, 0 (the same colours) to 1 (no colour in common)."""
    overlap = np.sqrt(a * b).reshape(len(a), HALVES, BINS).sum(axis=2)
    return 1.0 - overlap.min(axis=1)
