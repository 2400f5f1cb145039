"""The common interface of all rules: one FrameContext in, observations out.

A rule reads only the context it is handed (vision/camera/context.py), and keeps its
memory in plain values that :meth:`Rule.state` writes out and :meth:`Rule.load` reads
back, so a camera unit can be snapshotted and restored in another process.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vision.camera.context import FrameContext
from vision.geometry import anchors_of
from vision.scene.static_objects import DARK_EPSILON
from vision.scene.zones import Zone
from vision.track import TrackTable
from vision.types import Observation, label_ids, member_of

if TYPE_CHECKING:  # vision.config imports the rules' registry
    from vision.config import CameraConfig, EventsConfig


class CameBack:
    """The frame a camera last came back after a dark spell (its sight clock stood still while the
    stream's went on), so a rule dates no episode before it: time the camera was dark is unknown
    and never credited (ARCHITECTURE.md). The rule's first frame counts as one (its tracks are new)."""

    def __init__(self) -> None:
        self.back = -math.inf
        self._unseen: float | None = None  # pts - sight at the last frame: grows by each dark spell

    def see(self, ctx: FrameContext) -> float:
        """Take in one frame; return the pts of the frame the camera last came back."""
        unseen = ctx.pts - ctx.sight
        if self._unseen is None or unseen > self._unseen + DARK_EPSILON:
            self.back = ctx.pts
        self._unseen = unseen
        return self.back


class RuleError(Exception):
    """A rule that cannot run with this model or scene; the message names the config key."""


class RuleConfig(BaseModel):
    """Settings every rule has: how long a condition must hold before an event opens.

    Strict: a number is a number (``"15"`` or ``true`` for a count is an error naming the key,
    from a file and from the API alike), never a string that happens to parse as one."""

    model_config = ConfigDict(extra="forbid", strict=True)

    min_duration: float = Field(
        5.0, ge=0, description="Seconds the condition must hold (stream time) before the event opens."
    )
    close_after: float | None = Field(
        None, ge=0, description="Override of events.close_after for this rule in this zone."
    )
    cooldown: float = Field(
        0.0, ge=0, description="After a ticket of this rule in this zone closes, no new one for this long."
    )
    min_score: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Detections below this score are ignored by this rule (above detector.min_score).",
    )

    def problems(self, zone_names: set[str]) -> list[str]:
        """Problems that need the rest of the camera's config to see (e.g. a zone named by a rule)."""
        return []

    def close_time(self, camera: CameraConfig, events: EventsConfig) -> float:
        """Seconds of stream time from its subject gone to its event closed, at most: the next analysed
        frame sees it gone, and ``close_after`` (the events' when unset) of seeing it gone closes it.
        A clip that ends sooner after an incident cannot show the close (vision/evaluate/match.py);
        rules that see the absence later add their lag."""
        close_after = events.close_after if self.close_after is None else self.close_after
        return 1 / camera.detect_fps + close_after


class TrackRuleConfig(RuleConfig):
    """Rules about tracked objects: which classes, and how sure a track must be."""

    classes: list[str] = Field(description="Labels this rule watches.")
    threshold: float = Field(
        0.5, ge=0, le=1, description="A track counts once the median score of its boxes reaches this."
    )
    inertia: int = Field(3, ge=1, description="A track counts once it has been detected this many times.")
    edge_margin: float = Field(
        0.03,
        ge=0,
        le=0.5,
        description="A track in the zone stays in until its anchor is this far outside (fraction of the "
        "frame's longer side), or edge_height of its own height if that is less: a box whose bottom "
        "jitters across the edge does not flicker in and out.",
    )
    edge_height: float = Field(
        0.3,
        ge=0,
        le=10,
        description="The most a track in the zone may stray outside and stay in, as a fraction of its own "
        "box height: a box jitters by a share of its size, and on a distant camera a share of the frame "
        "would hold in a person who walked off by twice his height.",
    )

    def close_time(self, camera: CameraConfig, events: EventsConfig) -> float:
        """A track lost from sight (hidden, or gone) is unknown, pausing the timers, until the tracker
        drops it ``max_lost`` later: only then is its subject seen gone."""
        return super().close_time(camera, events) + camera.tracker.max_lost


class Rule(ABC):
    """One event type watching one zone of one camera; keeps whatever state it needs.

    Subclasses set ``name`` (the key under ``rules:`` in the config) and ``Config``.
    """

    name: ClassVar[str]
    Config: ClassVar[type[RuleConfig]]

    def __init__(self, camera_id: str, zone: Zone, config: RuleConfig, names: dict[int, str]) -> None:
        self.camera_id = camera_id
        self.zone = zone
        self.config = config
        self.names = names
        # subjects unseen this long (seconds of sight) are forgotten, unless their event is live
        self.forget_after = 2 * (config.close_after or 0.0) + 60.0
        self._inside = np.zeros(0, np.int64)  # track ids in the zone after the last frame

    def class_ids(self, labels: list[str]) -> list[int]:
        """Model class ids for configured labels; a label the model lacks is an error."""
        ids, missing = label_ids(self.names, labels)
        if missing:
            raise RuleError(
                f"cameras.{self.camera_id}.zones.{self.zone.name}.rules.{self.name}: "
                f"the model has no class {', '.join(missing)} (set this rule's classes to labels it has)"
            )
        return ids

    def kept(self, ctx: FrameContext) -> set[str]:
        """This rule's subjects whose events are pending or open: never forgotten while so."""
        return {s for zone, rule, s in ctx.keep if zone == self.zone.name and rule == self.name}

    def tracked(
        self, ctx: FrameContext, classes: np.ndarray, config: TrackRuleConfig
    ) -> tuple[TrackTable, np.ndarray]:
        """The camera's track table and the rows of it this rule may count: its classes, sure enough
        (median score, inertia), anchored in the zone. Lost rows (occluded) are included."""
        tracks, frame = ctx.tracks, ctx.frame
        if len(tracks) == 0:
            return tracks, np.zeros(0, np.int64)
        ok = member_of(tracks.class_id, classes) & (tracks.median_score >= config.threshold)
        ok &= tracks.hits >= config.inertia
        rows = np.flatnonzero(ok)
        xyxy = tracks.box[rows]
        anchors = anchors_of(xyxy, self.zone.anchor)
        inside = self.zone.inside(anchors, frame.width, frame.height)
        was_in = member_of(tracks.track_id[rows], self._inside)
        if was_in.any():  # hysteresis: those already in leave only when clearly out, for their size
            tall = xyxy[:, 3] - xyxy[:, 1]
            margin = np.minimum(
                config.edge_margin * max(frame.width, frame.height), config.edge_height * tall
            )
            inside |= was_in & self.zone.near(anchors, frame.width, frame.height, margin)
        rows = rows[inside]
        self._inside = tracks.track_id[rows]
        return tracks, rows

    @abstractmethod
    def observe(self, ctx: FrameContext) -> list[Observation]:
        """Turn one frame into observations (condition TRUE/FALSE/UNKNOWN per subject)."""

    def state(self) -> dict[str, Any]:
        """What this rule remembers, as JSON-ready values (for a snapshot of its camera)."""
        return {}

    def load(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`state` wrote (a restore, or the same zone after an edit)."""
        if state:
            raise ValueError(f"rule {self.name} keeps no state, but was given {', '.join(sorted(state))}")
