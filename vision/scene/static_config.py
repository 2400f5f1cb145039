"""The static-object model's settings, and the analysis scale they give a zone.

Where the people's height in a zone is known (calibration, or the people seen,
vision/detect/sizes.py), an expected litter item, ITEM_SHARE of the height of the zone's far
people, spans ``item_px`` analysis pixels, so the blobs, the morphology and the litter rule's
size limits (in analysis pixels) mean the same for a distant camera and a near one, at any
frame size. Before that is known the box is scaled as a frame ``work_width`` wide would be.

A shrink is by a whole factor (:func:`whole_factor`): the box, less its last rows and columns
short of a block, becomes the means of n x n blocks, OpenCV's fast path of INTER_AREA (a
fractional INTER_AREA was the largest part of a look, benchmarks/analysis_cost.md). n is the
whole number from 2 nearest the wanted shrink in log ratio, so an item spans within SNAP (the
square root of 2) of the pixels wanted; never more than ``max_pixels``, so where that cap sets
the scale the next coarser factor is taken if within SNAP. A wanted scale no such factor meets
stays as it is: above 0.71 (1 would analyse up to twice the pixels wanted, as many as the
frame's: a third more CPU a look on the 426x320 highway clip) and, near the cap, from 0.47 to 0.5
(2 too many pixels, 3 too far); so does an enlargement (a box smaller than its wanted analysis
size, bilinear up to ``max_upscale``).
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

ITEM_SHARE = 0.25  # an expected litter item (a bag, a bundle, a box) is about a quarter of a person's height
# most a whole factor moves the analysis scale off the wanted one, either way: an item of ``item_px`` (10)
# keeps at least 7 pixels across, 50 in area, above the litter rule's ``min_blob_area`` (36)
SNAP = math.sqrt(2)


class StaticObjectsConfig(BaseModel):
    """The dual-background models of a camera (one per zone with a litter rule) used by the litter rule."""

    model_config = ConfigDict(extra="forbid")

    item_px: float = Field(
        10.0,
        ge=2,
        le=100,
        description="Analysis pixels across an expected litter item (a quarter of the height of the zone's "
        "far people, from the calibration or the people seen there), so objects of one real size cover "
        "the same analysis pixels at any distance and frame size. A shrink below 0.71 is by a whole factor "
        "where one fits (a block mean, OpenCV's fast path), the nearest in log ratio: an item then spans "
        "within 1.41x of this.",
    )
    work_width: int = Field(
        320,
        ge=64,
        le=1920,
        description="Until the people's size in a zone is known, its box is analysed at the scale of a "
        "frame this wide (grey).",
    )
    max_upscale: float = Field(
        2.0, ge=1, le=8, description="A zone's box is never enlarged more than this for analysis."
    )
    max_pixels: int = Field(
        76_800,
        ge=4_096,
        le=4_000_000,
        description="Most analysis pixels per zone (320x240 by default): a larger zone is analysed at a "
        "smaller scale, so a wide zone of a distant 4K camera costs no more than this.",
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
    drift_px: float = Field(
        4.0,
        ge=0,
        le=16,
        description="Frame pixels a drifting or shaking camera moves its picture by: a static blob that "
        "the background moved by up to this explains is a moved edge (a painted line, a kerb), not an "
        "object, and becomes background (0: no such check).",
    )
    look_every: float = Field(
        1.0,
        ge=0,
        description="Seconds of stream time between two frames the model looks at (0: every frame); the "
        "frames between reuse its last blobs. Litter must stay for many seconds, so one look a second "
        "is enough, at a fraction of the cost.",
    )


def analysis_scale(
    cfg: StaticObjectsConfig, box: tuple[int, int], width: int, person_px: float | None
) -> float:
    """Analysis pixels per frame pixel for a zone's ``box`` (w, h in frame pixels) of a frame ``width``
    wide, where the zone's far people are ``person_px`` frame pixels tall (None: not known)."""
    scale = cfg.work_width / width if person_px is None else cfg.item_px / (ITEM_SHARE * max(person_px, 1.0))
    scale = min(scale, cfg.max_upscale)
    pixels = box[0] * box[1] * scale * scale
    return scale * math.sqrt(cfg.max_pixels / pixels) if pixels > cfg.max_pixels else scale


def whole_factor(cfg: StaticObjectsConfig, box: tuple[int, int], scale: float) -> int:
    """The whole factor a zone's ``box`` (w, h in frame pixels) is shrunk by at the wanted ``scale``
    (analysis pixels per frame pixel), 0 for none (the scale as it is): of the two around 1 / ``scale``,
    those from 2 within SNAP of it that leave at most ``max_pixels``, the nearest in log ratio."""
    if scale >= 1:
        return 0
    low = math.floor(1 / scale)
    fits = [
        n
        for n in (low, low + 1)
        if n >= 2
        and max(n * scale, 1 / (n * scale)) <= SNAP
        and min(box) >= n
        and (box[0] // n) * (box[1] // n) <= cfg.max_pixels
    ]
    return min(fits, key=lambda n: abs(math.log(n * scale)), default=0)
