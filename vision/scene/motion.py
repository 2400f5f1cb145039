"""Motion gating: a camera whose zones show no change since its last detected frame skips the detector.

Most street cameras look at nothing moving most of the time; detecting those frames again
finds the same boxes. Before a frame goes to the detector, the gate asks what changed in the
zones (the whole frame when the camera has none) since the last frame that was detected:

- first by the codec's own motion vectors, where the reader has them for every frame since
  the frame before (vision/ingest/vectors.py): nearly free, no pixel looked at; a 16x16
  block changed when its vectors add up to ``vector_pixels``, or it was coded afresh;
- where they say something moved (or there are none: a keyframe, a stream without vectors, a
  frame dropped between), by the pixels: the frame shrunk to about ``width`` by block means,
  grey, against the last detected one; a pixel changed when it differs by more than
  ``pixel_delta`` grey levels. The reader builds that picture on its own thread as it hands
  the frame over (:func:`luma_picture`, from the decoder's luma plane, which is already grey),
  so the inference thread only compares two small pictures.
  Vectors only spare this look: encoder noise and a camera's grain move many blocks a little
  (benchmarks/motion_gate.md), so only the pixels send a frame to the detector.

If fewer than ``threshold`` of the zones' blocks or pixels changed, the frame is *held*: not
detected, but still analysed, with the last detected frame's boxes taken as its own, as if the
detector had found them again (vision/camera/analysis.py). So a held frame carries the last
detected frame's verdict: what was there stays there (its track keeps its boxes and rest time),
what was gone stays gone, and the rules' timers of presence and absence run on over it exactly
as over frames detected alike; the static-object model still looks at the real picture on its
own cadence. Comparing with the last *detected* frame (not the previous one) lets slow changes
add up until they count. Whatever happens, a frame goes through at least every ``max_skip``
seconds of stream time: no verdict is carried longer, and a change too small to see here is
still found by the detector.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vision.types import Motion


class MotionGateConfig(BaseModel):
    """Skip the detector on frames where nothing moved in the camera's zones."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        True,
        description="Skip the detector on frames without motion in the zones (they are still analysed, "
        "with the last detected frame's boxes taken as theirs: its verdict carries over them).",
    )
    threshold: float = Field(
        0.002,
        gt=0,
        le=1,
        description="Share of the zones' pixels (or 16x16 blocks, by the motion vectors) that must change "
        "for a frame to count as motion.",
    )
    pixel_delta: float = Field(18.0, gt=0, le=255, description="Grey-level change that counts for a pixel.")
    max_skip: float | None = Field(
        None,
        gt=0,
        description="Seconds of stream time at most between two detected frames, motion or not: the "
        "longest a held frame carries a detected frame's verdict. Unset: 1 s, or 2.25 detection "
        "intervals (1 / detect_fps) where that is longer, so a camera detecting 1 frame a second or "
        "fewer (a keyframes-only camera at 0.5/s: keyframes 2 s apart, 4.5 s) may hold up to two "
        "frames in a row; a bound no longer than the interval holds nothing "
        "(benchmarks/motion_gate_keyframes.md).",
    )
    width: int = Field(
        160,
        ge=32,
        le=640,
        description="About the width of the grey picture compared: each of its pixels is the mean of a "
        "square block of the frame, as many pixels a side as the frame's width / this, rounded (a 768 px "
        "frame at 160: 5x5 blocks, 153 px wide).",
    )
    vectors: bool = Field(
        True,
        description="Read the motion first from the codec's own motion vectors where the stream has them "
        "(P and B frames: nearly free, no pixel looked at); the pixels are compared only where they say "
        "something moved, and on keyframes and streams without. Such a stream is decoded with slice "
        "threads, not frame threads, whose exported vectors sometimes do not cover their frame.",
    )
    vector_pixels: float = Field(
        2.0,
        gt=0,
        description="Pixels a 16x16 block's motion vectors must add up to since the last detected frame "
        "for the block to count as changed (a block coded afresh always counts).",
    )


SKIP_SECONDS = 1.0  # the least max_skip unset: a still camera is detected again every second
# max_skip unset, in detection intervals: two frames may be held in a row at any rate (a quarter for jitter)
SKIP_INTERVALS = 2.25


def max_skip(config: MotionGateConfig, interval: float) -> float:
    """The longest a camera whose frames come ``interval`` seconds apart goes without detecting."""
    return config.max_skip if config.max_skip is not None else max(SKIP_SECONDS, SKIP_INTERVALS * interval)


class MotionGate:
    """One camera's gate; :meth:`due` is asked once per frame, before its detection."""

    def __init__(self, config: MotionGateConfig, zones: list[np.ndarray], interval: float) -> None:
        """``interval``: seconds between the frames the camera sends to detection (1 / detect_fps)."""
        self.cfg = config
        self.max_skip = max_skip(config, interval)
        # a grey difference is a whole number: over pixel_delta exactly when over its whole part, which
        # compares uint8 with uint8 (a float bound makes numpy cast every pixel to float64 first)
        self._delta = np.uint8(math.floor(config.pixel_delta))
        self.zones = zones  # normalized [M, 2] polygons (none: the whole frame)
        self.skipped = 0  # frames skipped so far
        self.by_vectors = 0  # of those, skipped on the motion vectors' word (no pixel looked at)
        self._reference: np.ndarray | None = None  # the last detected frame, small and grey
        self._detected_at = 0.0
        self._moved: np.ndarray | None = None  # vectors added up since the last frame judged by pixels
        self._seen: float | None = None  # pts of the last frame asked about
        self._masks: dict[tuple[int, ...], tuple[np.ndarray | None, int]] = {}

    def reconfigure(self, zones: list[np.ndarray]) -> None:
        """New zones: compare over them from the next frame on (and detect that one)."""
        self.zones, self._masks = zones, {}
        self.reset()

    def reset(self) -> None:
        """Detect the next frame whatever it shows (a restarted camera unit has no detections to hold)."""
        self._reference = None

    def due(
        self, image: np.ndarray, pts: float, motion: Motion | None = None, picture: np.ndarray | None = None
    ) -> bool:
        """Whether the frame at stream time ``pts`` goes to the detector; ``motion``: what its
        reader's codec said moved since the frame before (None: unknown, compare pixels);
        ``picture``: its grey picture as the reader built it (None: built here from ``image``)."""
        if not self.cfg.enabled:
            return True
        seen, self._seen = self._seen, pts
        grey = None
        if self._reference is not None and 0 <= pts - self._detected_at < self.max_skip:
            if self._chained(motion, seen):
                assert motion is not None  # checked by _chained
                moved = motion.grid if self._moved is None else self._moved + motion.grid
                self._moved = moved
                if self._still(moved >= self.cfg.vector_pixels):
                    self.skipped += 1
                    self.by_vectors += 1
                    return False
            # the pixels have the last word (vectors moved: maybe noise)
            grey = self._picture(image, picture)
            if grey.shape == self._reference.shape and self._still(
                cv2.absdiff(grey, self._reference) > self._delta
            ):
                self._moved = None  # the vectors add up from this frame on
                self.skipped += 1
                return False
        self._reference = self._picture(image, picture) if grey is None else grey
        self._detected_at, self._moved = pts, None
        return True

    def _chained(self, motion: Motion | None, seen: float | None) -> bool:
        """The vectors cover every frame since the last one asked about (none dropped between)."""
        return (
            self.cfg.vectors
            and motion is not None
            and seen is not None
            and motion.since == seen
            and (self._moved is None or self._moved.shape == motion.grid.shape)
        )

    def _picture(self, image: np.ndarray, picture: np.ndarray | None) -> np.ndarray:
        """The frame's grey picture: the reader's, else made here from its BGR ``image``."""
        return picture if picture is not None else bgr_picture(image, self.cfg.width)

    def _still(self, changed: np.ndarray) -> bool:
        """Fewer than ``threshold`` of the zones' pixels (or blocks) changed (counted, not indexed out:
        a few times cheaper, on the inference thread)."""
        mask, size = self._region(changed.shape)
        inside = changed if mask is None else changed & mask
        return bool(size) and np.count_nonzero(inside) / size < self.cfg.threshold

    def _region(self, shape: tuple[int, ...]) -> tuple[np.ndarray | None, int]:
        """The zones' pixels in a picture (or block grid) of ``shape`` (None: all of it, without zones or
        with zones that cover it), and how many."""
        region = self._masks.get(shape)
        if region is None:
            height, width = shape[:2]
            if not self.zones:
                mask = np.ones((height, width), bool)
            else:
                raster = np.zeros((height, width), np.uint8)
                for polygon in self.zones:
                    cv2.fillPoly(raster, [np.round(polygon * (width, height)).astype(np.int32)], 1)
                mask = raster > 0
            size = int(np.count_nonzero(mask))
            region = self._masks[shape] = (None if size == mask.size else mask, size)
        return region


# limited-range luma (16-235, as H.264 streams mostly carry it) to the grey levels 0-255 that OpenCV's
# grey of the decoder's BGR picture has: BT.601's luma row is the weights of COLOR_BGR2GRAY
LIMITED_TO_FULL = np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)


def block_means(grey: np.ndarray, across: int, width: int) -> np.ndarray:
    """A grey image shrunk by block means: each pixel the mean of a k x k block, k the whole number
    nearest ``across`` (the upright frame's width) / ``width`` (the last rows and columns short of a
    block left out).

    A whole factor takes OpenCV's fast path of INTER_AREA, a plain block mean: several times cheaper
    than a fractional INTER_AREA (benchmarks/motion_gate.md). A bilinear shrink would be cheaper still,
    but it samples a few pixels of each block, so a grainy camera's noise would pass ``pixel_delta``
    and send still frames to the detector; a block mean averages it out."""
    k = max(1, round(across / width))
    rows, cols = max(1, grey.shape[0] // k), max(1, grey.shape[1] // k)
    return cv2.resize(grey[: rows * k, : cols * k], (cols, rows), interpolation=cv2.INTER_AREA)


def bgr_picture(image: np.ndarray, width: int) -> np.ndarray:
    """The gate's picture of a BGR frame: grey, then :func:`block_means` (grey first averages one
    channel instead of three)."""
    return block_means(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), image.shape[1], width)


def luma_picture(luma: np.ndarray, limited: bool, turns: int, width: int) -> np.ndarray:
    """The gate's picture from a decoded frame's luma plane (``limited``: 16-235, stretched to 0-255),
    turned upright by ``turns`` counter-clockwise quarter turns: the picture :func:`bgr_picture` makes
    of the frame's BGR pixels within a grey level or two, without converting any colour and from a
    third of the bytes; the reader builds it on its own thread."""
    small = block_means(luma, luma.shape[0 if turns % 2 else 1], width)
    if limited:
        small = cv2.LUT(small, LIMITED_TO_FULL)
    return np.ascontiguousarray(np.rot90(small, turns)) if turns else small
