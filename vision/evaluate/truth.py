"""Ground truth of one recording: how the system watches it, and what really happened in it.

One YAML (or JSON) file per video. The camera section is the same schema as
``cameras.<id>`` of the config, minus ``url`` (the video is the camera), so a zone
tuned on a recording is pasted into the live config unchanged. Incidents are what a
person saw: an event type, the zone, and when it started and ended in seconds of video.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from vision.config import (
    CameraConfig,
    Config,
    DetectorConfig,
    EventsConfig,
    Name,
    StorageConfig,
    StrictModel,
    load_yaml,
    resolve_path,
)
from vision.rules import registry
from vision.secrets import SecretUrl

RECORDING = "recording"  # placeholder url until the camera is bound to its video


class Incident(StrictModel):
    """One thing that really happened, as the annotator saw it."""

    type: str = Field(description="Event type: the rule that should report it (crowd, litter, ...).")
    zone: Name = Field(description="Zone of the camera it happened in.")
    start: float = Field(ge=0, description="Second of the video it began.")
    end: float | None = Field(None, description="Second it ended; null: it lasts to the end of the video.")
    box: tuple[float, float, float, float] | None = Field(
        None, description="Where the subject is (x1, y1, x2, y2 pixels): tells apart incidents that overlap."
    )
    ambiguous: bool = Field(
        False,
        description="The annotator could not decide (someone at the zone's edge, a stay just at the "
        "limit): a ticket for it is not false, and missing it is not a miss.",
    )
    note: str = Field("", description="What it is, for the person reading the report.")

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in registry():
            raise ValueError(f"unknown event type {value!r}: use one of {', '.join(sorted(registry()))}")
        return value

    @model_validator(mode="after")
    def _times_and_box(self) -> Incident:
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        if self.box is not None and not (self.box[2] > self.box[0] and self.box[3] > self.box[1]):
            raise ValueError(f"box {list(self.box)} must be [x1, y1, x2, y2] with x2 > x1 and y2 > y1")
        return self


class BoxesSource(StrictModel):
    """Per-frame boxes for detection metrics, as exported by an annotation tool."""

    file: Path = Field(description="Annotation file, relative to the ground-truth file.")
    format: Literal["coco", "cvat"] | None = Field(
        None,
        description="coco: COCO JSON (CVAT's COCO export too); cvat: CVAT for video/images 1.1 XML. "
        "null: by the file's extension (.json coco, .xml cvat).",
    )

    @property
    def kind(self) -> str:
        return self.format or ("cvat" if self.file.suffix.lower() == ".xml" else "coco")


class TruthSettings(StrictModel):
    """How the system watches a recording: the camera's zones and rules, and optional overrides."""

    camera: CameraConfig = Field(description="Same keys as cameras.<id> of the config, without url.")
    detector: DetectorConfig = Field(default_factory=DetectorConfig, description="The detector to use.")
    events: EventsConfig = Field(default_factory=EventsConfig, description="Event lifecycle timers.")
    tolerance: float = Field(
        1.0,
        ge=0,
        description="Seconds of slack on the annotated times (a person marks them to about a second).",
    )

    @field_validator("camera", mode="before")
    @classmethod
    def _the_video_is_the_camera(cls, value: Any) -> Any:
        if isinstance(value, dict):
            if "url" in value:
                raise ValueError("url: not used here: the camera is the video named by 'video'; remove it")
            return {**value, "url": RECORDING}
        return value


class GroundTruth(TruthSettings):
    """One video: where it is, how to watch it, what happened in it."""

    video: Path = Field(description="The video file, relative to the ground-truth file.")
    incidents: list[Incident] = Field(default_factory=list, description="What really happened.")
    boxes: BoxesSource | None = Field(None, description="Per-frame boxes for detection metrics.")

    @field_validator("incidents")
    @classmethod
    def _incidents_fit_the_camera(cls, incidents: list[Incident], info: ValidationInfo) -> list[Incident]:
        camera = info.data.get("camera")
        problems = [] if camera is None else incident_problems(camera, incidents)
        if problems:
            raise ValueError("; ".join(problems))
        return incidents

    def watched(self) -> list[tuple[str, str]]:
        """Every (event type, zone) the camera watches: where tickets can come from."""
        return sorted(
            (rule, name)
            for name, zone in self.camera.zones.items()
            for rule in type(zone.rules).model_fields
            if getattr(zone.rules, rule) is not None
        )

    def close_time(self, incident: Incident) -> float:
        """Seconds the incident's rule needs, once its subject is gone, to close its event: a clip that
        ends sooner after the incident cannot show the close (the rule's ``close_time``)."""
        rule = getattr(self.camera.zones[incident.zone].rules, incident.type)
        return float(rule.close_time(self.camera, self.events))

    def to_config(self, camera_id: str, data_dir: Path) -> Config:
        """The config the pipeline runs with: this camera reading the video."""
        camera = self.camera.model_copy(update={"url": SecretUrl(str(self.video))})
        return Config(
            cameras={camera_id: camera},
            detector=self.detector,
            events=self.events,
            storage=StorageConfig(data_dir=data_dir),
        )


def incident_problems(camera: CameraConfig, incidents: list[Incident]) -> list[str]:
    """Incidents the camera could never report: an unknown zone, or a zone without that rule."""
    problems = []
    for i, incident in enumerate(incidents):
        zone = camera.zones.get(incident.zone)
        if zone is None:
            known = ", ".join(camera.zones) or "none"
            problems.append(f"[{i}].zone: the camera has no zone {incident.zone!r} (its zones: {known})")
        elif getattr(zone.rules, incident.type) is None:
            problems.append(
                f"[{i}].type: zone {incident.zone!r} has no {incident.type} rule, "
                "so the system cannot report it: add the rule to the zone"
            )
    return problems


def load_truth(path: Path) -> GroundTruth:
    """Read one ground-truth file; its paths are made relative to its folder."""
    truth = load_yaml(path, GroundTruth, "ground-truth file")
    base = path.resolve().parent
    truth.video = resolve_path(truth.video, base)
    if truth.boxes is not None:
        truth.boxes.file = resolve_path(truth.boxes.file, base)
    if truth.detector.model != "default":
        truth.detector.model = str(resolve_path(truth.detector.model, base))
    return truth
