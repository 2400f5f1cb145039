"""Settings of the per-camera tracker (`cameras.<id>.tracker`); every time is stream seconds."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TrackerConfig(BaseModel):
    """ByteTrack-style tracking of one camera's detections, with stationary objects flagged."""

    model_config = ConfigDict(extra="forbid")

    high_score: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Boxes scoring at least this are matched first and may start tracks; lower ones "
        "only extend tracks that were seen on the previous frame (ByteTrack's second stage).",
    )
    low_score: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="Boxes below this are ignored by the tracker (they keep track_id -1). Only boxes "
        "above detector.min_score reach the tracker, so lower that to use the second stage fully.",
    )
    new_track_score: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="An unmatched box needs at least this score to start a new track.",
    )
    match_iou: float = Field(
        0.1,
        gt=0.0,
        le=1.0,
        description="Least overlap (IoU) of a high-score box with a track's predicted box to match it; "
        "low, because at a few frames per second a jittery box moves far between frames.",
    )
    low_match_iou: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="Least overlap (IoU) for a low-score box: stricter, since such boxes are often clutter.",
    )
    same_class: bool = Field(
        True,
        description="Match a box only to a track of its class (the track's majority class); false lets "
        "a detector that flips between classes (bicycle/motorcycle) keep one track.",
    )
    min_hits: int = Field(
        2,
        ge=1,
        le=100,
        description="Consecutive detections before a track gets an id; before that its boxes keep "
        "track_id -1, so one-frame false positives never become tracks.",
    )
    max_lost: float = Field(
        3.0,
        ge=0.0,
        description="Seconds a track survives without a detection (occlusion, missed frames) and keeps "
        "its id, first_seen and stationary time; its box is predicted meanwhile.",
    )
    lost_motion: float = Field(
        1.5,
        ge=0.0,
        description="Seconds after a track was last seen that its predicted box keeps moving on its "
        "last velocity while it is lost; then it holds still until the track is found or expires "
        "(max_lost), so the prediction of someone who stopped behind a sign does not run away from him. "
        "The step to the first frame a track is missed on always moves (frames far apart).",
    )
    appearance_distance: float = Field(
        0.4,
        ge=0.0,
        le=1.0,
        description="A confirmed track that missed the previous frame is found again only on a box that "
        "looks like it: the colour histograms of its boxes' upper and lower halves may differ by at most "
        "this (Bhattacharyya distance of the half that differs more, 0-1; vision/track/appearance.py), "
        "else the box starts a track of its own. Overlap alone gave a lost person's track to whoever "
        "next passed the same spot; 1 turns the check off (and no look is taken).",
    )
    history: float = Field(
        10.0,
        gt=0.0,
        description="Seconds of recent boxes returned by the track table's history.",
    )
    history_boxes: int = Field(
        50,
        ge=2,
        le=10_000,
        description="Most boxes kept per track (a ring buffer, so at high detect_fps the history is "
        "shorter than `history`); the median score is taken over these.",
    )
    stationary_iou: float = Field(
        0.6,
        gt=0.0,
        le=1.0,
        description="A box overlapping the object's resting box at least this much (IoU) counts as "
        "not moved, as in Frigate; detector jitter stays above it.",
    )
    stationary_time: float = Field(
        10.0,
        ge=0.0,
        description="Seconds an object must stay at rest before its `stationary` flag turns on.",
    )
    move_time: float = Field(
        1.0,
        ge=0.0,
        description="Seconds a box must stay off the resting box before the object counts as moving "
        "again; shorter glitches (a passer-by hiding part of a parked bicycle) keep its rest time.",
    )

    @model_validator(mode="after")
    def _levels(self) -> TrackerConfig:
        if self.low_score > self.high_score:
            raise ValueError(f"low_score ({self.low_score}) must not exceed high_score ({self.high_score})")
        if self.new_track_score < self.high_score:
            raise ValueError(
                f"new_track_score ({self.new_track_score}) must be at least high_score ({self.high_score}): "
                "only high-score boxes start tracks"
            )
        return self
