"""Write docs/configuration.md from the config models, so the reference cannot drift from the code.

Usage: ``python docs/make_config_reference.py`` (a test checks the committed file is current).
"""

from __future__ import annotations

from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from vision.config import (
    CameraConfig,
    ClipsConfig,
    ClusterConfig,
    Config,
    DecodeConfig,
    RegionsConfig,
    RetentionConfig,
    StreamConfig,
    ZoneConfig,
)
from vision.dispatch.targets import Location, RouteConfig, TargetConfig
from vision.rules import registry
from vision.scene.motion import MotionGateConfig
from vision.scene.static_objects import StaticObjectsConfig
from vision.track import TrackerConfig

OUT = Path(__file__).resolve().parent / "configuration.md"

INTRO = """# Configuration reference

One YAML file configures everything; `street-vision check FILE` validates it and names
each problem by its key and line. Unknown keys are errors. `${ENV_VAR}` references are
allowed only in `cameras.<id>.url`, `cameras.<id>.detect_url`, `dispatch.webhook_url`,
`dispatch.secret`, `dispatch.targets.<id>.url`, `.secret` and `.api_key`, `storage.data_dir` and
`storage.url` (anywhere else, and with a missing variable, they are an error); passwords in camera
and store URLs, webhook secrets and Open311 api keys are never printed, logged or returned.
Relative paths are relative to the folder of the config file. Times are seconds of
*stream* time (frame timestamps). Limits on the file (size, nesting, aliases, cameras,
zones, polygon points) are in [security.md](security.md).

This file is generated from the code by `docs/make_config_reference.py`.
"""


SHARED = """
## Shared camera settings

Keys: `camera_defaults` and `groups.<name>`. What many cameras share is written once, so a
hundred cameras are a hundred short entries (`configs/many-cameras.yaml`):

```yaml
camera_defaults:            # every camera
  detect_fps: 2
  stream: {transport: udp, open_timeout: 5}
groups:
  night:                    # cameras with `group: night`
    detect_fps: 4
    stream: {stall_timeout: 20}
cameras:
  a: {url: "rtsp://cam-a/main"}                 # detect_fps 2, stream.stall_timeout 5 (built in)
  b: {url: "rtsp://cam-b/main", group: night}   # detect_fps 4, stream udp / 5 / 20
  c: {url: "rtsp://cam-c/main", group: night, stream: {open_timeout: 7}}
```

Any camera key may be shared except `url`, `detect_url`, `zones` and `group`, which are each
camera's own. A camera takes its own setting first, then its group's, then
`camera_defaults`', then the built-in default; mappings (`stream`, `decode`, `tracker`,
...) merge key by key at every depth, anything else (a number, a list such as `masks`) is
replaced whole. A `group` with no entry under `groups` takes nothing and only names its
cameras. Each camera is validated with its merged settings, and a bad value that came from
a shared setting is reported at the line it was written, with the cameras it reached:
`groups.night.detect_fps: Input should be less than or equal to 60 (line 6; applied to
cameras b, c)`. `street-vision check FILE` lists what `camera_defaults` and each group set and
which cameras are in each group; `check FILE --show CAMERA` prints that camera's effective
settings, everything merged (its password hidden).
"""


LIVE = """
What decoding costs, per second of 25 fps H.264 video on one core of the (shared) reference
machine (`benchmarks/ingest.md`): decoding every frame is most of it, about 40-50 ms at 720p
and 70-100 ms at 1080p, whatever the detect fps; converting the frames due at detect_fps to
BGR adds a few ms; `keyframes_only` cuts the total 7-9 times. One core keeps about 20 such
720p cameras or 9 at 1080p live with every frame decoded (16 and 6 while other work loaded
the machine).

A live camera (a stream, or a file with `realtime`) is always in one of these states:

| state | meaning | its zones |
|---|---|---|
| `connecting` | opening the stream; no frame yet since start | unknown |
| `live` | frames arrive | seen |
| `stalled` | no frame for `stall_timeout` seconds; the stream is closed and reopened | unknown |
| `offline` | opening or reading failed; retried with backoff | unknown |
| `ended` | a file played to its end (or failed for good) | unknown |

While a camera is not `live`, its rules report UNKNOWN: event timers pause, and an open
event never closes because its camera went dark. After a failure the stream is reopened
after `reconnect_initial` seconds, doubling after each failed attempt up to
`reconnect_max`, each delay shortened by a random part of up to half; a stream that
delivered frames starts again at `reconnect_initial`. A reader that falls `max_lag`
seconds behind the live edge (short of CPU, it reads its socket late and the stream waits in
buffers) decodes only keyframes until it is back within half of it, and drops unseen the
keyframes that are themselves more than `max_lag` late; a keyframes-only camera drops those
too. So the lag stays bounded and the frame rate falls instead (`frames_skipped` counts them;
`tests/test_ingest_live.py` stops a reading process 3 s). A stream's clock starts at 0 with its
first frame and runs on through reconnects by the wall time that passed. Health (state, last
frame time, fps in and out, frames dropped and skipped, reconnects, last error without
passwords) is printed as `health` lines by `street-vision run --jsonl`.
"""


MOTION = """
With the gate on (the default), a camera's frame goes to the detector only when something
changed in its zones (the whole frame for a camera without zones) since its last detected
frame, or `max_skip` seconds after it. The change is read first from the codec's own motion
vectors (P and B frames of H.264 and MPEG-4, as in the suites' videos: no pixel looked at)
and, where they say something moved or there are none (keyframes, `decode.keyframes_only`,
MJPEG), from the pixels: a small grey picture that the camera's reader builds as it hands the
frame over, from the decoder's luma plane (already grey), so the inference thread only compares
two small pictures; on the suites it holds the same frames as a picture of the BGR frame, but one
frame pair of vtest swapped, with the same tickets (`benchmarks/gate_picture.md`). A frame the
gate holds is still analysed, with the last detected frame's boxes taken as its own, as if the
detector had found them again: it carries that frame's verdict, so what was there stays there
(its track keeps gaining boxes and rest time) and what was gone stays gone, and the rules'
timers of presence and absence run on over it as over frames detected alike; the litter model
still looks at the real picture on its own cadence. `max_skip` bounds how long a verdict is
carried: unset, it is 1 s, or 2.25 detection intervals where that is longer, so a camera at
1 detection a second or fewer may hold up to two frames in a row (a keyframes-only camera at
0.5/s, keyframes 2 s apart: 4.5 s). On both evaluation suites the gate gives the same tickets
as without it, with fewer frames detected where zones are still, at their own rates (5/s) and
at 0.5 detections/s (`benchmarks/motion_gate_keyframes.md`; its cost per frame:
`benchmarks/motion_gate.md`). The run's summary and the evaluation results count a
camera's held frames as `frames_held` (the summary's `health.frames_skipped` is another
count: frames its reader did not decode to catch up with the live edge).
"""


RETENTION = """
A pruner thread of `run` and `serve` applies these every `interval` seconds (and
`street-vision store prune CONFIG` once, printing what it removed), in write
transactions of at most 2,000 rows with a pause at least as long after each, so the
pipeline's writes wait for one small batch at most (`benchmarks/retention.md`). Ages are
wall-clock. Never pruned: an event that is not resolved, with its transitions and the
pictures of its latest transition; any message not yet delivered (pending or dead),
with its event and transitions; each kept event's last message (the next one is
numbered from it). Pruning a closed event removes its rows from every table keyed by
event id (transitions, outbox, remote ticket ids). Stores created by this version hand
freed pages back to the file system (SQLite incremental vacuum), so the files shrink; an
older store reuses them (it stops growing) until `street-vision store prune CONFIG
--vacuum`, with the service stopped, rewrites it. Stores created by this version also have 8 KiB
pages (an older store keeps its 4 KiB), and no store zeroes the pages it frees (SQLite's
`secure_delete=FAST`: rows deleted within a page still are): each checkpoint rewrites its camera's
arrays (~320 KB at 640x360) and frees the old ones, and both cut the store's SQL at 100 capacity
cameras by about a third (`benchmarks/store_pages.md`, loaded). `/metrics` reports
`street_vision_store_bytes{part="database"|"snapshots"}`, `street_vision_store_pruned_total{what}`
and the pruner's transactions and the seconds it held the write lock.
"""


TARGETS = """
`dispatch.webhook_url` is the target named `webhook`, with the dispatch section's own
timeout and backoff, and gets every event. Each target has its own outbox order, retries
and dead letter; an event is routed once, by its first transition, and its later
transitions follow it. See [webhook.md](webhook.md#several-targets-and-routing) and
[open311.md](open311.md).
"""


def _type(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _type(args[0])
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (Union, UnionType):
        return " or ".join("null" if a is type(None) else _type(a) for a in args)
    if origin is dict:
        return f"map of name to {_type(args[1])}"
    if origin is list:
        return f"list of {_type(args[0])}"
    if origin is tuple:
        return "[" + ", ".join(_type(a) for a in args) + "]"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    names = {
        "SecretUrl": "url",
        "SecretStr": "secret",
        "PosixPath": "path",
        "Path": "path",
        "ByteSize": "bytes",
    }
    return names.get(annotation.__name__, annotation.__name__)


def _default(field: Any) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.default_factory() if field.default_factory else field.default
    if isinstance(value, BaseModel):
        return "see below"
    return f"`{value}`" if value not in ({}, None) else ("`{}`" if value == {} else "`null`")


def section(title: str, model: type[BaseModel], path: str) -> str:
    lines = [f"## {title}", "", f"Key: `{path}`. {model.__doc__.strip().splitlines()[0]}", ""]
    lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        lines.append(
            f"| `{name}` | {_type(field.annotation)} | {_default(field)} | {field.description or ''} |"
        )
    return "\n".join(lines) + "\n"


def render() -> str:
    parts = [INTRO]
    parts.append(section("Top level", Config, "(top level)"))
    parts.append(section("Camera", CameraConfig, "cameras.<id>") + SHARED)
    parts.append(section("Decoding", DecodeConfig, "cameras.<id>.decode"))
    parts.append(section("Tracker", TrackerConfig, "cameras.<id>.tracker"))
    parts.append(section("Detection regions", RegionsConfig, "cameras.<id>.detect_regions"))
    parts.append(section("Motion gate", MotionGateConfig, "cameras.<id>.motion_gate") + MOTION)
    parts.append(section("Live stream", StreamConfig, "cameras.<id>.stream") + LIVE)
    parts.append(section("Static objects", StaticObjectsConfig, "cameras.<id>.static_objects"))
    parts.append(section("Zone", ZoneConfig, "cameras.<id>.zones.<name>"))
    parts.append(section("Location", Location, "cameras.<id>.location, cameras.<id>.zones.<name>.location"))
    for name, rule in registry().items():
        parts.append(section(f"Rule `{name}`", rule.Config, f"cameras.<id>.zones.<name>.rules.{name}"))
    for key in ("detector", "events", "dispatch", "storage", "health"):
        model = Config.model_fields[key].annotation
        parts.append(section(key.capitalize(), model, key))
        if key == "dispatch":
            parts.append(section("Dispatch target", TargetConfig, "dispatch.targets.<name>") + TARGETS)
            parts.append(section("Route", RouteConfig, "dispatch.targets.<name>.route"))
    parts.append(section("Retention", RetentionConfig, "storage.retention") + RETENTION)
    parts.append(section("Clips", ClipsConfig, "storage.clips"))
    parts.append(section("Cluster", ClusterConfig, "cluster"))
    return "\n".join(parts)


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
