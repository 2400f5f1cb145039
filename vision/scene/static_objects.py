"""Class-agnostic static-object detection with a dual background (Porikli, Ivanov and Haga, 2008).

Two backgrounds adapt at different speeds: a pixel that differs from the slow one but
already matches the fast one belongs to something that arrived and stayed — a bag of
rubbish, a dumped box — whatever its class, which no COCO detector would name. Each
such pixel carries a timer in stream seconds; a passer-by hiding it pauses the timer
instead of resetting it. A global gain follows lighting changes, and anything that
stays longer than ``absorb_after`` becomes part of the slow background (a fixture).

The timer counts from the object's arrival: the seconds a changed pixel spent waiting
for the fast background to take it in are credited to it once it does (at most
CATCH_UP time constants), so a timer says how long the object has lain there *in view*:
time the camera was dark or down (its sight clock stood still while the stream's went
on, vision/camera/unit.py; a restart's gap too) is never credited, so a bag seen for 5 s
before a minute's outage comes back 5 s old, not 65 (the litter ticket dates from it).

Unless a person or a vehicle stood over it: a change that forms under someone (the
ground a man standing still has shifted on, his shadow, the legs a detector boxes short)
is that person, not an object, until it is first seen with nobody over it. A pixel's
timer runs only once its change has been *seen alone*: at a look where its connected
changed region touches no box of the ``cover`` the model is shown (people and vehicles
since the last look). Then a change younger than CATCH_UP time constants (a bag set down
by someone who walked off) is timed from its arrival like any other; an older one (formed
under someone who stood there) from that look. Being seen alone sticks until the pixel is
back to the background, so a passer-by who later walks over a bag only pauses its timer.

One model watches one zone's box, grey, at the zone's own *analysis scale*: where the
people's height there is known (calibration, or the people seen, vision/detect/sizes.py),
an expected litter item — ITEM_SHARE of the height of the zone's far people — spans
``item_px`` analysis pixels, so the blobs, the morphology and the litter rule's size
limits (in analysis pixels) mean the same for a distant camera and a near one, at any
frame size, and so does the timing. Before that is known the box is scaled as a frame
``work_width`` wide would be. The scale never enlarges more than ``max_upscale`` and
the box never exceeds ``max_pixels``; a shrink is by a whole factor near that scale
(vision/scene/static_config.py: OpenCV's fast block mean). A later estimate that moves the scale by more
than RESCALE resamples the model's state to the new scale, keeping what it knew: where
something lies, and where the frame did not match the resampled background then (that
background is *unsure*, blurred by the coarser scale, until the place is seen calm and
empty); elsewhere the sharp frame becomes the background.
The camera's scene shows the models a frame about once every ``look_every`` seconds,
not every frame: something that must lie there for half a minute needs no more.

A camera that drifts a pixel or two leaves its scene's strong edges changed and still, as
if something lay along them: a change too thin for a blob starts its clock again, and a
blob that the background moved by up to ``drift_px`` explains (vision/scene/drift.py) is
healed into the background like a ghost, so an edge never ages into litter.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from vision.kernels import load_kernels
from vision.scene.masks import Masks
from vision.scene.static_blobs import Blobs, connected_components, find_blobs
from vision.scene.static_config import ITEM_SHARE, StaticObjectsConfig, analysis_scale, whole_factor
from vision.scene.static_snapshot import load_state, state_arrays

# the model's parts live beside it (settings and scale, blobs, snapshot); imported from here elsewhere
__all__ = [
    "DARK_EPSILON",
    "ITEM_SHARE",
    "Blobs",
    "StaticObjects",
    "StaticObjectsConfig",
    "analysis_scale",
    "connected_components",
    "median",
]

CATCH_UP = 3.0  # fast-background time constants after which any arrival has been taken in (e^-3: 5%)
RESCALE = 0.25  # relative change of a zone's wanted scale that resamples its model
MARGIN = 0.05  # share of the zone's box added on each side, for the morphology at its edges
GAIN_STEP = 2  # the global gain is the median ratio over every GAIN_STEP-th row and column
# no mask, no indices: the kernels' way of saying so (never written; writeable, as the kernels' types are)
NONE, NONE_AT = np.zeros(0, bool), np.zeros(0, np.intp)
DARK_EPSILON = 1e-6  # seconds: the sight clock sums the frames' steps, so it drifts from pts by rounding


class StaticObjects:
    """One zone's dual background and per-pixel static timers (or the whole frame's, without a zone)."""

    def __init__(
        self,
        config: StaticObjectsConfig,
        masks: Masks | None = None,
        region: tuple[float, float, float, float] | None = None,
        zone: str = "",
    ) -> None:
        """``region``: the box analysed (x0, y0, x1, y1 as fractions; None: all the frame), a zone's box
        (a margin is added); ``zone``: its name, carried by the blobs."""
        load_kernels()
        self.cfg = config
        self.masks = masks
        self.region = region
        self.zone = zone
        self.origin = (0, 0)  # the analysed box's top left, in frame pixels
        self.step = (1.0, 1.0)  # frame pixels per analysis pixel, across and down
        self.fast: np.ndarray | None = None
        self.slow: np.ndarray | None = None
        self.timer: np.ndarray | None = None
        self.arrived: np.ndarray | None = None  # pts each changed pixel first differed (NaN: unchanged)
        self.seen: np.ndarray | None = None  # its change was seen with nobody over it (see the module doc)
        self.unsure: np.ndarray | None = None  # its background is resampled from a coarser scale: blurred
        self.coarse: tuple[int, int] | None = None  # that scale's size (w, h) of the analysed box
        self.last_pts = 0.0
        self.gain = 1.0  # the last look's global brightness ratio (frame over slow background)
        # the camera's unseen seconds (stream time minus sight) at the last look; None: not known (a
        # snapshot from before it was kept), so the next step is taken as unseen
        self.unseen: float | None = 0.0
        # analysis pixels per frame pixel wanted (None before the first frame); a shrink is by the whole
        # factor near it (whole_factor), ``step`` says the scale analysed
        self.scale: float | None = None
        self.sized = False  # the scale comes from the people's size (or a snapshot), not the fallback
        self.blobs = Blobs.empty()
        self._ignore_small: np.ndarray | None = None
        # the flat indices of the last look's changed pixels and the bookkeeping arrays it left (at rest
        # everywhere else), or None (see unrested)
        self._left: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        """The model's state for a snapshot of the camera (vision/scene/static_snapshot.py)."""
        return state_arrays(self)

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> bool:
        """Take back :meth:`arrays` (or an older snapshot's); False (and nothing changed) if they are not
        this model's (of another region). A frame of another size resamples them, see :meth:`update`."""
        return load_state(self, arrays)

    def update(
        self,
        image: np.ndarray,
        pts: float,
        person_px: float | None = None,
        cover: np.ndarray | None = None,
        unseen: float = 0.0,
    ) -> Blobs:
        """Feed one BGR frame, where the zone's far people are ``person_px`` frame pixels tall (None:
        not known yet) and ``cover`` holds the boxes (xyxy, frame pixels) of the people and vehicles
        seen since the last look; ``unseen`` is the camera's stream time minus its sight clock (the
        seconds it was dark so far: what it grew by since the last look is not credited to any timer).
        Return the static blobs now visible."""
        box = self._box(*image.shape[1::-1])
        wanted = analysis_scale(self.cfg, (box[2] - box[0], box[3] - box[1]), image.shape[1], person_px)
        if person_px is None:
            if self.scale is None or not self.sized:
                self.scale = wanted  # the fallback follows the frame's size
        elif self.scale is None or abs(wanted / self.scale - 1) > RESCALE:
            self.scale = wanted
        self.sized |= person_px is not None
        grey = self._prepare(image, box)
        if self.fast is not None and self.arrived is not None and self.fast.shape != grey.shape:
            self._rescale(grey)  # a new scale, or frames of another size: resampled, keeping what it knew
        if (
            self.fast is None
            or self.slow is None
            or self.timer is None
            or self.arrived is None
            or self.seen is None
        ):
            self.fast, self.slow = grey.copy(), grey.copy()
            self.timer, self.arrived = np.zeros_like(grey), np.full(grey.shape, np.nan)
            self.seen = np.zeros(grey.shape, bool)
            self.last_pts, self.unseen = pts, unseen
            return self.blobs
        dt = max(0.0, pts - self.last_pts)
        dark = self._dark(dt, unseen)
        self.last_pts = pts
        calm, static = self._look(grey, pts, dt, dark, cover)
        if self.cfg.min_static > 0 and not static:  # nothing static: no blobs
            self.blobs = Blobs.empty()
            return self.blobs
        place = (self.step, self.origin, self.zone)
        self.blobs = find_blobs(
            self.cfg, grey, self.gain, calm, self.slow, self.timer, self._ignore_small, place
        )
        return self.blobs

    def _look(
        self, grey: np.ndarray, pts: float, dt: float, dark: float, cover: np.ndarray | None
    ) -> tuple[np.ndarray, bool]:
        """A look's per-pixel work on ``grey`` (the analysed box, ``dt`` seconds after the last look, of
        which ``dark`` unseen), in the kernels of vision/scene/static_kernels.py: the gain (kept in
        ``gain``), where the look finds a change, the timers, both backgrounds.
        Returns where it is calm (matches the fast background) and whether any timer reached
        ``min_static``."""
        from vision.scene.static_kernels import carry, mark, settle  # imported by __init__

        assert self.fast is not None and self.slow is not None and self.timer is not None
        assert self.arrived is not None and self.seen is not None
        cfg, f32 = self.cfg, np.float32
        threshold = f32(cfg.threshold)  # as numpy compares a float32 array with a Python number
        self.gain = gain = self._gain(grey, threshold)
        # a blurred background: it must differ blurred too (looked up once a look: _learn takes it)
        unsure = self.unsure if self.unsure is not None and self.unsure.any() else None
        sure = NONE
        if unsure is not None:
            expected = self.slow * f32(gain)
            sure = (~unsure | (np.abs(self._blurred(grey) - expected) >= threshold)).ravel()
        changed, calm = np.empty(grey.shape, bool), np.empty(grey.shape, bool)
        at = np.empty(grey.size, np.intp)
        flat = grey.ravel()
        fast_rate = f32(dt / cfg.fast_seconds) if dt < cfg.fast_seconds else f32(1.0)
        rates = (f32(gain), threshold, fast_rate, f32(min(1.0, dt / cfg.slow_seconds)))
        flags = (changed.ravel(), calm.ravel())
        at = at[: mark(flat, self.fast.ravel(), self.slow.ravel(), sure, *rates, *flags, at)].copy()
        state = tuple(a.ravel() for a in (self.arrived, self.seen, self.timer))
        last = self.unrested()
        among = carry(*state, at, NONE_AT if last is None else last, last is not None, float(pts), dark)
        under = self._under(cover, grey.shape)  # the analysis pixels the people and vehicles covered
        touched = self._touched(changed, under) if among else NONE
        limits = (f32(gain), CATCH_UP * cfg.fast_seconds, f32(cfg.absorb_after), f32(cfg.min_static))
        static = settle(
            flat, self.slow.ravel(), *state, calm.ravel(), touched, at, float(pts), f32(dt - dark), *limits
        )
        if unsure is not None:
            self._learn(grey, changed, calm, under, gain, unsure)
        self._left = (at, self.arrived, self.seen, self.timer)
        return calm, static

    def unrested(self) -> np.ndarray | None:
        """The flat indices (ascending) outside which the timers, arrivals and seen flags are at rest: the
        last look's changed pixels (a look sets every other pixel's to rest, and find_blobs only zeroes
        timers); None where that is not known (no look yet, arrays resampled or restored since)."""
        left = self._left
        if (
            left is None
            or left[1] is not self.arrived
            or left[2] is not self.seen
            or left[3] is not self.timer
        ):
            return None
        return left[0]

    def _dark(self, dt: float, unseen: float) -> float:
        """Of the ``dt`` seconds since the last look, those the camera did not see (its ``unseen``
        grew by them); all of them after a snapshot that did not keep ``unseen``."""
        dark = dt if self.unseen is None else unseen - self.unseen
        self.unseen = unseen
        return min(dt, dark) if dark > DARK_EPSILON else 0.0

    def _learn(
        self,
        grey: np.ndarray,
        changed: np.ndarray,
        calm: np.ndarray,
        under: np.ndarray | None,
        gain: float,
        unsure: np.ndarray,
    ) -> None:
        """Where the background was resampled from a coarser scale and the frame did not match it
        then (something there: ``unsure``, the model's own, narrowed in place), the sharp frame becomes
        the background once the place is calm, with nobody over it and nothing changed (as seen at the
        coarser scale)."""
        assert self.slow is not None
        known = unsure & calm & ~changed
        if under is not None:
            known &= ~under
        self.slow[known] = grey[known] / gain
        unsure &= ~known

    def _blurred(self, grey: np.ndarray) -> np.ndarray:
        """``grey`` as blurred as a background resampled from the coarser scale."""
        assert self.coarse is not None
        small = cv2.GaussianBlur(cv2.resize(grey, self.coarse, interpolation=cv2.INTER_AREA), (5, 5), 0)
        return cv2.resize(small, grey.shape[::-1], interpolation=cv2.INTER_LINEAR)

    def _under(self, cover: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
        """The analysis pixels under the ``cover`` boxes (xyxy, frame pixels); None without boxes."""
        if cover is None or len(cover) == 0:
            return None
        under = np.zeros(shape, bool)
        (sx, sy), (x0, y0) = self.step, self.origin
        h, w = shape
        boxes = np.asarray(cover, np.float64)
        cols, rows = (boxes[:, [0, 2]] - x0) / sx, (boxes[:, [1, 3]] - y0) / sy
        c0, c1 = np.maximum(0, np.floor(cols[:, 0])), np.minimum(w, np.ceil(cols[:, 1]))
        r0, r1 = np.maximum(0, np.floor(rows[:, 0])), np.minimum(h, np.ceil(rows[:, 1]))
        spans = np.stack([r0, r1, c0, c1], axis=1)[(c1 > c0) & (r1 > r0)].astype(np.int64)
        # each rectangle once: the frames a look covers repeat their boxes (a held frame's are the last ones)
        for top, bottom, left, right in set(map(tuple, spans.tolist())):
            under[top:bottom, left:right] = True
        return under

    @staticmethod
    def _touched(changed: np.ndarray, under: np.ndarray | None) -> np.ndarray:
        """Flat, over the analysed box: the changed pixels whose connected changed region touches a pixel
        ``under`` a cover box (their change formed under someone); empty where nothing is under a box."""
        if under is None or not under.any():
            return NONE
        n, labels = cv2.connectedComponents(changed.view(np.uint8), connectivity=8)
        touched = np.zeros(n, bool)
        touched[labels[under & changed]] = True
        return touched[labels.ravel()]

    def _box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The analysed box in frame pixels: the region with a margin, within the frame."""
        if self.region is None:
            return 0, 0, width, height
        x0, y0, x1, y1 = self.region
        mx, my = MARGIN * (x1 - x0), MARGIN * (y1 - y0)
        left, top = max(0, math.floor((x0 - mx) * width)), max(0, math.floor((y0 - my) * height))
        right, bottom = min(width, math.ceil((x1 + mx) * width)), min(height, math.ceil((y1 + my) * height))
        return left, top, max(left + 1, right), max(top + 1, bottom)

    def _prepare(self, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """The box of the frame, grey, blurred, at the analysis scale (only that part is resized)."""
        assert self.scale is not None
        x0, y0, x1, y1 = box
        n = whole_factor(self.cfg, (x1 - x0, y1 - y0), self.scale)
        if n:  # whole blocks, OpenCV's fast INTER_AREA: the box's last rows and columns short of one left out
            size = ((x1 - x0) // n, (y1 - y0) // n)
            x1, y1 = x0 + size[0] * n, y0 + size[1] * n
        else:
            size = (max(1, round((x1 - x0) * self.scale)), max(1, round((y1 - y0) * self.scale)))
        self.origin, self.step = (x0, y0), ((x1 - x0) / size[0], (y1 - y0) / size[1])
        shrink = cv2.INTER_AREA if self.scale <= 1 else cv2.INTER_LINEAR
        # grey first: resizing one channel, not three, was most of a look's cost (benchmarks/analysis_cost.md)
        small = cv2.resize(cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY), size, interpolation=shrink)
        grey = cv2.GaussianBlur(small, (5, 5), 0).astype(np.float32)
        if self.masks and (self._ignore_small is None or self._ignore_small.shape != grey.shape):
            masked = self.masks.raster(*image.shape[1::-1])[y0:y1, x0:x1]
            self._ignore_small = cv2.resize(masked, size, interpolation=cv2.INTER_NEAREST) > 0
        return grey

    def _rescale(self, grey: np.ndarray) -> None:
        """Resample the state to ``grey``'s shape (the same part of the scene at another scale). Where
        something lies (its timer runs), its backgrounds, timers and arrival are resampled. Elsewhere,
        where the frame, blurred as the coarser scale blurs, matches the resampled background, the
        sharp frame is the background (a resampled one differs from it at every edge, and would stay
        changed for good); where it does not (a passer-by, a bag landing now), the resampled one is
        kept but *unsure*: compared with the frame blurred alike, until :meth:`_learn` takes the
        frame in."""
        assert self.fast is not None and self.slow is not None and self.timer is not None
        assert self.arrived is not None and self.seen is not None
        size = grey.shape[::-1]
        near = cv2.INTER_NEAREST
        lying = cv2.resize((self.timer > 0).astype(np.uint8), size, interpolation=near) > 0
        slow = cv2.resize(self.slow, size, interpolation=cv2.INTER_LINEAR)
        old = (self.slow.shape[1], self.slow.shape[0])
        if self.unsure is not None and self.unsure.any() and self.coarse is not None:
            old = min(old, self.coarse)  # still blurred by an earlier, coarser scale
            unsure = cv2.resize(self.unsure.astype(np.uint8), size, interpolation=near) > 0
        else:
            unsure = np.zeros(grey.shape, bool)
        self.coarse = old
        unsure |= np.abs(self._blurred(grey) - slow) >= self.cfg.threshold
        self.unsure = unsure & ~lying
        kept = lying | self.unsure
        self.fast = np.where(kept, cv2.resize(self.fast, size, interpolation=cv2.INTER_LINEAR), grey)
        self.slow = np.where(kept, slow, grey)
        self.timer = np.where(lying, cv2.resize(self.timer, size, interpolation=near), 0.0).astype(np.float32)
        self.arrived = np.where(kept, cv2.resize(self.arrived, size, interpolation=near), np.nan)
        self.seen = kept & (cv2.resize(self.seen.astype(np.uint8), size, interpolation=near) > 0)

    def _gain(self, grey: np.ndarray, threshold: np.float32) -> float:
        """Global brightness ratio over calm pixels (within ``threshold`` of the fast background), so a
        cloud passing is not an object arriving: the median over every GAIN_STEP-th row and column (a
        light change is everywhere; the median of all pixels was a quarter of a look's cost)."""
        from vision.scene.static_kernels import gain_samples  # imported by __init__

        assert self.fast is not None and self.slow is not None
        # one slot per pixel sampled
        ratios = np.empty(-(-grey.shape[0] // GAIN_STEP) * -(-grey.shape[1] // GAIN_STEP), np.float32)
        count = gain_samples(grey, self.fast, self.slow, threshold, GAIN_STEP, ratios)
        if count < 0.05 * ratios.size:
            return 1.0
        return median(ratios[:count])


def median(values: np.ndarray) -> float:
    """``np.median`` of a 1-D float array without NaN, the same value, partitioning ``values`` in place at
    its middle alone: the values below it are the lower half, so the other middle one of an even count is
    their largest. np.median's selection of both middles was three to four times slower than a sort on
    the gain's ratios, and the sort five times slower than this (most of the gain's cost)."""
    half = len(values) // 2
    values.partition(half)
    if len(values) % 2:
        return float(values[half])
    return float((values[:half].max() + values[half]) / values.dtype.type(2))  # np.mean's float32 sum
