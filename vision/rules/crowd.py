"""Crowd heat: too many people in a zone for too long.

The count is the median over a sliding window of stream time, so one missed or
doubled detection does not flip the state; entering and leaving use two levels
(hysteresis) so a count hovering at the limit does not open and close tickets.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from pydantic import Field, model_validator

from vision.rules.base import Rule, RuleConfig
from vision.scene.zones import Zone
from vision.types import Condition, Detections, Frame, Observation


class CrowdConfig(RuleConfig):
    """People count levels of one zone."""

    classes: list[str] = Field(default_factory=lambda: ["person"], description="Labels counted as people.")
    enter_count: int = Field(10, ge=1, description="Crowded at or above this many people (window median).")
    exit_count: int | None = Field(
        None, ge=0, description="No longer crowded at or below this count; default 70% of enter_count."
    )
    window: float = Field(
        3.0, gt=0, description="Seconds of stream time over which the count's median is taken."
    )

    @model_validator(mode="after")
    def _levels(self) -> CrowdConfig:
        if self.exit_count is None:
            self.exit_count = int(self.enter_count * 0.7)
        if self.exit_count >= self.enter_count:
            raise ValueError(f"exit_count ({self.exit_count}) must be below enter_count ({self.enter_count})")
        return self


class CrowdRule(Rule):
    """Observes one subject, the zone itself, with the median people count."""

    name = "crowd"
    Config = CrowdConfig

    def __init__(self, camera_id: str, zone: Zone, config: CrowdConfig, names: dict[int, str]) -> None:
        super().__init__(camera_id, zone, config, names)
        self.cfg = config
        self.people = np.array(self.class_ids(config.classes), np.int32)
        self.counts: deque[tuple[float, int]] = deque()
        self.crowded = False

    def observe(self, frame: Frame, detections: Detections) -> list[Observation]:
        people = detections[np.isin(detections.class_id, self.people)]
        inside = people[self.zone.contains(people, frame.width, frame.height)]
        self.counts.append((frame.pts, len(inside)))
        while self.counts[0][0] < frame.pts - self.cfg.window:
            self.counts.popleft()
        count = int(np.median([c for _, c in self.counts]))
        level = self.cfg.exit_count if self.crowded else self.cfg.enter_count - 1
        self.crowded = count > level
        confidence = float(np.mean(inside.score)) if len(inside) else 0.0
        return [
            Observation(
                rule=self.name,
                camera_id=self.camera_id,
                zone=self.zone.name,
                subject="zone",
                pts=frame.pts,
                condition=Condition.TRUE if self.crowded else Condition.FALSE,
                confidence=confidence,
                count=count,
                boxes=inside,
                details={"instant_count": len(inside)},
            )
        ]
