"""The static blobs of a look: connected regions of pixels that have lain there long enough, as arrays,
minus the ghosts and the edges a drifting camera moved, which are healed into the slow background.

A ghost is where something *left* that the slow background still remembers (a person standing
in the first frame): its outline has edges in the background, not in the frame. A moved edge is
a blob that the slow background moved by up to ``drift_px`` explains (vision/scene/drift.py).
A change too thin to be an object (a painted line's edge moved by a pixel) is in no blob, along the
frame's edge as anywhere else: its clock starts again, so a blob it joins later is not as old as it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import cv2
import numpy as np

from vision.scene.drift import explained
from vision.scene.static_config import StaticObjectsConfig

GHOST_EDGE_RATIO = 0.8  # outline edges in the frame below this share of the background's: a ghost
# a blob of which the background moved by the camera's drift explains this share is drift: measured on
# the shared footage, 0.79-1.0 for moved edges, at most 0.26 for anything else (vision/scene/drift.py)
DRIFT_SHARE = 0.5
# pixels around the static 3x3 squares (the opening's erosion) that the rest of the morphology is worked
# out over: a pixel's opening's dilation (3x3) and closing (5x5) depend on them up to 1 + 2 + 2 pixels away
SPAN_MARGIN = 5
# pixels of a mask below which OpenCV's stats (a pass over every pixel: ~8 ns each) cost less than the
# numpy count's (~55 us whatever the size): 7-12 us against 57-89 us on the car park lane's boxes of the
# blobs (median 200 pixels), 65 against 84 at 7,232 pixels, 148 against 99 at 17,700 (a loaded machine)
SMALL_MASK = 8192
SQUARE = np.ones((3, 3), np.uint8)  # the opening's kernel, and the ghost's outline: dilated minus eroded
CLOSING = np.ones((5, 5), np.uint8)


@dataclass(frozen=True, slots=True)
class Blobs:
    """Static blobs of one frame, as arrays; ``xyxy`` in full-frame pixels."""

    xyxy: np.ndarray  # float32 [N, 4]
    area_px: np.ndarray  # float32 [N], in full-frame pixels
    static_seconds: np.ndarray  # float32 [N], the blob's median pixel timer: how long it has lain in view
    work_area: np.ndarray  # float32 [N], in analysis pixels of its zone's model: its size as the zone expects
    zone: np.ndarray  # str [N], the zone whose model found it

    @classmethod
    def empty(cls) -> Blobs:
        none = np.zeros(0, np.float32)
        return cls(np.zeros((0, 4), np.float32), none, none, none, np.zeros(0, str))

    @classmethod
    def concatenate(cls, parts: list[Blobs]) -> Blobs:
        """The blobs of several zones' models as one."""
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))

    def __len__(self) -> int:
        return int(self.area_px.shape[0])

    def __getitem__(self, index: np.ndarray) -> Blobs:
        return Blobs(
            self.xyxy[index],
            self.area_px[index],
            self.static_seconds[index],
            self.work_area[index],
            self.zone[index],
        )


def find_blobs(
    cfg: StaticObjectsConfig,
    grey: np.ndarray,
    gain: float,
    calm: np.ndarray,
    slow: np.ndarray,
    timer: np.ndarray,
    ignore: np.ndarray | None,
    place: tuple[tuple[float, float], tuple[int, int], str],
) -> Blobs:
    """Connected static regions of a look (``grey``, its global ``gain``, where it is ``calm``: matches
    the fast background) with the model's ``slow`` background and pixel ``timer``s, none where ``ignore``
    (masked); ``place``: the analysis pixel's size (frame pixels across, down), the analysed box's top
    left (frame pixels) and the zone's name, to give the blobs in frame pixels. Ghosts and moved edges are
    healed (``slow`` and ``timer`` written in place): they are not returned, and thin strips' timers
    start again."""
    static = timer >= cfg.min_static  # a fresh array, kept: the morphology makes its own
    if ignore is not None:
        static &= ~ignore
    if not static.any():  # nothing static (most looks): no morphology, no labelling
        return Blobs.empty()
    n, labels, stats, box = _labelled(static, timer)
    if n <= 1:
        return Blobs.empty()
    corner = box[0].start, box[1].start  # the labels' top left in the mask
    (sx, sy), (x0, y0), zone = place
    reach = (max(1.0, cfg.drift_px / sx), max(1.0, cfg.drift_px / sy))  # at least one analysis pixel
    rows = stats.tolist()  # Python ints: numpy's scalars cost more than the crops they cut
    real = np.array(
        [
            not _heal_ghost(grey, gain, calm, slow, timer, labels, corner, k, rows[k])
            and not (
                cfg.drift_px > 0
                and _heal_drift(cfg, grey, gain, static, slow, timer, labels, corner, k, rows[k], reach)
            )
            for k in range(1, n)
        ]
    )
    counts = stats[1:, 4]  # every blob's pixels, healed or not
    stats = stats[1:][real]
    if len(stats) == 0:
        return Blobs.empty()
    x, y, w, h, area = stats.T.astype(np.float32)
    xyxy = np.empty((len(area), 4), np.float32)  # column by column (np.stack's wrapper cost more)
    xyxy[:, 0], xyxy[:, 1] = x * sx + x0, y * sy + y0
    xyxy[:, 2], xyxy[:, 3] = (x + w) * sx + x0, (y + h) * sy + y0
    # the median, not the longest: an edge pixel that a passer-by had changed before is not the object
    inside = labels > 0
    timers, label = timer[box][inside], labels[inside]
    order = np.lexsort((timers, label))
    # each label's middle (of an even count, the upper one) in that order: its pixels follow those of the
    # labels before it, as many as their areas
    seconds = timers[order][np.cumsum(counts) - (counts + 1) // 2].astype(np.float32)
    return Blobs(xyxy, area * sx * sy, seconds[real], area, np.full(len(area), zone))


def _heal_ghost(
    grey: np.ndarray,
    gain: float,
    calm: np.ndarray,
    slow: np.ndarray,
    timer: np.ndarray,
    labels: np.ndarray,
    corner: tuple[int, int],
    k: int,
    stat: list[int],
) -> bool:
    """Returns True, after copying the frame into the slow background there, if blob k (``stat``: its
    left, top, width, height and area; ``labels``: the blobs' labels over the box of :func:`_labelled`,
    its top left at ``corner``, row and column) is a ghost: its outline's edges are in the background,
    not in the frame. Only a blob seen clearly now is judged (one behind a passer-by is not)."""
    x, y, w, h, area = stat
    y0, y1, x0, x1 = max(0, y - 2), y + h + 2, max(0, x - 2), x + w + 2
    # its pixels, all within its box: ``area`` of them (the crop is within the labels' box: a blob lies
    # within 3 pixels of the static squares, the box reaches SPAN_MARGIN beyond them, or the mask's edge)
    inside = labels[y0 - corner[0] : y1 - corner[0], x0 - corner[1] : x1 - corner[1]] == k
    if np.count_nonzero(calm[y0:y1, x0:x1] & inside) / area < 0.9:  # the calm share
        return False
    ring = cv2.morphologyEx(inside.view(np.uint8), cv2.MORPH_GRADIENT, SQUARE) > 0  # dilated minus eroded
    # no ring: the blob fills its crop, the whole analysed box, its outline out of view. Healed: a
    # change over all the zone is no object lying in it (a view or light change), and timed on as a
    # blob it would hide anything set down there until ``absorb_after``
    if ring.any():
        now, before = _edges(grey[y0:y1, x0:x1], ring), _edges(slow[y0:y1, x0:x1] * gain, ring)
        if now >= GHOST_EDGE_RATIO * before:
            return False
    _heal(grey, gain, slow, timer, inside, (y0, y1, x0, x1))
    return True


def _heal_drift(
    cfg: StaticObjectsConfig,
    grey: np.ndarray,
    gain: float,
    static: np.ndarray,
    slow: np.ndarray,
    timer: np.ndarray,
    labels: np.ndarray,
    corner: tuple[int, int],
    k: int,
    stat: list[int],
    reach: tuple[float, float],
) -> bool:
    """Returns True, after copying the frame into the slow background there, if blob k's static
    pixels are mostly (DRIFT_SHARE) the slow background moved by the camera's drift, ``reach``
    analysis pixels at most (across, down): an edge the camera moved, not an object. ``labels``,
    ``corner``: as :func:`_heal_ghost`'s."""
    x, y, w, h = stat[:4]
    blob = labels[y - corner[0] : y - corner[0] + h, x - corner[1] : x - corner[1] + w] == k
    pixels = blob & static[y : y + h, x : x + w]
    if not explained(grey, slow, gain, (x, y, w, h), pixels, reach, cfg.threshold, DRIFT_SHARE):
        return False
    _heal(grey, gain, slow, timer, blob, (y, y + h, x, x + w))
    return True


def _heal(
    grey: np.ndarray,
    gain: float,
    slow: np.ndarray,
    timer: np.ndarray,
    inside: np.ndarray,
    crop: tuple[int, int, int, int],
) -> None:
    """The frame becomes the slow background at ``inside`` (a mask over ``crop``: y0, y1, x0, x1),
    its timers start again."""
    y0, y1, x0, x1 = crop
    slow[y0:y1, x0:x1][inside] = grey[y0:y1, x0:x1][inside] / gain
    timer[y0:y1, x0:x1][inside] = 0.0


def _labelled(
    static: np.ndarray, timer: np.ndarray
) -> tuple[int, np.ndarray, np.ndarray, tuple[slice, slice]]:
    """The ``static`` mask opened and closed, the ``timer``s of its thin strips (gone in that) zeroed,
    and labelled: :func:`connected_components` of the result, its labels over the
    box that holds every labelled pixel (no labels of the whole mask: zeroing and filling them cost a
    fifth of this) and its stats in the mask's pixels, and that box. The opening's erosion is the whole
    mask's (its static 3x3 squares, often none: then nothing is left); the rest is worked out over those
    squares' box alone, widened by SPAN_MARGIN: the result lies within 3 pixels of them and a pixel of it
    depends on them within 5, all in the box, so it is the whole mask's; and so are the labels, in the
    same order (the box starts at an even row and column: OpenCV labels 2x2 blocks, the same blocks).
    Elsewhere every static pixel is thin."""
    # nothing static beyond the frame's edge: with OpenCV's default border (all set, for an erosion) a strip
    # 1-2 pixels thick along an edge survived the opening as a blob that every look judged again
    core = cv2.erode(static.view(np.uint8), SQUARE, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    # the squares' box in one call (a search for them and its reductions cost several times more)
    left, top, across, down = cv2.boundingRect(core)
    if across == 0:
        timer[static] = 0.0
        return 1, np.zeros((0, 0), np.int32), np.zeros((1, 5), np.int32), (slice(0, 0), slice(0, 0))
    height, width = static.shape
    box = _span(top, top + down - 1, height), _span(left, left + across - 1, width)
    m = cv2.morphologyEx(cv2.dilate(core[box], SQUARE), cv2.MORPH_CLOSE, CLOSING)
    # the static pixels left in none (outside the box, or gone in it): too thin for a blob, their clocks
    # start again (a few passes over the mask: fewer calls than picking them out)
    kept = np.zeros(static.shape, np.uint8)
    kept[box] = m
    timer[static > kept] = 0.0
    n, labels, stats = connected_components(m)
    stats[1:, 0] += box[1].start
    stats[1:, 1] += box[0].start
    return n, labels, stats, box


def _span(first: int, last: int, size: int) -> slice:
    """Rows (or columns) ``first`` to ``last`` widened by SPAN_MARGIN within ``size``, from an even one."""
    start = max(0, first - SPAN_MARGIN)
    return slice(start - start % 2, min(size, last + 1 + SPAN_MARGIN))


def connected_components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """``cv2.connectedComponentsWithStats(mask, connectivity=8)``'s count, labels and stats (left, top,
    width, height, area; row 0, the background's, left zero), the stats counted over the labelled
    pixels alone: OpenCV's pass over every pixel for them cost several times the labelling. Not on a
    mask of under SMALL_MASK pixels (a few blobs' box): there that pass costs less than the dozen numpy
    calls of the count."""
    if mask.size < SMALL_MASK:
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        stats[0] = 0
        return n, labels, stats
    n, labels = cv2.connectedComponents(mask, connectivity=8)
    stats = np.zeros((n, 5), np.int32)
    if n <= 1:
        return n, labels, stats
    xs, ys = cv2.findNonZero(mask).reshape(-1, 2).T  # the labelled pixels (a third of np.nonzero's cost)
    label = labels[ys, xs]
    order = np.argsort(label, kind="stable")
    area = np.bincount(label, minlength=n)[1:]
    starts = np.zeros(n - 1, np.intp)  # every label 1..n-1 has a pixel
    np.cumsum(area[:-1], out=starts[1:])
    xs, ys = xs[order], ys[order]
    left, top = np.minimum.reduceat(xs, starts), np.minimum.reduceat(ys, starts)
    right, bottom = np.maximum.reduceat(xs, starts), np.maximum.reduceat(ys, starts)
    stats[1:, 0], stats[1:, 1], stats[1:, 2] = left, top, right - left + 1  # column by column: np.stack's
    stats[1:, 3], stats[1:, 4] = bottom - top + 1, area  # wrapper cost more than the rest of the stats
    return n, labels, stats


def _edges(image: np.ndarray, ring: np.ndarray) -> np.float32:
    """The mean edge strength (|d/dx| + |d/dy|, 3x3 Sobel) of ``image`` at the ``ring`` pixels, as
    ``.mean()`` of the whole crop's strengths at the ring gives it (a float32 sum over float64 count):
    the strengths of the ring's pixels alone (a blob's outline is most of its small crop, but the
    whole-crop passes and np.mean's wrapper were most of the ghost check's cost)."""
    strength = np.abs(cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)[ring])
    strength += np.abs(cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)[ring])
    return np.float32(float(strength.sum()) / len(strength))
