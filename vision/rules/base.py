"""The common interface of all rules: tracks/detections, a zone and time in; observations out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from vision.scene.zones import Zone
from vision.types import Condition, Detections, Frame, Observation


class RuleConfig(BaseModel):
    """Settings every rule has: how long a condition must hold before an event opens."""

    model_config = ConfigDict(extra="forbid")

    min_duration: float = Field(
        5.0, ge=0, description="Seconds the condition must hold (stream time) before the event opens."
    )
    close_after: float | None = Field(
        None, ge=0, description="Override of events.close_after for this rule in this zone."
    )


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

    def class_ids(self, labels: list[str]) -> list[int]:
        """Model class ids for configured labels; a label the model lacks is an error."""
        by_name = {v: k for k, v in self.names.items()}
        missing = [label for label in labels if label not in by_name]
        if missing:
            raise ValueError(
                f"camera {self.camera_id}, zone {self.zone.name}, rule {self.name}: "
                f"the model has no class {', '.join(missing)}"
            )
        return [by_name[label] for label in labels]

    @abstractmethod
    def observe(self, frame: Frame, detections: Detections) -> list[Observation]:
        """Turn one frame's detections into observations (condition TRUE/FALSE per subject)."""

    def subjects(self) -> list[str]:
        """The subjects this rule reports on now; a rule with one verdict per zone keeps the default."""
        return ["zone"]

    def unknown(self, pts: float) -> list[Observation]:
        """UNKNOWN for every subject: the camera cannot see (stalled, offline), so nothing is 'gone'."""
        return [
            Observation(
                rule=self.name,
                camera_id=self.camera_id,
                zone=self.zone.name,
                subject=subject,
                pts=pts,
                condition=Condition.UNKNOWN,
            )
            for subject in self.subjects()
        ]
