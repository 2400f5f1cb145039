"""Class-agnostic static-object detection with a dual background (Porikli, Ivanov and Haga, 2008).

Two backgrounds adapt at different speeds: a pixel that differs from the slow one but
already matches the fast one belongs to something that arrived and stayed — a bag of
rubbish, a dumped box — whatever its class, which no COCO detector would name. Each
such pixel carries a timer in stream seconds; a passer-by hiding it pauses the timer
instead of resetting it. A global gain follows lighting changes, and anything that
stays longer than ``absorb_after`` becomes part of the slow background (a fixture).

The timer counts from the object's arrival: the seconds a changed pixel spent waiting
for the fast background to take it in are credited to it once it does (at most
CATCH_UP time constants), so a timer says how long the object has lain there. The
model always works on the frame scaled to ``work_width`` (up or down), so its blobs and
its morphology, and the litter rule's size limits (shares of the frame), mean the same
at 320 px and at 1080p, and so does its timing. Of that picture it keeps only its
``region`` (the box around the zones with a litter rule), and the camera's scene shows
it a frame about once every ``look_every`` seconds, not every frame: something that must
lie there for half a minute needs no more.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vision.scene.masks import Masks

CATCH_UP = 3.0  # fast-background time constants after which any arrival has been taken in (e^-3: 5%)
GHOST_EDGE_RATIO = 0.8  # outline edges in the frame below this share of the background's: a ghost


class StaticObjectsConfig(BaseModel):
    """The per-camera dual-background model used by the litter rule."""

    model_config = ConfigDict(extra="forbid")

    work_width: int = Field(
        320,
        ge=64,
        le=1920,
        description="Frames are analysed scaled to this width (grey), whatever their size, so an object "
        "covers the same analysis pixels at any resolution.",
    )
    threshold: float = Field(24.0, gt=0, le=255, description="Grey-level difference that counts as change.")
    fast_seconds: float = Field(2.0, gt=0, description="Time constant of the fast background.")
    slow_seconds: float = Field(120.0, gt=0, description="Time constant of the slow background (where calm).")
    min_static: float = Field(
        4.0, ge=0, description="Seconds a pixel must stay changed-and-still before it counts as static."
    )
    absorb_after: float = Field(
        900.0, gt=0, description="Seconds after which a static object becomes background (a fixture)."
    )
    look_every: float = Field(
        1.0,
        ge=0,
        description="Seconds of stream time between two frames the model looks at (0: every frame); the "
        "frames between reuse its last blobs. Litter must stay for many seconds, so one look a second "
        "is enough, at a fraction of the cost.",
    )


@dataclass(frozen=True, slots=True)
class Blobs:
    """Static blobs of one frame, as arrays; ``xyxy`` in full-frame pixels."""

    xyxy: np.ndarray  # float32 [N, 4]
    area_px: np.ndarray  # float32 [N], in full-frame pixels
    static_seconds: np.ndarray  # float32 [N], the blob's median pixel timer: how long it has lain there

    @classmethod
    def empty(cls) -> Blobs:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return int(self.area_px.shape[0])

    def __getitem__(self, index: np.ndarray) -> Blobs:
        return Blobs(self.xyxy[index], self.area_px[index], self.static_seconds[index])


class StaticObjects:
    """One camera's dual background and per-pixel static timers."""

    def __init__(
        self,
        config: StaticObjectsConfig,
        masks: Masks | None = None,
        region: tuple[float, float, float, float] | None = None,
    ) -> None:
        """``region``: the part of the frame analysed (x0, y0, x1, y1 as fractions; None: all of it)."""
        self.cfg = config
        self.masks = masks
        self.region = region
        self.origin = (0, 0)  # the region's top left in the analysis picture
        self.fast: np.ndarray | None = None
        self.slow: np.ndarray | None = None
        self.timer: np.ndarray | None = None
        self.arrived: np.ndarray | None = None  # pts each changed pixel first differed (NaN: unchanged)
        self.last_pts = 0.0
        self.scale = 1.0
        self.blobs = Blobs.empty()
        self._ignore_small: np.ndarray | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        """The model's state (both backgrounds and the pixel timers), for a snapshot of the camera:
        without it a restarted camera would take a bag already lying there for background."""
        if self.fast is None or self.slow is None or self.timer is None:
            return {}
        arrays = {
            "fast": self.fast,
            "slow": self.slow,
            "timer": self.timer,
            "last_pts": np.array(self.last_pts),
        }
        return arrays if self.arrived is None else arrays | {"arrived": self.arrived}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> bool:
        """Take back :meth:`arrays`; False (and nothing changed) if they are not this model's.
        (A frame of another size later starts the model afresh, see :meth:`update`.)"""
        fast, slow, timer = (arrays.get(k) for k in ("fast", "slow", "timer"))
        if fast is None or slow is None or timer is None or fast.ndim != 2:
            return False
        if not fast.shape == slow.shape == timer.shape:
            return False
        self.fast, self.slow, self.timer = (a.astype(np.float32) for a in (fast, slow, timer))
        arrived = arrays.get("arrived")
        ok = arrived is not None and arrived.shape == timer.shape
        self.arrived = arrived.astype(np.float64) if ok else np.full(timer.shape, np.nan)
        self.last_pts = float(arrays["last_pts"])
        return True

    def update(self, image: np.ndarray, pts: float) -> Blobs:
        """Feed one BGR frame; return the static blobs now visible."""
        grey = self._prepare(image)
        if self.fast is not None and self.fast.shape != grey.shape:  # restored for another frame size
            self.fast = self.slow = self.timer = None
        if self.fast is None or self.slow is None or self.timer is None or self.arrived is None:
            self.fast, self.slow = grey.copy(), grey.copy()
            self.timer, self.arrived = np.zeros_like(grey), np.full(grey.shape, np.nan)
            self.last_pts = pts
            return self.blobs
        dt = max(0.0, pts - self.last_pts)
        self.last_pts = pts
        calm = np.abs(grey - self.fast) < self.cfg.threshold  # matches the fast background
        gain = self._gain(grey, calm, self.slow)
        changed = np.abs(grey - self.slow * gain) >= self.cfg.threshold  # differs from the slow one
        self.arrived[changed & np.isnan(self.arrived)] = pts  # first seen changed now
        self.arrived[~changed] = np.nan
        settled = changed & calm
        first = settled & (self.timer == 0)
        self.timer[settled & ~first] += dt  # arrived and stayed
        # taken in by the fast background: it has lain there since it arrived, but the fast background takes
        # any contrast in within CATCH_UP time constants, so a longer wait was something else (people
        # passing over the place) and is not credited
        self.timer[first] = np.minimum(pts - self.arrived[first], CATCH_UP * self.cfg.fast_seconds)
        self.timer[~changed] = 0.0  # back to the old background: the object left (or only passed)
        # changed and not calm (a passer-by in front of it): the timer holds
        self.fast += min(1.0, dt / self.cfg.fast_seconds) * (grey - self.fast)
        rate = min(1.0, dt / self.cfg.slow_seconds)
        self.slow[~changed] += rate * (grey[~changed] / gain - self.slow[~changed])
        fixtures = self.timer >= self.cfg.absorb_after
        if fixtures.any():
            self.slow[fixtures] = grey[fixtures] / gain
            self.timer[fixtures] = 0.0
        self.blobs = self._blobs(grey, gain, calm)
        return self.blobs

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        """The region of the frame, grey, blurred, at the analysis scale (only that part is resized)."""
        h, w = image.shape[:2]
        width = self.cfg.work_width
        height = max(1, round(h * width / w))
        self.scale = w / width
        x0, y0, x1, y1 = self.region or (0.0, 0.0, 1.0, 1.0)
        sx0, sy0 = int(x0 * width), int(y0 * height)
        sx1, sy1 = max(sx0 + 1, min(width, -int(-x1 * width))), max(sy0 + 1, min(height, -int(-y1 * height)))
        self.origin = (sx0, sy0)
        crop = image[
            round(sy0 * h / height) : round(sy1 * h / height), round(sx0 * w / width) : round(sx1 * w / width)
        ]
        shrink = cv2.INTER_AREA if width <= w else cv2.INTER_LINEAR
        small = cv2.resize(crop, (sx1 - sx0, sy1 - sy0), interpolation=shrink)
        grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0).astype(np.float32)
        if self.masks and (self._ignore_small is None or self._ignore_small.shape != grey.shape):
            self._ignore_small = self.masks.raster(width, height)[sy0:sy1, sx0:sx1] > 0
        return grey

    @staticmethod
    def _gain(grey: np.ndarray, calm: np.ndarray, slow: np.ndarray) -> float:
        """Global brightness ratio over calm pixels, so a cloud passing is not an object arriving."""
        sample = calm & (slow > 8)
        if sample.sum() < 0.05 * sample.size:
            return 1.0
        return float(np.median(grey[sample] / slow[sample]))

    def _blobs(self, grey: np.ndarray, gain: float, calm: np.ndarray) -> Blobs:
        """Connected static regions, minus ghosts (which are healed into the slow background)."""
        assert self.slow is not None and self.timer is not None  # set by the first update
        m = (self.timer >= self.cfg.min_static).astype(np.uint8)
        if self._ignore_small is not None:
            m[self._ignore_small] = 0
        m = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
        if n <= 1:
            return Blobs.empty()
        real = np.array([not self._heal_ghost(grey, gain, calm, labels, k, stats[k]) for k in range(1, n)])
        stats = stats[1:][real]
        if len(stats) == 0:
            return Blobs.empty()
        x, y, w, h, area = stats.T.astype(np.float32)
        x, y = x + self.origin[0], y + self.origin[1]
        xyxy = np.stack([x, y, x + w, y + h], axis=1) * self.scale
        # the median, not the longest: an edge pixel that a passer-by had changed before is not the object
        inside = labels > 0
        order = np.lexsort((self.timer[inside], labels[inside]))
        sorted_timers, starts = (
            self.timer[inside][order],
            np.searchsorted(labels[inside][order], np.arange(1, n)),
        )
        counts = np.bincount(labels[inside], minlength=n)[1:]
        seconds = sorted_timers[starts + counts // 2].astype(np.float32)
        return Blobs(xyxy, area * self.scale**2, seconds[real])

    def _heal_ghost(
        self, grey: np.ndarray, gain: float, calm: np.ndarray, labels: np.ndarray, k: int, stat: np.ndarray
    ) -> bool:
        """A ghost is where something *left* that the slow background still remembers (a person
        standing in the first frame): its outline has edges in the background, not in the frame.
        Only a blob seen clearly now is judged (one behind a passer-by is not).
        Returns True, after copying the frame into the slow background there, if blob k is one."""
        assert self.slow is not None and self.timer is not None
        x, y, w, h = (int(v) for v in stat[:4])
        y0, y1, x0, x1 = max(0, y - 2), y + h + 2, max(0, x - 2), x + w + 2
        blob = (labels[y0:y1, x0:x1] == k).astype(np.uint8)
        if calm[y0:y1, x0:x1][blob > 0].mean() < 0.9:
            return False
        ring = (cv2.dilate(blob, np.ones((3, 3), np.uint8)) - cv2.erode(blob, np.ones((3, 3), np.uint8))) > 0
        now = _edges(grey[y0:y1, x0:x1])[ring].mean()
        before = _edges(self.slow[y0:y1, x0:x1] * gain)[ring].mean()
        if now >= GHOST_EDGE_RATIO * before:
            return False
        inside = blob > 0
        self.slow[y0:y1, x0:x1][inside] = grey[y0:y1, x0:x1][inside] / gain
        self.timer[y0:y1, x0:x1][inside] = 0.0
        return True


def _edges(image: np.ndarray) -> np.ndarray:
    return np.abs(cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)) + np.abs(
        cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
    )
