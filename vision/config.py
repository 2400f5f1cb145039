"""The one YAML file: pydantic models, loading, and errors that name the key and the line.

Every field documents its default; unknown keys are errors so that a typo is never
silently ignored. Relative paths (file cameras, model card, data folder) resolve
against the folder of the config file, so a config means the same from any cwd.
"""

from __future__ import annotations

import os
import re
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from vision.config_defaults import NOT_SHARED, expand_defaults
from vision.config_loading import ENV_ALLOWED, MAX_CAMERAS, MAX_POLYGON_POINTS, MAX_ZONES, at_most
from vision.config_loading import ConfigError as ConfigError  # the loaders, imported from here by callers
from vision.config_loading import load_yaml as load_yaml
from vision.config_loading import parse_yaml as parse_yaml
from vision.dispatch.targets import IMPLICIT, MAX_TARGETS, Delivery, Location, TargetConfig, at_keys, http_url
from vision.rules import registry
from vision.scene.calibration import polygon_area
from vision.scene.motion import MotionGateConfig
from vision.scene.static_objects import StaticObjectsConfig
from vision.secrets import CameraUrl, SecretUrl
from vision.track.config import TrackerConfig

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


def _check_name(value: str) -> str:
    if not NAME.match(value):
        raise ValueError(f"{value!r} is not a valid name: use letters, digits, '_' and '-' (at most 64)")
    return value


Name = Annotated[str, AfterValidator(_check_name)]


def _check_polygon(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(points) < 3:
        raise ValueError("needs at least 3 points")
    for i, (x, y) in enumerate(points):
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(f"point {i} ({x}, {y}) is outside the image: use normalized 0..1 coordinates")
    if polygon_area(np.asarray(points, np.float64)) < 1e-6:
        raise ValueError("has no area: its points are on one line")
    return points


Polygon = Annotated[
    list[tuple[float, float]],
    at_most(MAX_POLYGON_POINTS, "points", "MAX_POLYGON_POINTS"),
    AfterValidator(_check_polygon),
]

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _parse_duration(value: object) -> object:
    """Seconds as a number, or a string such as "90s", "15m", "24h", "30d" (retention reads better so)."""
    if not isinstance(value, str):
        return value
    match = DURATION.match(value)
    if match is None:
        raise ValueError(
            f"{value!r} is not a duration: use seconds (86400) or a number and s, m, h or d (24h)"
        )
    return float(match[1]) * UNIT_S[match[2]]


Duration = Annotated[float, BeforeValidator(_parse_duration), Field(gt=0)]


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


class DecodeConfig(StrictModel):
    """How a camera's video is decoded; cheaper decoding means more cameras per core."""

    threads: int | None = Field(
        None,
        ge=0,
        le=16,
        description="Decoder threads; 0 lets FFmpeg choose (one per core: less latency on an idle "
        "machine, up to a quarter more CPU in all); 1 is the cheapest. Unset: 1 when the process "
        "reads more cameras than it has cores (they use every core between them anyway), else 0.",
    )
    width: int | None = Field(
        None,
        ge=64,
        le=7680,
        description="Scale decoded frames to this width (height keeps the aspect ratio); None keeps "
        "the stream's size. Scaling happens in the colour conversion, done only for frames due at "
        "detect_fps, and costs about what converting at full size does: it saves the detector's "
        "resize and memory (a 1080p frame is 6 MB), not decoding, which is most of the cost.",
    )
    keyframes_only: bool = Field(
        False,
        description="Decode keyframes only: 7-9x less CPU (benchmarks/ingest.md), for cameras whose "
        "events are static (litter, parked bicycles); the frame rate drops to the keyframe rate "
        "(often one every 1-4 s), too slow for crowds or people passing.",
    )


KEYFRAMES_READ_INTERVAL = 0.2  # seconds: a keyframes_only reader's rest between bursts, by default
KEYFRAME_REST = 1.0  # seconds: the longest rest of a keyframes_only reader waiting for its next keyframe


class StreamConfig(StrictModel):
    """How a live stream (rtsp://, http(s)://) is opened, watched and reopened."""

    transport: Literal["tcp", "udp"] = Field(
        "tcp",
        description="RTSP transport: tcp (interleaved in the RTSP connection; passes firewalls and "
        "NAT, never loses a packet) or udp (lower latency; a lossy network tears pictures).",
    )
    open_timeout: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Seconds to connect and read the stream's headers before giving up. FFmpeg's read "
        "timeout (RTSP's socket timeout, HTTP's rw_timeout) bounds the open's reads too, so it is the "
        "larger of this and stall_timeout: a server slower to answer than stall_timeout still opens.",
    )
    stall_timeout: float = Field(
        5.0,
        gt=0,
        le=300,
        description="Watchdog: no new frame for this many seconds makes a live camera stalled (its "
        "zones become unknown); the stream is closed and reopened once its read gives up (FFmpeg's "
        "read timeout, the larger of this and open_timeout). "
        "Packets skipped on purpose (keyframes_only) count as signs of life, so sparse keyframes do "
        "not stall a camera. Longer than an HLS camera's segments, which come a segment at a time.",
    )
    reconnect_initial: float = Field(
        1.0, gt=0, le=3600, description="Seconds before the first retry of a stream that failed or stalled."
    )
    reconnect_max: float = Field(
        60.0,
        gt=0,
        le=86400,
        description="Cap of the reconnect delay, which doubles after each failed attempt (with jitter "
        "of up to half, so cameras behind one broken switch do not retry in lockstep).",
    )
    max_lag: float = Field(
        1.0,
        gt=0,
        le=60,
        description="When reading falls this many seconds behind the live edge (a reader short of CPU), "
        "only keyframes are decoded until it is back within half of it, and a keyframe itself this "
        "late is dropped unseen (keyframes_only cameras too): the lag stays bounded and the frame rate "
        "falls instead. The skipped frames are counted (frames_skipped). Not for HLS, whose "
        "segments come whole: a segment's first frames are a segment old when they come.",
    )
    snapshot_timeout: float = Field(
        3.0,
        gt=0,
        le=60,
        description="With detect_url: seconds a transition waits for a frame of the main stream (url) "
        "for its pictures (opening it and decoding its first keyframe); then the detection frame is "
        "used instead.",
    )
    read_interval: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Seconds a live reader rests once it has read all its stream sent (a read had to "
        "wait and the packet is at the live edge), so that what comes meanwhile is read in one burst, "
        "not one wake-up per packet: a static camera's 640x360 substream costs 14-33% less CPU at "
        "0.2 s (benchmarks/readers.md), for at most this much more lag. 0: read each packet as it comes. "
        f"Unset: {KEYFRAMES_READ_INTERVAL:g} for keyframes_only cameras (a frame per GOP: "
        f"{KEYFRAMES_READ_INTERVAL:g} s later is nothing; at most a quarter of stall_timeout), else 0. "
        "Less than half of stall_timeout. A keyframes_only reader that has read two keyframes rests "
        f"instead until the next one is due (their GOP later), at most {KEYFRAME_REST:g} s, half of "
        "max_lag and a quarter of stall_timeout at a time, and reads it as it comes: a few wake-ups a "
        "GOP, not one every read_interval (benchmarks/readers_keyrest.md).",
    )

    @model_validator(mode="after")
    def _backoff(self) -> StreamConfig:
        if self.reconnect_max < self.reconnect_initial:
            raise ValueError(
                f"reconnect_max ({self.reconnect_max}) must be at least reconnect_initial "
                f"({self.reconnect_initial})"
            )
        if self.read_interval is not None and self.read_interval >= self.stall_timeout / 2:
            raise ValueError(
                f"read_interval ({self.read_interval:g}) must be less than half of stall_timeout "
                f"({self.stall_timeout:g}): a reader resting longer looks stalled"
            )
        return self

    def rest(self, keyframes_only: bool) -> float:
        """Seconds a reader rests between bursts of reading (``read_interval`` or its default)."""
        if self.read_interval is not None:
            return self.read_interval
        return min(KEYFRAMES_READ_INTERVAL, self.stall_timeout / 4) if keyframes_only else 0.0


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


class DetectorConfig(StrictModel):
    """The one detector shared by all cameras."""

    model: str = Field(
        "default",
        description="Path to a model card (YAML) or 'default' for the embedded SSD MobileNet v2 COCO.",
    )
    backend: Literal["onnx", "openvino", "ultralytics"] = Field(
        "onnx",
        description="Inference engine: onnx (ONNX Runtime, any card), openvino (OpenVINO on the CPU, any "
        "ONNX card; needs the `openvino` extra: bfloat16 on CPUs with AMX, see precision) or ultralytics "
        "(Ultralytics/PyTorch, for YOLO .pt or .onnx files; needs the `yolo` extra).",
    )
    precision: Literal["auto", "f32", "bf16"] = Field(
        "auto",
        description="openvino: the arithmetic the CPU runs the model in. auto: OpenVINO's choice (bf16 on "
        "CPUs with AMX or AVX-512 BF16: the float YOLOv8n in 0.35 of ONNX Runtime's CPU time there, every "
        "box of ONNX Runtime's found, benchmarks/openvino_infer.md; else f32); f32: the file's own float32 "
        "(ONNX Runtime's boxes).",
    )
    device: Literal["cpu", "cuda", "tensorrt"] = Field(
        "cpu",
        description="onnx: ONNX Runtime execution provider (cuda/tensorrt need onnxruntime-gpu); "
        "ultralytics: cpu or cuda.",
    )
    threads: int = Field(
        0,
        ge=0,
        le=256,
        description="onnx: ONNX Runtime's intra-op threads per model call; 0: the cores shared out between "
        "the calls run at once (parallel), or every core for one call.",
    )
    parallel: int | None = Field(
        None,
        ge=1,
        le=64,
        description="onnx: model calls run at once, each on its own inference thread (every camera's frames "
        "still in order). Unset: one per core on the CPU but at most one per camera, each call on one "
        "thread (none to sync within a call: more frames per core when the cores also decode video, "
        "benchmarks/inference_threads.md); 1 on a GPU. ultralytics: 1 only.",
    )
    spin: bool = Field(
        False,
        description="onnx on the CPU: let ONNX Runtime's threads spin while they wait for work (its own "
        "default). Faster for one stream on an otherwise idle machine, but the spinning takes the cores "
        "that many cameras' readers and analysis need.",
    )
    min_score: float = Field(0.4, ge=0.0, le=1.0, description="Detections below this score are dropped.")
    iou: float = Field(
        0.7,
        gt=0.0,
        le=1.0,
        description="YOLO NMS: a box overlapping a better one of its class by more is dropped.",
    )
    max_det: int = Field(300, ge=1, le=10000, description="At most this many detections per frame.")
    max_batch: int = Field(
        32,
        ge=1,
        le=1024,
        description="onnx: most frames (or tiles) in one model call; a round of more runs in calls of this "
        "many (ONNX Runtime takes about 5 MB more per 300x300 frame of a batch, and per-frame time stops "
        "falling long before: benchmarks/ssd_batch.md). A model with a fixed batch size takes its own.",
    )
    classes: list[str] | None = Field(
        None, description="Keep only these labels (e.g. [person, bicycle]); None keeps all."
    )
    batch_wait: float = Field(
        0.0,
        ge=0.0,
        le=5.0,
        description="Seconds: while every camera is read in real time, an inference thread gathers at most "
        "this often, so the frames that fall due in between share one model call and are analysed back to "
        "back (warm caches: less CPU per frame, benchmarks/capacity_batch_wait.md) at the cost of up to "
        "this much lag. 0: each frame is gathered as soon as it is due. Files read as fast as possible "
        "never wait.",
    )

    @model_validator(mode="after")
    def _one_ultralytics_call(self) -> DetectorConfig:
        if self.backend == "ultralytics" and (self.parallel or 1) > 1:
            raise ValueError(
                f"parallel is {self.parallel}, but the ultralytics backend takes one call at a time: "
                "remove detector.parallel or use backend: onnx"
            )
        if self.backend == "openvino" and self.device != "cpu":
            raise ValueError(f"device is {self.device}, but the openvino backend runs on the cpu here")
        if self.backend != "openvino" and self.precision != "auto":
            raise ValueError(
                f"precision is {self.precision}, but only the openvino backend takes a precision"
            )
        return self


class HealthConfig(StrictModel):
    """A camera whose analysis fails: how it is restarted, and when /healthz calls that a failure."""

    restart_initial: float = Field(
        1.0,
        gt=0,
        description="Seconds (stream time) a camera rests after its analysis failed, its frames dropped, "
        "before a fresh analysis starts; doubles with each failure in a row (jittered).",
    )
    restart_max: float = Field(
        60.0,
        gt=0,
        description="Longest rest, seconds (before jitter). A camera that works this long without "
        "failing starts over at restart_initial.",
    )
    error_grace: float = Field(
        60.0,
        gt=0,
        description="/healthz answers 503 once a camera has been failing (in error, restarts included) "
        "for longer than this many seconds (wall time).",
    )


class EventsConfig(StrictModel):
    """Timers of the event lifecycle, in seconds of stream time."""

    close_after: float = Field(
        10.0, ge=0, description="A condition false for this long (healthy frames only) closes the event."
    )
    update_interval: float = Field(
        30.0, ge=0, description="At most one update per event this often, sent when its count changed."
    )
    reopen_window: float = Field(
        60.0,
        ge=0,
        description="A condition back within this long after a close reopens the same event and "
        "ticket; later, it is a new event. 0 never reopens.",
    )
    expire_after: float = Field(
        259200.0,
        ge=0,
        description="An open event of which nothing was seen (camera dark, subject hidden) for this long "
        "closes with reason `expired` (default 3 days); 0 never.",
    )
    verify_within: float = Field(
        300.0,
        gt=0,
        description="After the ticketing side reports a ticket `handled`, the camera must see the condition "
        "gone within this many seconds of watching: then it closes `verified_fixed`; if it still sees "
        "it, the ticket goes back (a `reopen` with verification `failed`).",
    )
    restart_grace: float = Field(
        15.0,
        ge=0,
        description="After a restart, an event restored from the store cannot be seen gone during this many "
        "seconds of watching: the tracker and the rules need that long to find its objects again.",
    )


class DispatchConfig(Delivery):
    """Where tickets go: from the durable outbox to each target, retried until delivered.

    ``webhook_url`` (with ``secret`` and the delivery settings here) is one implicit target
    named ``webhook`` that gets every event; ``targets`` adds named targets with routes.
    """

    webhook_url: Annotated[str | None, ENV_ALLOWED] = Field(
        None,
        description="Ticketing webhook (http or https) for every event, as a target named `webhook`; None: "
        "none. May hold ${ENV_VAR} references.",
    )
    secret: Annotated[SecretStr | None, ENV_ALLOWED] = Field(
        None,
        validate_default=True,
        description="HMAC-SHA256 key for signatures, required with webhook_url; use ${ENV_VAR}.",
    )
    targets: Annotated[dict[Name, TargetConfig], at_most(MAX_TARGETS, "targets", "MAX_TARGETS")] = Field(
        default_factory=dict,
        description=f"Named targets (at most {MAX_TARGETS}), each with its kind, route and own outbox order; "
        "see below.",
    )
    public_url: str | None = Field(
        None,
        description="Where ticketing systems reach this service's API (e.g. https://vision.example.org): "
        "Open311 requests link their annotated snapshot under it (media_url); None: no media_url.",
    )

    @field_validator("webhook_url", "public_url")
    @classmethod
    def _http(cls, url: str | None) -> str | None:
        return http_url(url)

    @field_validator("secret")
    @classmethod
    def _signed(cls, secret: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("webhook_url") and (secret is None or not secret.get_secret_value()):
            raise ValueError("required when webhook_url is set: every request is signed with it")
        return secret

    @model_validator(mode="after")
    def _one_webhook(self) -> DispatchConfig:
        if self.webhook_url and IMPLICIT in self.targets:
            why = "the name is taken by webhook_url; rename the target or move webhook_url into it"
            raise at_keys("DispatchConfig", [(("targets", IMPLICIT), why)])
        return self

    def all_targets(self) -> dict[str, TargetConfig]:
        """Every target by name, webhook_url as the one named ``webhook`` (its delivery settings are the
        section's own)."""
        targets = dict(self.targets)
        if self.webhook_url and self.secret is not None:
            delivery = {name: getattr(self, name) for name in Delivery.model_fields}
            implicit = TargetConfig(kind="webhook", url=self.webhook_url, secret=self.secret, **delivery)
            targets = {IMPLICIT: implicit, **targets}
        return targets


class RetentionConfig(StrictModel):
    """How long things are kept, in wall-clock time (this is about disk); null keeps them forever.

    Open events are kept forever, with everything of theirs, and so is every message
    not yet delivered (pending or dead) with its event and transition.
    """

    detections: Duration | None = Field(86400.0, description="Detection rows (one per box per frame).")
    snapshots: Duration | None = Field(
        30 * 86400.0,
        description="Snapshot pictures (data_dir/snapshots/<event id>/), each counted from when it was "
        "taken; an event not resolved keeps those of its latest transition.",
    )
    delivered_outbox: Duration | None = Field(
        30 * 86400.0,
        description="Delivered webhook messages (an event's last message stays while the event is kept).",
    )
    closed_events: Duration | None = Field(
        30 * 86400.0,
        description="Resolved events with their transitions, messages and remote ticket id, counted "
        "from their last transition. Must be longer than events.reopen_window.",
    )
    interval: Duration = Field(60.0, description="Seconds between two pruning passes.")


class ClipsConfig(StrictModel):
    """Short videos (H.264 MP4) around each event's open, reopen and close, kept beside its snapshots.

    Each camera keeps its last ``before`` seconds of frames, downscaled, in memory; encoding
    happens only at transitions, off the pipeline's thread.
    """

    enabled: bool = Field(True, description="Write clips; false: no ring of frames, no clips.")
    before: float = Field(3.0, ge=0, le=30, description="Seconds of frames before the transition.")
    after: float = Field(3.0, ge=0, le=30, description="Seconds of frames after it (stream time).")
    fps: float = Field(
        5.0, gt=0, le=15, description="At most this many frames a second (at most the camera's detect_fps)."
    )
    width: int = Field(320, ge=64, le=1280, description="Pixels wide (height in proportion).")


class StorageConfig(StrictModel):
    """Where events, detections and snapshots are kept, and for how long."""

    data_dir: Annotated[Path, ENV_ALLOWED] = Field(
        Path("data"),
        description="Folder for the SQLite store (relative to the config file); may hold ${ENV_VAR} "
        "references.",
    )
    url: Annotated[CameraUrl | None, ENV_ALLOWED] = Field(
        None,
        description="A PostgreSQL server to keep the store in instead of SQLite, as "
        "postgresql://user@host:port/database; the password from the environment (PGPASSWORD, or a "
        "${ENV_VAR} reference in the URL, percent-encoded); never printed. Snapshots stay in data_dir. "
        "None: SQLite in data_dir.",
    )
    retention: RetentionConfig = Field(
        default_factory=RetentionConfig,
        description='Durations in seconds or as "15m", "24h", "30d".',
    )
    max_bytes: ByteSize | None = Field(
        None,
        description='Cap on the SQLite store (database pages in use and snapshots), e.g. "20GB"; when over, '
        "the oldest detections, then snapshots of closed events, then closed events go first. The WAL (cut "
        "back to 16 MB at each checkpoint) comes on top. None: no cap. Not with url: size PostgreSQL on the "
        "server.",
    )
    clips: ClipsConfig = Field(
        default_factory=ClipsConfig,
        description="Clips around transitions, kept and pruned like snapshots (retention.snapshots).",
    )
    detection_interval: float | None = Field(
        1.0,
        ge=0,
        description="Seconds of stream time between two frames of a camera whose detections (a row per box) "
        "are stored, besides every frame with a transition. The rows feed `dataset mine`'s uncertain frames "
        "and offline analysis; events carry their own boxes and need none. 0 stores every analysed frame, "
        "None no detections at all.",
    )
    checkpoint_interval: float = Field(
        10.0,
        gt=0,
        description="Seconds of stream time between snapshots of each camera's state (its rules' memory, "
        "timers, background model) in the store, besides the one committed with every transition: what a "
        "restart loses at most of timers under way.",
    )

    @field_validator("url")
    @classmethod
    def _postgres(cls, url: SecretUrl | None) -> SecretUrl | None:
        if url is not None and not re.match(r"^postgres(ql)?://[^/\s]*", url.get_secret_value()):
            raise ValueError("must be a postgresql:// URL (without it, the store is SQLite in data_dir)")
        return url

    @model_validator(mode="after")
    def _cap_on_sqlite(self) -> StorageConfig:
        if self.url is not None and self.max_bytes is not None:
            raise ValueError(
                "max_bytes caps the SQLite file: with url, size PostgreSQL on the server and use retention"
            )
        return self


class ClusterConfig(StrictModel):
    """Cameras sharded over a Ray cluster (docs/scaling.md); without it, one process runs every camera."""

    address: str = Field(
        "auto",
        description="The Ray cluster to join: auto (the one started on this machine with `ray start`), "
        "host:port of its head, or ray://host:port (Ray Client).",
    )
    namespace: str = Field(
        "street-vision",
        description="Ray namespace of the shard and replica actors; `cluster status` finds them there.",
    )
    shards: int = Field(2, ge=1, le=4096, description="Camera shards (Ray actors), each with its cameras.")
    virtual_nodes: int = Field(
        64,
        ge=1,
        le=4096,
        description="Points per shard on the hash ring that assigns cameras to shards: more spread the "
        "cameras more evenly.",
    )
    shard_cpus: float = Field(
        1.0, ge=0, le=1024, description="CPUs Ray reserves for each shard (decoding, tracking, rules)."
    )
    max_restarts: int = Field(
        -1, ge=-1, description="Times Ray restarts a shard or replica that died (-1: without limit)."
    )
    detector: Literal["local", "shared"] = Field(
        "local",
        description="local: each shard runs its own detector; shared: shards send frames to detector "
        "replicas that batch them.",
    )
    min_replicas: int = Field(1, ge=1, le=1024, description="shared: detector replicas started at once.")
    max_replicas: int = Field(
        1,
        ge=1,
        le=1024,
        description="shared: most replicas; one more is started while the replicas are all busy.",
    )
    scale_down_after: float = Field(
        60.0,
        ge=0,
        le=86400,
        description="shared: seconds the replicas must stay mostly idle (one fewer would have been at most "
        "50% busy) before one is stopped, never below min_replicas.",
    )
    replica_cpus: float = Field(1.0, ge=0, le=1024, description="shared: CPUs Ray reserves per replica.")
    replica_gpus: float | None = Field(
        None,
        ge=0,
        le=64,
        description="shared: GPUs per replica; null: 1 when detector.device is cuda or tensorrt, else 0.",
    )
    batch_size: int = Field(16, ge=1, le=1024, description="shared: most frames in one replica call.")
    batch_wait: float = Field(
        0.01,
        ge=0,
        le=1,
        description="shared: seconds a replica waits for more frames before running a batch that is "
        "not full.",
    )

    @model_validator(mode="after")
    def _replica_range(self) -> ClusterConfig:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) must be at least min_replicas ({self.min_replicas})"
            )
        return self


class Config(StrictModel):
    """The whole file."""

    cameras: Annotated[dict[Name, CameraConfig], at_most(MAX_CAMERAS, "cameras", "MAX_CAMERAS")] = Field(
        description=f"Cameras by id (at most {MAX_CAMERAS})."
    )
    camera_defaults: CameraDefaults = Field(  # type: ignore[valid-type]
        default_factory=CameraDefaults,
        description="Settings every camera takes unless it sets them itself (any camera key but "
        "url, detect_url, zones and group; mappings such as stream merge key by key). See "
        "[Shared camera settings](#shared-camera-settings).",
    )
    groups: dict[Name, CameraDefaults] = Field(  # type: ignore[valid-type]
        default_factory=dict,
        description="Settings by group name, taken by the cameras with that `group` (over camera_defaults, "
        "under the camera's own).",
    )
    detector: DetectorConfig = Field(default_factory=DetectorConfig, description="The shared detector.")
    events: EventsConfig = Field(default_factory=EventsConfig, description="Event lifecycle timers.")
    dispatch: DispatchConfig = Field(default_factory=DispatchConfig, description="Where tickets go.")
    storage: StorageConfig = Field(default_factory=StorageConfig, description="Where data is kept.")
    health: HealthConfig = Field(default_factory=HealthConfig, description="Restarting failed cameras.")
    cluster: ClusterConfig | None = Field(
        None,
        description="Run the cameras as shards on a Ray cluster (needs storage.url); null: one process.",
    )

    @model_validator(mode="after")
    def _some_camera(self) -> Config:
        if not self.cameras:
            raise ValueError("no cameras: add at least one under 'cameras'")
        return self

    @model_validator(mode="after")
    def _cluster_on_postgres(self) -> Config:
        """Shards on several machines share one store: SQLite is a file of one machine."""
        if self.cluster is not None and self.storage.url is None:
            raise ValueError("cluster: needs storage.url (PostgreSQL): the shards share one store")
        return self

    @model_validator(mode="after")
    def _targets_fit_cameras(self) -> Config:
        """Route groups name real groups; an Open311 target can place every zone it may get."""
        problems: list[tuple[tuple[str, ...], str]] = []
        groups = {c.group for c in self.cameras.values() if c.group is not None}
        for name, target in self.dispatch.targets.items():
            unknown = sorted(set(target.route.groups or ()) - groups)
            if unknown:
                where = ("dispatch", "targets", name, "route", "groups")
                problems.append((where, f"no camera has group {', '.join(unknown)}"))
            if target.kind != "open311":
                continue
            for camera_id, camera in self.cameras.items():
                if target.route.groups is not None and camera.group not in target.route.groups:
                    continue
                unplaced = [
                    z for z, zone in camera.zones.items() if (zone.location or camera.location) is None
                ]
                if unplaced:
                    why = (
                        f"location: needed by dispatch.targets.{name} (open311 places every request): "
                        f"zone(s) {', '.join(unplaced)} have none; set the camera's or each zone's location"
                    )
                    problems.append((("cameras", camera_id), why))
        if problems:
            raise at_keys("Config", problems)
        return self

    @model_validator(mode="after")
    def _reopen_before_pruning(self) -> Config:
        """A closed event pruned inside its reopen window would come back with its message numbers reused."""
        kept = self.storage.retention.closed_events
        if kept is not None and kept <= self.events.reopen_window:
            raise ValueError(
                f"storage.retention.closed_events ({kept:g} s) must be longer than events.reopen_window "
                f"({self.events.reopen_window:g} s): a closed event may still reopen until then"
            )
        return self


SHARED_KEYS = frozenset(CameraConfig.model_fields) - NOT_SHARED
EXPAND = partial(expand_defaults, allowed=SHARED_KEYS)


def parse_config(text: str, source: str = "<config>", env: dict[str, str] | None = None) -> Config:
    """Parse YAML text into a :class:`Config`, or raise :class:`ConfigError` listing every problem."""
    return parse_yaml(text, Config, source, env, EXPAND)


def load_config(path: str | Path, env: dict[str, str] | None = None) -> Config:
    """Read and validate a config file; relative paths in it are resolved against its folder."""
    path = Path(path)
    return resolve_paths(load_yaml(path, Config, "config file", env, EXPAND), path.resolve().parent)


def resolve_path(value: str | Path, base: Path) -> Path:
    """A relative path means relative to the config file's folder."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else Path(os.path.normpath(base / p))


def resolve_paths(config: Config, base: Path) -> Config:
    """Anchor file cameras, the model card and the data folder at ``base``."""
    for camera in config.cameras.values():
        if camera.url.is_file:
            raw = camera.url.get_secret_value().removeprefix("file://")
            camera.url = SecretUrl(str(resolve_path(raw, base)))
        if camera.detect_url is not None and camera.detect_url.is_file:
            raw = camera.detect_url.get_secret_value().removeprefix("file://")
            camera.detect_url = SecretUrl(str(resolve_path(raw, base)))
    if config.detector.model != "default":
        config.detector.model = str(resolve_path(config.detector.model, base))
    config.storage.data_dir = resolve_path(config.storage.data_dir, base)
    return config
