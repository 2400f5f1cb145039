"""Where the time of ``street-vision run`` goes, by stage, sampled over all its threads.

N file cameras made from the sample scenarios (crowd on the plaza, litter, bike parking,
in turn), the embedded SSD, files read as fast as possible, so the process is busy
throughout. ``py-spy record`` samples every thread's Python stack; a sample whose
innermost frame is a wait (a queue, an event, a condition: py-spy does not count those
as idle) is dropped, and each other sample is charged to the first stage of STAGES whose
code is on its stack, so time in ONNX Runtime counts as inference even when called from
deep in the pipeline. Start-up and the end of the run are charged to start-up wherever their
code lives: a sample importing a module (the tracker's import of scipy.optimize would count as
tracking) or writing the heatmap PNGs at the end. The table is each stage's share of the busy
samples and the thread milliseconds per detected frame (threads on 2 busy cores wait for a
core, so these are larger than CPU time; the shares are what compare).

``--checkout DIR`` profiles another checkout's code (e.g. main) on the same cameras with this
script's stages: the run starts ``python -m vision.cli`` in that folder, which comes first on
``sys.path`` (``benchmarks/ssd_batch.py --before`` does this).

Usage: ``python benchmarks/capacity_profile.py [--cameras 6] [--checkout DIR] [--label before]
[--out FILE.json]`` (about a minute per 2 cameras on 2 busy cores). Needs py-spy (``pip install
py-spy``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_videos"
SCENARIOS = ("plaza", "litter", "bike_parking")
CROWD = {
    "polygon": [[0.0, 0.33], [0.55, 0.33], [0.95, 0.25], [1.0, 0.45], [1.0, 0.85], [0.55, 0.62], [0.0, 0.5]],
    "rules": {"crowd": {"enter_count": 7, "exit_count": 5, "window": 2, "min_duration": 2, "close_after": 3}},
}
RATE = 50  # py-spy samples per second
STARTUP = "start-up, imports, other"
ONCE = re.compile(r"<frozen importlib\._bootstrap|Runtime\.write_heatmaps")  # start-up, end of run
WAITING = re.compile(r"^(\w+\.)?(wait|_wait_for_tstate_lock|get|acquire) \((threading|queue)\.py")
# (stage, code on the stack that puts a sample there), first match wins
STAGES: list[tuple[str, str]] = [
    ("inference (ONNX Runtime)", "onnxruntime"),
    ("motion gate", "vision/scene/motion.py"),  # before the readers: they build its picture
    ("video decoding (readers)", "vision/ingest/"),
    ("detector pre-processing", "vision/detect/preprocess.py"),
    ("detector decoding + NMS", "vision/detect/(ssd|nms|yolo)\\.py"),
    ("detection planner", "vision/detect/(planner|sizes)\\.py"),
    ("litter background model", "vision/scene/static_objects.py"),
    ("tracker", "vision/track/"),
    ("rules", "vision/rules/"),
    ("snapshot JPEGs", "vision/events/snapshots.py"),
    ("store (SQL)", "vision/store/"),
    ("other per-camera analysis", "vision/(camera|scene|events)/"),
    ("pipeline plumbing", "vision/pipeline/|vision/store/writer.py"),
]


def camera_config(index: int) -> tuple[str, dict[str, Any]]:
    """The index-th camera: the scenarios in turn, each with its own zone and rule."""
    name = SCENARIOS[index % len(SCENARIOS)]
    if name == "plaza":
        zones = {"crossing": CROWD}
    else:
        truth = yaml.safe_load((SAMPLES / f"{name}.scenario.yaml").read_text())["truth"]["camera"]
        zones = truth["zones"]
    return f"cam{index}", {"url": str(SAMPLES / f"{name}.mp4"), "detect_fps": 5, "zones": zones}


def config(cameras: int, data: Path) -> dict[str, Any]:
    return {
        "cameras": dict(camera_config(i) for i in range(cameras)),
        "detector": {"model": "default", "min_score": 0.4, "classes": ["person", "bicycle", "bottle", "cup"]},
        "events": {"close_after": 10, "update_interval": 10},
        "storage": {"data_dir": str(data)},
    }


def stage(stack: str) -> str:
    if ONCE.search(stack):
        return STARTUP
    for name, pattern in STAGES:
        if re.search(pattern, stack):
            return name
    return STARTUP


def profile(cameras: int, checkout: Path = ROOT) -> dict[str, Any]:
    """The run of ``checkout``'s code on ``cameras`` file cameras, sampled and charged to stages."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "profile.yaml"
        path.write_text(yaml.safe_dump(config(cameras, Path(tmp) / "data")))
        raw = Path(tmp) / "stacks.txt"
        run = [sys.executable, "-m", "vision.cli", "run", str(path)]
        spy = ["py-spy", "record", "--format", "raw", "--rate", str(RATE), "-o", str(raw), "--", *run]
        env = os.environ | {"PYTHONPATH": str(checkout)}
        done = subprocess.run(spy, cwd=checkout, env=env, capture_output=True, text=True, check=True)
        frames = sum(int(m) for m in re.findall(r"(\d+) frames detected", done.stdout + done.stderr))
        samples: Counter[str] = Counter()
        for line in raw.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not WAITING.match(stack.rpartition(";")[2]):
                samples[stage(stack)] += int(count)
    total = sum(samples.values())
    return {
        "cameras": cameras,
        "frames_detected": frames,
        "samples": total,
        "stages": {
            name: {
                "share": round(n / total, 3),
                "ms_per_frame": round(1000 * n / RATE / frames, 2) if frames else None,
            }
            for name, n in samples.most_common()
        },
    }


def markdown(result: dict[str, Any], label: str) -> str:
    lines = [
        f"### Profile {label}: {result['cameras']} cameras, {result['frames_detected']} frames, "
        f"{result['samples']} samples",
        "",
        "| stage | share of busy samples | thread ms per frame |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {v['share']:.1%} | {v['ms_per_frame']} |" for k, v in result["stages"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=6)
    parser.add_argument("--checkout", type=Path, default=ROOT, help="profile this checkout's code")
    parser.add_argument("--label", default="now")
    parser.add_argument("--out", type=Path, help="also write the result as JSON here")
    args = parser.parse_args()
    result = profile(args.cameras, args.checkout.resolve())
    if args.out:
        args.out.write_text(json.dumps(result | {"label": args.label}, indent=2) + "\n")
    print(markdown(result, args.label))


if __name__ == "__main__":
    main()
