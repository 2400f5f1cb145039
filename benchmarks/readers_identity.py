"""Do two checkouts' keyframes-only readers hand over the same frames of a live camera?

A speed change to the reader (when it reads, how long it rests) must not change what it delivers.
Each side reads its own loopback RTSP camera (benchmarks/farm.py's GStreamer server, the parking
clip as a 640x360 substream, H.264 25 fps GOP 2 s, looped: a camera's stream starts at its first
keyframe for every client) with :class:`CameraReader` as a static camera runs (keyframes only,
detect_fps 0.5), both at once, each in a child process of its own importing its checkout's code.
Per frame taken: its stream time, the SHA-1 of its BGR pixels and of the motion gate's picture, and
how far behind the live edge it was when taken; per side the frames skipped (behind the live edge)
and dropped (replaced before taken). The frames must be equal, in order.

Usage: ``python benchmarks/readers_identity.py --before /path/to/main [--frames 32] [--out NAME]``;
writes NAME.md and NAME.json beside it (default readers_identity).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CODE_ENV = "READERS_CODE"  # a child's: the checkout whose vision it runs
sys.path.insert(0, os.environ.get(CODE_ENV, str(ROOT)))

from vision.config import CameraConfig  # noqa: E402
from vision.ingest.reader import CameraReader  # noqa: E402

# isort: split
from farm import SUB_BITRATE, encode, looped  # noqa: E402  (beside this file)
from report import arguments, caveats, machine, machine_line, publish  # noqa: E402  (beside this file)

from tests.ingest_servers import GstRtsp  # noqa: E402


def digest(pixels: Any) -> str | None:
    return None if pixels is None else hashlib.sha1(pixels.tobytes()).hexdigest()[:16]


def child(clip: Path, frames: int) -> None:
    """Read ``frames`` frames of a camera serving ``clip`` with this process's code; print them as JSON."""
    server = GstRtsp([("cam", clip, 0.0)]).start()
    try:
        settings = {"url": server.url("cam"), "detect_fps": 0.5, "decode": {"keyframes_only": True}}
        reader = CameraReader("cam", CameraConfig.model_validate(settings), threading.Event(), 1).start()
        taken: list[list[Any]] = []
        deadline = time.monotonic() + 10 + 2 * frames
        while len(taken) < frames and time.monotonic() < deadline:
            if (frame := reader.take(0.05)) is not None:
                lag = reader.clock.lag(frame.pts, time.monotonic())
                taken.append([round(frame.pts, 4), digest(frame.image), digest(frame.picture), round(lag, 3)])
        health = reader.health()
        reader.stop()
        reader.join(5)
    finally:
        server.close()
    result = {"frames": taken, "skipped": health.frames_skipped, "dropped": health.frames_dropped}
    print(json.dumps(result), flush=True)


def git_head(code: Path) -> str:
    run = subprocess.run(
        ["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return run.stdout.strip() or "?"


def markdown(result: dict[str, Any]) -> str:
    sides = result["sides"]
    before, after = sides["before"], sides["after"]
    lines = [
        "# Keyframes-only readers: the same frames before and after",
        "",
        machine_line(result["machine"], "av"),
        "",
        f"Both at once, each reading its own loopback RTSP camera: the parking clip as a 640x360 H.264 "
        f"25 fps GOP 2 s {SUB_BITRATE}b/s substream, looped (it starts over at 29.44 s); a static "
        "camera's reader (keyframes only, detect_fps 0.5). Lag: how far behind the live edge each "
        "frame was when taken (the reader's stream clock).",
        "",
        *caveats(result),
        f"Code: before {result['before']} ({before['commit']}), after {result['after']} ({after['commit']}).",
        "",
        f"**Frames equal (stream time, BGR pixels, motion gate picture, in order): "
        f"{'yes' if result['equal'] else 'NO'}**, {len(before['frames'])} before, "
        f"{len(after['frames'])} after.",
        "",
        "| side | frames | skipped | dropped | lag p50 / max s |",
        "|---|---|---|---|---|",
    ]
    for name in ("before", "after"):
        side = sides[name]
        lags = sorted(f[3] for f in side["frames"])
        spread = f"{lags[len(lags) // 2]} / {lags[-1]}" if lags else "-"
        lines.append(f"| {name} | {len(side['frames'])} | {side['skipped']} | {side['dropped']} | {spread} |")
    lines += [
        "",
        "| stream time s | pixels | picture | lag before s | lag after s |",
        "|---|---|---|---|---|",
    ]
    for b, a in zip(before["frames"], after["frames"], strict=False):
        same = b[:3] == a[:3]
        lines.append(f"| {a[0]} | {a[1]}{'' if same else ' ≠ ' + b[1]} | {a[2]} | {b[3]} | {a[3]} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--before", type=Path, help="the other checkout (e.g. main)")
    parser.add_argument("--frames", type=int, default=32, help="frames each side takes (one per 2 s)")
    parser.add_argument("--out", default="readers_identity", help="the report's name, beside this file")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # a child's clip
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.frames)
        return
    if args.before is None:
        parser.error("--before CHECKOUT is needed")
    record: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        clip = looped(encode("parking", Path(tmp), (640, 360, SUB_BITRATE)), 10 + 2 * args.frames)
        codes = {"before": args.before.resolve(), "after": ROOT}
        children = {
            name: subprocess.Popen(
                [sys.executable, __file__, "--child", str(clip), "--frames", str(args.frames)],
                stdout=subprocess.PIPE,
                text=True,
                env=os.environ | {CODE_ENV: str(code)},
            )
            for name, code in codes.items()
        }
        sides = {name: json.loads(proc.communicate()[0]) for name, proc in children.items()}
    for name, code in codes.items():
        sides[name]["commit"] = git_head(code)
    equal = [f[:3] for f in sides["before"]["frames"]] == [f[:3] for f in sides["after"]["frames"]]
    record |= {
        "before": str(codes["before"]),
        "after": str(ROOT),
        "frames": args.frames,
        "note": args.note,
        "equal": equal,
        "sides": sides,
    }
    publish(args.out, record, markdown)


if __name__ == "__main__":
    main()
