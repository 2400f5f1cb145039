"""How long our process holds the GIL per detected frame, and where: the ceiling of one process.

Decoding, the model's call and the compiled kernels run without the GIL; everything else in the
process (readers' bookkeeping, the motion gate's vectors, analysis, the store) takes turns on it. On a
machine with many cores and a GPU the turns are what one process cannot spread, so its GIL time per
frame bounds how many cameras it can keep: ``1 / (held per frame x detections per second)``, before any
other limit. This runs our pipeline on the capacity farm (benchmarks/farm.py: real RTSP cameras on
loopback, the street clips, 640x360 substreams) with no instrumentation of its own, and samples it with
py-spy's ``--gil`` (only the thread holding the GIL is recorded; the process paused for each sample, so
the stack is the one that held it) for ``--seconds`` after ``--warmup``.
Per label: the share of the time the GIL was held, milliseconds held per detected frame (frames counted
by the pipeline's own callback over the sampled span), and by module (the innermost frame in vision/;
what holds it outside vision/ is named by its function). Sampling error: a share of n samples is good to
about 1/sqrt(n). Results go to gil_held.md / .json beside this file, added to what is there under
other labels (``--label``), so runs of two versions of the code sit side by side.

Usage: ``python benchmarks/gil_held.py --label NAME [--cameras 8] [--model CARD] [--seconds 45]
[--warmup 30] [--rate 200]``; needs py-spy (``pip install py-spy``), ffmpeg and the farm's RTSP server.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capacity import farm_config, machine  # noqa: E402  (beside this file)
from farm import MAIN, SUB_BITRATE, Farm, encode  # noqa: E402  (beside this file)
from report import finish, machine_line  # noqa: E402  (beside this file)

from vision.config import parse_config  # noqa: E402
from vision.detect.detector import Detector  # noqa: E402
from vision.pipeline import Pipeline  # noqa: E402
from vision.store import Store  # noqa: E402

CLIPS = ("vtest", "parking", "highway")
MODULE = re.compile(r"\((?:.*/)?(vision/[^:]+):")


def sample(pid: int, seconds: float, rate: int, out: Path) -> None:
    """py-spy's GIL holder of process ``pid``, ``rate`` times a second, as raw collapsed stacks."""
    subprocess.run(
        [
            # paused for each sample (not --nonblocking): a racing read would charge the holder's time to
            # wherever its stack is by the read, often the GIL-free call that followed
            *("py-spy", "record", "--pid", str(pid), "--gil"),
            *("--rate", str(rate), "--duration", str(round(seconds)), "--format", "raw", "-o", str(out)),
        ],
        check=True,
        capture_output=True,
    )


def holders(raw: Path) -> tuple[int, collections.Counter[str]]:
    """Samples, and samples by the innermost vision/ module of the stack (or the leaf outside vision/)."""
    total, by = 0, collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        ours = [f for f in frames if "vision/" in f]
        match = MODULE.search(ours[-1]) if ours else None
        by[match.group(1) if match else f"(outside vision/) {frames[-1].split(' (')[0]}"] += int(count)
        total += int(count)
    return total, by


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Our pipeline on the farm, sampled after the warm-up; its frames counted over the sampled span."""
    frames, lock = [0], threading.Lock()
    counted: list[int] = []

    def committed(*_: Any) -> None:
        with lock:  # called from every analysis lane
            frames[0] += 1

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clips = [(k, encode(k, folder, MAIN), encode(k, folder, (640, 360, SUB_BITRATE))) for k in CLIPS]
        farm = Farm(clips, args.cameras, args.warmup + args.seconds + 60)
        try:
            options = argparse.Namespace(
                fps=args.fps, defaults="", detector="", model=args.model, device="cpu"
            )
            config = parse_config(farm_config(farm, options, folder / "data"))
            store = Store(folder / "data", "gil")
            pipeline = Pipeline(config, Detector.from_config(config.detector), store, on_detections=committed)

            def profile() -> None:
                time.sleep(args.warmup)
                counted.append(frames[0])
                sample(os.getpid(), args.seconds, args.rate, folder / "gil.raw")
                counted.append(frames[0])

            sampler = threading.Thread(target=profile, daemon=True)
            sampler.start()
            pipeline.run(max_seconds=args.warmup + args.seconds + 10)
            sampler.join()
            store.close()
            total, by = holders(folder / "gil.raw")
            if args.raw:
                args.raw.write_bytes((folder / "gil.raw").read_bytes())
        finally:
            farm.close()
    detected = counted[1] - counted[0]
    per_frame = 1000 / args.rate / detected

    return {
        "label": args.label,
        "cameras": args.cameras,
        "fps": args.fps,
        "model": args.model,
        "seconds": args.seconds,
        "rate": args.rate,
        "samples": total,
        "frames": detected,
        "held_share": round(total / args.rate / args.seconds, 4),
        "held_ms_per_frame": round(total * per_frame, 2),
        "by_module_ms_per_frame": {k: round(v * per_frame, 3) for k, v in by.most_common()},
    }


def markdown(result: dict[str, Any]) -> str:
    runs = result["runs"]
    lines = [
        "# GIL held per detected frame: the ceiling of one process",
        "",
        machine_line(result["machine"], "numba"),
        "",
        "Our pipeline on the capacity farm (real RTSP cameras on loopback, clips "
        f"{', '.join(CLIPS)} in turn, detection on their 640x360 substreams, motion gate on), no "
        "instrumentation of its own; py-spy `--gil` records the thread holding the GIL (the process paused "
        "for each sample). "
        "Held: share of the sampled time; ms per frame: that time over the frames committed in it. One "
        "process keeps at most about 1000 / (ms per frame x detections a second) cameras before the GIL is "
        "always busy (a bound, not a capacity: nothing else may run short first). By module: the "
        "innermost vision/ frame of the holder's stack.",
        "",
        "| label | cameras | model | detections/s | samples | frames | GIL held | ms a frame "
        "| bound, cameras |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        bound = 1000 / (r["held_ms_per_frame"] * r["fps"])
        lines.append(
            f"| {r['label']} | {r['cameras']} | `{Path(r['model']).name}` | {r['fps']:g} | {r['samples']} | "
            f"{r['frames']} | {r['held_share']:.1%} | {r['held_ms_per_frame']} | {bound:.0f} |"
        )
    modules = list(dict.fromkeys(k for r in runs for k in list(r["by_module_ms_per_frame"])[:12]))
    lines += [
        "",
        "By module, ms a detected frame:",
        "",
        "| module | " + " | ".join(r["label"] for r in runs) + " |",
    ]
    lines.append("|---|" + "---|" * len(runs))
    for k in modules:
        lines.append(
            f"| {k} | " + " | ".join(str(r["by_module_ms_per_frame"].get(k, 0)) for r in runs) + " |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="this run's name in the report (e.g. the commit)")
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--fps", type=float, default=2.0, help="detections per second per camera")
    parser.add_argument(
        "--model", default="default", help="detector.model (a card path, or default: the SSD)"
    )
    parser.add_argument("--seconds", type=float, default=45.0, help="sampled time")
    parser.add_argument("--warmup", type=float, default=30.0, help="before sampling: start-up, compiles")
    parser.add_argument("--rate", type=int, default=200, help="samples a second")
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("gil_held"))
    args = parser.parse_args()
    path = args.out.with_suffix(".json")
    result = json.loads(path.read_text()) if path.exists() else {"runs": []}
    result["machine"] = machine()
    row = run(args)
    print(json.dumps(row), flush=True)
    result["runs"] = [r for r in result["runs"] if r["label"] != args.label] + [row]
    finish(result)  # the load average after, and whether the machine was busy
    path.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
