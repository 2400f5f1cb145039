"""The motion gate's picture built by the readers from the luma plane, against the picture made of the BGR
frame on the inference thread (main before the change): the gate's verdicts on every frame of both
evaluation suites, and what each picture costs per frame.

Every video of both suites (sample_videos/suite.yaml, tests/footage_suite/suite.yaml) goes through the
real reader with its suite's camera settings (zones, detect fps, the gate's defaults), as `street-vision
eval` replays it; two gates see each frame with the same motion vectors, one given the reader's picture,
the other making its own of the BGR frame (``bgr_picture``, as before). Where every verdict agrees the
same frames are detected, so the events are the same; a video where some differ must be replayed
both ways (``street-vision eval``) and its tickets compared. Per frame, in the same pass: the time of
each picture (medians, microseconds; the luma one as the reader makes it: luma plane, block means,
limited range stretched, turned upright). With ``--before CHECKOUT`` (main, whose gate makes its picture
of the BGR frame), each video whose verdicts differ is replayed by ``street-vision eval`` in both
checkouts and their tickets compared (type, zone, subject, incident, opened and resolved at).

Usage: ``PYTHONPATH=$PWD python3 benchmarks/gate_picture.py [--before /path/to/main]`` (a minute, and
about a minute per video replayed); writes benchmarks/gate_picture.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capacity import machine  # noqa: E402  (beside this file)

from vision.config import CameraConfig  # noqa: E402
from vision.evaluate.suite import load_suite  # noqa: E402
from vision.ingest.decoder import VideoDecoder  # noqa: E402
from vision.ingest.pictures import luma_plane, quarter_turns  # noqa: E402
from vision.ingest.sampler import Sampler  # noqa: E402
from vision.ingest.vectors import VectorMotion  # noqa: E402
from vision.scene.motion import MotionGate, bgr_picture, luma_picture  # noqa: E402
from vision.scene.scene import Scene  # noqa: E402

SUITES = (ROOT / "sample_videos" / "suite.yaml", ROOT / "tests" / "footage_suite" / "suite.yaml")
OUT = Path(__file__).resolve().parent


def video(name: str, camera: CameraConfig) -> dict[str, Any]:
    """One video read as the reader reads it: both gates' verdicts and both pictures' times per frame."""
    zones = [z.polygon for z in Scene.from_config(camera, {}).zones.values()]
    interval = 1 / camera.detect_fps
    by_luma = MotionGate(camera.motion_gate, zones, interval)
    by_bgr = MotionGate(camera.motion_gate, zones, interval)
    sampler, motion, width = Sampler(camera.detect_fps), VectorMotion(), camera.motion_gate.width
    differ, luma_us, bgr_us, frames = [], [], [], 0
    with VideoDecoder(name, camera.source, camera.decode, vectors=True) as decoder:
        for av_frame, pts in decoder.frames():
            assert pts is not None, f"{name}: frames without timestamps"
            turns = quarter_turns(av_frame.rotation)
            motion.add(av_frame, turns)
            if not sampler.due(pts):
                continue
            moved, image = motion.take(pts), decoder.image(av_frame)
            luma = luma_plane(av_frame)
            assert luma is not None, f"{name}: {av_frame.format.name} has no luma plane"
            start = time.perf_counter()
            picture = luma_picture(*luma, turns, width)
            middle = time.perf_counter()
            bgr_picture(image, width)
            luma_us.append(1e6 * (middle - start))
            bgr_us.append(1e6 * (time.perf_counter() - middle))
            frames += 1
            if by_luma.due(image, pts, moved, picture) != by_bgr.due(image, pts, moved):
                differ.append(round(pts, 2))
    return {
        "frames": frames,
        "held_luma": by_luma.skipped,
        "held_bgr": by_bgr.skipped,
        "verdicts_differ_at": differ,
        "luma_picture_us": round(statistics.median(luma_us), 1),
        "bgr_picture_us": round(statistics.median(bgr_us), 1),
    }


def tickets(checkout: Path, truth: Path) -> list[dict[str, Any]]:
    """``street-vision eval`` of one ground-truth file by ``checkout``'s code: its tickets, ids left out."""
    with tempfile.TemporaryDirectory() as tmp:
        suite = Path(tmp) / "suite.yaml"
        suite.write_text(json.dumps({"videos": [str(truth.resolve())]}))
        run = [sys.executable, "-m", "vision.cli", "eval", str(suite), "--out", str(Path(tmp) / "out")]
        env = os.environ | {"PYTHONPATH": str(checkout)}
        subprocess.run(run, cwd=checkout, env=env, capture_output=True, check=True, timeout=1200)
        (record,) = json.loads((Path(tmp) / "out" / "results.json").read_text())["videos"]
    return [{k: v for k, v in t.items() if k != "event_id"} for t in record["tickets"]]


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# The motion gate's picture: from the luma plane on the readers, or from BGR",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores; load average {m['load_average_before']} before, "
        f"{m['load_average_after']} after (a shared machine: the times are inflated, their ratio is what "
        "compares). Generated by `benchmarks/gate_picture.py`.",
        "",
        "| video | frames | held, luma / BGR picture | verdicts that differ (pts) | picture us, luma / BGR |",
        "|---|---|---|---|---|",
    ]
    for name, v in result["videos"].items():
        lines.append(
            f"| {name} | {v['frames']} | {v['held_luma']} / {v['held_bgr']} | "
            f"{', '.join(map(str, v['verdicts_differ_at'])) or 'none'} | "
            f"{v['luma_picture_us']} / {v['bgr_picture_us']} |"
        )
    for name, v in result["videos"].items():
        if "same_tickets" in v:
            lines += [
                "",
                f"{name}, replayed by `street-vision eval` here and in {result['before']}: "
                f"{len(v['tickets'])} tickets, {'the same' if v['same_tickets'] else 'NOT the same'} "
                "(type, zone, subject, incident, opened and resolved at).",
            ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="a checkout whose gate pictures BGR frames (e.g. main)")
    args = parser.parse_args()
    result: dict[str, Any] = {"machine": machine(), "videos": {}}
    if args.before:
        result["before"] = args.before.name
    for suite in SUITES:
        for entry in load_suite(suite).videos:
            camera = entry.truth.to_config(entry.name, OUT).cameras[entry.name]
            v = result["videos"][entry.name] = video(entry.name, camera)
            if v["verdicts_differ_at"] and args.before:
                v["tickets"] = tickets(ROOT, entry.path)
                v["same_tickets"] = v["tickets"] == tickets(args.before.resolve(), entry.path)
            print(entry.name, v, flush=True)
    result["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    (OUT / "gate_picture.json").write_text(json.dumps(result, indent=2) + "\n")
    (OUT / "gate_picture.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
