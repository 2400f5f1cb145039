"""The resident memory of live camera readers alone (no detector), one process per setting, side by side.

Each setting runs ``--cameras`` CameraReaders (vision/ingest/reader.py) on the farm's live RTSP
cameras (benchmarks/farm.py: the parking clip, 640x360 substreams read as the detect stream) in a
process of its own, takes every frame they hand over and drops it, and samples the process's RSS
every 10 s. A reader's memory should stay level: what grows here grows in the service by the same
cause, whatever the detector does. Settings: ``keyframes`` (0.5/s, keyframes only, the motion gate
on: the capacity runs' cameras), ``keyframes-nogate`` (its gate off), ``full`` (2/s, every frame
decoded, the gate reading the codec's motion vectors: the default above 0.5/s), ``full-novectors``
(the gate on pixels only). Results go to rss_readers.md and .json beside this file, added to what
is there under ``--label``.

Usage: ``python benchmarks/rss_readers.py --label after [--settings keyframes,full] [--cameras 12]
[--seconds 150]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETTINGS = {  # detect fps, camera_defaults over capacity.py's
    "keyframes": (0.5, ""),
    "keyframes-nogate": (0.5, "{motion_gate: {enabled: false}}"),
    "full": (2.0, ""),
    "full-novectors": (2.0, "{motion_gate: {vectors: false}}"),
}


def rss_mb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def readers(config_path: Path, seconds: float) -> list[list[int]]:
    """In the setting's own process: its readers for ``seconds``; [s, RSS MB, frames taken] every 10 s."""
    import cv2

    from vision.config import parse_config
    from vision.ingest.reader import CameraReader

    cv2.setNumThreads(1)  # as the pipeline sets it for more cameras than cores
    config = parse_config(config_path.read_text())
    ready = threading.Event()
    clips = config.storage.clips
    cams = [
        CameraReader(k, c, ready, len(config.cameras), clips.width, clips.fps).start()
        for k, c in config.cameras.items()
    ]
    started, taken, samples = time.monotonic(), 0, []
    while (at := time.monotonic() - started) < seconds:
        ready.wait(0.2)
        ready.clear()
        taken += sum(r.take() is not None for r in cams)
        if at >= 10 * (len(samples) + 1):
            samples.append([round(at), rss_mb(), taken])
    for r in cams:
        r.stop()
    for r in cams:
        r.join(5.0)  # no thread left in FFmpeg as the process exits
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", help="what ran (e.g. before / after and the commit)")
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"of {', '.join(SETTINGS)}")
    parser.add_argument("--cameras", type=int, default=12, help="cameras per setting")
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--note", default="", help="a line for the report (e.g. the machine was shared)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # a setting's config: run its readers
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(readers(args.child, args.seconds)), flush=True)
        return
    sys.path.insert(0, str(Path(__file__).parent))
    import capacity  # beside this file
    import report
    from farm import Farm, encode

    names = args.settings.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clips = [("parking", encode("parking", folder), encode("parking", folder, (640, 360, "512k")))]
        farm = Farm(clips, args.cameras * len(names), args.seconds + 40, "gst")
        children = []
        try:
            for i, name in enumerate(names):
                fps, defaults = SETTINGS[name]
                part = argparse.Namespace(fps=fps, defaults=defaults, model="default")
                config = folder / f"{name}.yaml"
                text = capacity.farm_config(farm, part, folder / "data")
                config.write_text(text)
                # each setting its own cameras: the entries cam{i * N} to cam{i * N + N - 1}
                keep = {f"cam{j}" for j in range(i * args.cameras, (i + 1) * args.cameras)}
                loaded = yaml.safe_load(text)
                loaded["cameras"] = {k: v for k, v in loaded["cameras"].items() if k in keep}
                config.write_text(yaml.safe_dump(loaded))
                command = [sys.executable, __file__, "--child", str(config), "--seconds", str(args.seconds)]
                children.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
            results = [json.loads(child.communicate()[0].strip().splitlines()[-1]) for child in children]
        finally:
            farm.close()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    run = {
        "label": args.label or commit.stdout.strip(),
        "commit": commit.stdout.strip(),
        "cameras": args.cameras,
        "note": args.note,
        "settings": dict(zip(names, results, strict=True)),
    }
    report.add_run("rss_readers", run, markdown)


def markdown(runs: list[dict[str, Any]]) -> str:
    lines = [
        "# Resident memory of live camera readers alone",
        "",
        "benchmarks/rss_readers.py: per setting, a process of its own with that many CameraReaders on the "
        "farm's live cameras (640x360 substreams of the parking clip), every frame taken and dropped; its "
        "RSS MB every 10 s.",
        "",
    ]
    for run in runs:
        lines += [f"## {run['label']} ({run['commit']}): {run['cameras']} cameras per setting", ""]
        lines += [run["note"], ""] if run["note"] else []
        first = next(iter(run["settings"].values()))
        lines += [
            "| setting | " + " | ".join(f"{s[0]} s" for s in first) + " | frames taken |",
            "|---|" + "---|" * (len(first) + 1),
        ]
        for name, samples in run["settings"].items():
            lines.append(f"| {name} | " + " | ".join(str(s[1]) for s in samples) + f" | {samples[-1][2]} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
