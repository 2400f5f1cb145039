"""Where on a camera's frame the detector looks (vision/detect/planner.py plans it from these)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from vision.config.base import StrictModel


class RegionsConfig(StrictModel):
    """Where on the frame the detector looks; crops and tiles find small objects a shrunk frame loses."""

    mode: Literal["auto", "full", "zones", "tiles"] = Field(
        "auto",
        description="auto: planned per camera from the frame size, the model's input and how tall people "
        "are in each zone (the camera's calibration, or the people seen there): the whole frame where "
        "the model sees them big enough, else tiles of the right size over the zones that need them, "
        "plus the whole frame for large objects; full: the whole frame, shrunk to the model's input; "
        "zones: a crop around each zone, each at the model's full resolution; tiles: the whole frame "
        "cut into overlapping tiles of tile_size.",
    )
    survey_every: int = Field(
        25,
        ge=0,
        le=10000,
        description="auto: while a zone's people size is not known, one frame in this many also gets some "
        "of the tiles at the model's native scale that cover the zones (survey_tiles of them), so people "
        "too small for the whole frame are seen at all; 0 never does (whole frame until sizes are known). "
        "Once all the tiles have been looked at and found nobody, the gap doubles, up to 16 times this. "
        "A frame that the model shrinks less than 1.5x is never surveyed.",
    )
    survey_tiles: int = Field(
        2,
        ge=0,
        le=256,
        description="auto: most native-scale tiles one surveyed frame adds, so a survey costs at most this "
        "many inferences more on any frame: a survey's tiles are taken a few at a time on successive "
        "surveyed frames, and the gap doubles once all of them have found nobody. A survey that finds "
        "people takes all its tiles on the next frame. 0: every tile on each surveyed frame.",
    )
    max_inferences: int = Field(
        24,
        ge=2,
        le=256,
        description="auto: most model inputs per frame (tiles and the whole frame); bigger tiles are "
        "used where the zones would need more.",
    )
    margin: float = Field(
        0.1,
        ge=0,
        le=2,
        description="zones: grow each zone's bounding box by this fraction of its size per side.",
    )
    min_size: int = Field(
        320, ge=32, le=7680, description="zones: crops are at least this many pixels wide and high."
    )
    tile_size: int = Field(640, ge=64, le=7680, description="tiles: side of a square tile, in frame pixels.")
    tile_overlap: float = Field(
        0.2,
        ge=0,
        lt=1,
        description="tiles and auto: overlap of neighbouring tiles (fraction; auto overlaps by at least "
        "two of the zone's smallest people).",
    )
    full_frame: bool = Field(
        True,
        description="With tiles or zones (and auto's tiles), also detect on the whole frame (objects "
        "larger than a crop); boxes seen twice are merged, and a box cut by a tile's edge is joined to "
        "the whole object's.",
    )
