"""One camera: its streams, zones (each with the rules that watch it), masks, calibration and the
settings of each stage that runs per camera; and the section that shares them between cameras.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import ConfigDict, Field, create_model, model_validator

from vision.config.base import Name, Polygon, StrictModel
from vision.config.defaults import NOT_SHARED
from vision.config.ingest import DecodeConfig, StreamConfig
from vision.config.loading import MAX_ZONES, at_most
from vision.config.regions import RegionsConfig
from vision.dispatch.targets import Location
from vision.geometry import polygon_area
from vision.rules import registry
from vision.scene.motion import MotionGateConfig
from vision.scene.static_objects import StaticObjectsConfig
from vision.secrets import ENV_ALLOWED, CameraUrl, SecretUrl
from vision.track.config import TrackerConfig


class CalibrationConfig(StrictModel):
    """Four image points and where they lie on the ground, in metres."""

    image: list[tuple[float, float]] = Field(
        description="Four points in normalized image coordinates (0..1), e.g. the corners of a marked area."
    )
    world: list[tuple[float, float]] = Field(
        description="The same four points on the ground plane, in metres (any origin and orientation)."
    )

    @model_validator(mode="after")
    def _four_good_points(self) -> CalibrationConfig:
        if len(self.image) != 4 or len(self.world) != 4:
            raise ValueError("needs exactly 4 image points and 4 world points")
        for name, pts in (("image", self.image), ("world", self.world)):
            arr = np.asarray(pts, np.float64)
            for i in range(4):  # any three collinear points make the homography degenerate
                tri = np.delete(arr, i, axis=0)
                if polygon_area(tri) < 1e-9 * max(1.0, float(np.ptp(arr)) ** 2):
                    raise ValueError(f"{name} points: three of them lie on one line")
        return self


RulesConfig = create_model(  # one optional section per registered rule: `rules: {crowd: {...}}`
    "RulesConfig",
    __config__=ConfigDict(extra="forbid"),
    **{name: (rule.Config | None, None) for name, rule in registry().items()},  # type: ignore[call-overload]
)


class ZoneConfig(StrictModel):
    """An area of one camera's image, with the rules that watch it."""

    polygon: Polygon = Field(
        description="Corners as [x, y] in normalized image coordinates (0..1, origin top-left), "
        "so a zone survives a change of resolution."
    )
    anchor: Literal["bottom_center", "center"] = Field(
        "bottom_center",
        description="Point of each box tested for membership: bottom_center is where a person "
        "or a bicycle touches the ground.",
    )
    rules: RulesConfig = Field(default_factory=RulesConfig, description="Rules that watch this zone.")  # type: ignore[valid-type]
    location: Location | None = Field(
        None, description="Where the zone is, {lat, long}, for Open311 requests; null: the camera's."
    )


class HeatmapConfig(StrictModel):
    """Where people stood, decaying over stream time."""

    classes: list[str] = Field(default_factory=lambda: ["person"], description="Labels that heat the map.")
    half_life: float = Field(300.0, gt=0, description="Seconds after which old heat counts half.")


class CameraConfig(StrictModel):
    """One video source and its zones."""

    url: Annotated[CameraUrl, ENV_ALLOWED] = Field(
        description="rtsp://, http(s):// or a file path; may hold ${ENV_VAR} references. "
        "Passwords are never printed. With detect_url, the main stream: read only for the pictures of "
        "a transition."
    )
    detect_url: Annotated[CameraUrl | None, ENV_ALLOWED] = Field(
        None,
        description="The camera's low-resolution substream, read for detection instead of url (as IP "
        "cameras offer it and Frigate users set it up): decoding it costs a fraction of the main "
        "stream. A transition's pictures are then taken from url, its boxes scaled to that size, "
        "fetched off the pipeline's thread within stream.snapshot_timeout; when the main stream gives "
        "no frame in time the detection frame is used and the payload's snapshots say so. Same kind "
        "as url (both streams or both files); ${ENV_VAR} references allowed; never printed.",
    )
    enabled: bool = Field(True, description="A disabled camera is validated but not read.")
    group: Name | None = Field(
        None,
        description="The camera's group (a district, a team): it takes the settings of `groups.<group>` "
        "(under its own), and dispatch routes can select it. A group with no entry under `groups` only "
        "names the cameras.",
    )
    location: Location | None = Field(
        None, description="Where the camera looks, {lat, long}: Open311 requests of its zones without one."
    )
    detect_fps: float = Field(5.0, gt=0, le=60, description="Frames per second sent to the detector.")
    decode: DecodeConfig = Field(default_factory=DecodeConfig, description="Decoder settings.")
    tracker: TrackerConfig = Field(default_factory=TrackerConfig, description="Object tracking settings.")
    realtime: bool = Field(
        False,
        description="Files only: play at the speed of the stream clock, like a live camera (the newest "
        "frame at detect_fps; frames the pipeline is too slow for are dropped). False reads a file as "
        "fast as possible and drops nothing (evaluation). Live URLs are always read in real time.",
    )
    loop: bool = Field(
        False,
        description="Files with realtime only: start again at the end, the clock running on, so a clip "
        "stands in for a camera that never ends (demos, soak tests).",
    )
    stream: StreamConfig = Field(default_factory=StreamConfig, description="Live stream connection.")
    zones: Annotated[dict[Name, ZoneConfig], at_most(MAX_ZONES, "zones", "MAX_ZONES")] = Field(
        default_factory=dict, description=f"Zones by name (at most {MAX_ZONES})."
    )
    masks: list[Polygon] = Field(
        default_factory=list,
        description="Areas to ignore (normalized polygons): detections anchored there are dropped, "
        "and their pixels never count as litter.",
    )
    calibration: CalibrationConfig | None = Field(
        None, description="Ground-plane calibration: zone areas in m² and crowd density in people/m²."
    )
    heatmap: HeatmapConfig = Field(default_factory=HeatmapConfig, description="People heatmap.")
    static_objects: StaticObjectsConfig = Field(
        default_factory=StaticObjectsConfig, description="Dual-background model for objects left behind."
    )
    motion_gate: MotionGateConfig = Field(
        default_factory=MotionGateConfig,
        description="Skip the detector on frames without motion in the zones.",
    )

    @model_validator(mode="after")
    def _rules_fit_zones(self) -> CameraConfig:
        names = set(self.zones)
        problems = [
            f"zones.{zone_name}.rules.{rule_name}: {problem}"
            for zone_name, zone in self.zones.items()
            for rule_name in type(zone.rules).model_fields
            if (rule := getattr(zone.rules, rule_name)) is not None
            for problem in rule.problems(names)
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    detect_regions: RegionsConfig = Field(
        default_factory=RegionsConfig, description="Whole frame, crops around zones, or tiles."
    )

    @model_validator(mode="after")
    def _file_modes(self) -> CameraConfig:
        if self.detect_url is not None and self.detect_url.is_file != self.url.is_file:
            raise ValueError(
                "detect_url and url must be of one kind: both streams (rtsp://, http://) or both files"
            )
        if not self.url.is_file and (self.realtime or self.loop):
            raise ValueError(
                "realtime and loop are for files: live streams (rtsp://, http://) are always real time"
            )
        if self.loop and not self.realtime:
            raise ValueError("loop needs realtime: true (a file read as fast as possible ends)")
        return self

    @property
    def live(self) -> bool:
        """Read in real time (a stream, or a file with realtime), not as fast as possible."""
        return self.realtime or not self.url.is_file

    @property
    def source(self) -> SecretUrl:
        """The stream read for detection: the substream when there is one."""
        return self.detect_url or self.url


CameraDefaults = create_model(  # the keys are checked here, the values in each camera they apply to
    "CameraDefaults",
    __config__=ConfigDict(extra="forbid"),
    __doc__="Camera settings shared by many cameras: any camera key but "
    + ", ".join(sorted(NOT_SHARED))
    + "; mappings merge key by key under each camera's own.",
    **{name: (Any, None) for name in CameraConfig.model_fields if name not in NOT_SHARED},  # type: ignore[call-overload]
)
