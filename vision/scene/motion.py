"""Motion gating: a camera whose zones show no change since its last detected frame skips the detector.

Most street cameras look at nothing moving most of the time; detecting those frames again
finds the same boxes. Before a frame goes to the detector, it is shrunk to ``width`` (grey)
and compared with the last frame that was detected, over the zones only (the whole frame
when the camera has none): if fewer than ``threshold`` of those pixels changed by more than
``pixel_delta`` grey levels, the frame is *held*: not detected, but still analysed, with the
last detections standing for it (vision/camera/analysis.py), so tracks in the zones stay
where they were, the static-object model keeps its own cadence and a ticket's presence keeps
counting; absence only counts on frames really detected (vision/camera/unit.py). Comparing
with the last *detected* frame (not the previous one) lets slow changes add up until they
count. Whatever happens, a frame goes through at least every ``max_skip`` seconds of stream
time, so a change too small to see here is still found by the detector.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class MotionGateConfig(BaseModel):
    """Skip the detector on frames where nothing moved in the camera's zones."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="Skip the detector on frames without motion in the zones.")
    threshold: float = Field(
        0.002,
        gt=0,
        le=1,
        description="Share of the zones' pixels that must change for a frame to count as motion.",
    )
    pixel_delta: float = Field(18.0, gt=0, le=255, description="Grey-level change that counts for a pixel.")
    max_skip: float = Field(
        1.0, gt=0, description="Seconds of stream time at most between two detected frames, motion or not."
    )
    width: int = Field(160, ge=32, le=640, description="Width of the grey picture compared.")


class MotionGate:
    """One camera's gate; :meth:`due` is asked once per frame, before its detection."""

    def __init__(self, config: MotionGateConfig, zones: list[np.ndarray]) -> None:
        self.cfg = config
        self.zones = zones  # normalized [M, 2] polygons (none: the whole frame)
        self.skipped = 0  # frames skipped so far
        self._reference: np.ndarray | None = None  # the last detected frame, small and grey
        self._detected_at = 0.0
        self._mask: np.ndarray | None = None

    def reconfigure(self, zones: list[np.ndarray]) -> None:
        """New zones: compare over them from the next frame on (and detect that one)."""
        self.zones, self._mask = zones, None
        self.reset()

    def reset(self) -> None:
        """Detect the next frame whatever it shows (a restarted camera unit has no detections to hold)."""
        self._reference = None

    def due(self, image: np.ndarray, pts: float) -> bool:
        """Whether the frame at stream time ``pts`` goes to the detector."""
        if not self.cfg.enabled:
            return True
        h, w = image.shape[:2]
        small = cv2.resize(
            image, (self.cfg.width, max(1, round(h * self.cfg.width / w))), interpolation=cv2.INTER_AREA
        )
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.int16)
        reference = self._reference
        if (
            reference is not None
            and reference.shape == grey.shape
            and 0 <= pts - self._detected_at < self.cfg.max_skip
        ):
            mask = self._region(grey.shape)
            changed = np.abs(grey - reference)[mask] > self.cfg.pixel_delta
            if changed.size and changed.mean() < self.cfg.threshold:
                self.skipped += 1
                return False
        self._reference, self._detected_at = grey, pts
        return True

    def _region(self, shape: tuple[int, ...]) -> np.ndarray:
        """The zones' pixels in the small picture (all of it without zones)."""
        mask = self._mask
        if mask is None or mask.shape != shape:
            height, width = shape[:2]
            if not self.zones:
                mask = np.ones((height, width), bool)
            else:
                raster = np.zeros((height, width), np.uint8)
                for polygon in self.zones:
                    cv2.fillPoly(raster, [np.round(polygon * (width, height)).astype(np.int32)], 1)
                mask = raster > 0
            self._mask = mask
        return mask
