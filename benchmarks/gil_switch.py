"""Whether the GIL makes readers dear: N readers beside a thread holding the GIL, at three switch intervals.

Issue 16's quiet capacity run (capacity_ssd_static_gst_sub_gate.md) charged the readers ~9 ms of CPU
per camera-second, ~3.5x what they cost alone (readers_cut.md: ~2.5 ms). The hypothesis: CPython's
GIL. A thread waiting for it wakes every switch interval (``sys.getswitchinterval``, 5 ms) on a timed
condition wait and asks for a drop; with 64 readers beside threads holding the GIL busily (the
analysis lane's Python, inference's pre/post-processing), the readers' own CPU would grow with
futex wake-ups and cache misses, and the busy thread would convoy behind them.

This measures it in one process: N keyframes-only readers (vision/ingest's :class:`CameraReader`, a
static camera's settings, as benchmarks/readers.py runs them, their frames taken and dropped by one
consumer thread) on the GStreamer farm (benchmarks/farm.py), beside a companion thread:

- ``none``: no companion (the readers alone);
- ``python``: a pure-Python loop (never releases the GIL but when forced to);
- ``lane``: the analysis lane's shape, many small numpy/cv2 calls on a 640x360 frame, each releasing
  and retaking the GIL, with a little Python between them.

Per step (switch interval x companion) it reports the reader threads' CPU (user+system from
/proc/self/task, per thread, summed) per camera-second, their context switches (voluntary and not)
per camera-second, the companion's iterations per second and its own CPU, and the consumer's lag.
The readers and farm are started once per camera count and round; the steps run one after another
on them, every other round in the reverse order (on a shared machine the load moves). A first block
per round runs the companions with no readers at all (their throughput alone).

Usage: ``PYTHONPATH=$PWD python3 benchmarks/gil_switch.py [--cameras 32,64] [--intervals 1,5,20]
[--companions none,python,lane] [--seconds 10] [--settle 1] [--warmup 8] [--rounds 2] [--note ...]
[--markdown]``;
writes gil_switch.md and gil_switch.json beside it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from farm import Farm, encode  # beside this file
from readers import SUBSTREAM, Clients  # beside this file
from report import HERE, arguments, caveats, machine, machine_line, publish  # beside this file

COMPANIONS = ("none", "python", "lane")
TICK = os.sysconf("SC_CLK_TCK")


def thread_stats(tid: int) -> tuple[float, int, int]:
    """A thread of this process: its CPU seconds (user+system), voluntary and involuntary switches."""
    base = Path(f"/proc/self/task/{tid}")
    try:
        fields = (base / "stat").read_text().rsplit(")", 1)[1].split()
        status = dict(
            line.split(":", 1) for line in (base / "status").read_text().splitlines() if ":" in line
        )
    except OSError:
        return 0.0, 0, 0
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    return cpu, int(status["voluntary_ctxt_switches"]), int(status["nonvoluntary_ctxt_switches"])


def group_stats(tids: list[int]) -> np.ndarray:
    """Sum of :func:`thread_stats` over ``tids``: [cpu seconds, voluntary, involuntary]."""
    return np.array([thread_stats(t) for t in tids], dtype=float).reshape(-1, 3).sum(axis=0)


def python_work(state: dict[str, Any]) -> None:
    """One iteration of pure Python: the GIL held throughout."""
    total = 0
    for i in range(2000):
        total += i * i % 7
    state["sink"] = total


def lane_work(state: dict[str, Any]) -> None:
    """One iteration shaped like the analysis lane: small cv2/numpy calls (each releases the GIL),
    box arithmetic on a small array, and a little Python bookkeeping between them."""
    frame = state["frames"][state["i"] % len(state["frames"])]
    state["i"] += 1
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(gray, (160, 90), interpolation=cv2.INTER_AREA)
    diff = cv2.absdiff(small, state["background"])
    _, mask = cv2.threshold(diff, 25, 255, cv2.THRESH_BINARY)
    moving = int(np.count_nonzero(mask))
    cv2.accumulateWeighted(small.astype(np.float32), state["model"], 0.05)
    state["background"] = cv2.convertScaleAbs(state["model"])
    boxes = state["boxes"]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for x0, y0, x1, y1 in boxes[areas > 100].astype(int):  # per-box crops, as rules and masks do
        state["sink"] = float(gray[y0:y1, x0:x1].mean()) + moving
    state["events"] = {k: v + 1 for k, v in state["events"].items()}


class Companion:
    """A thread running one kind of work in a loop until :meth:`close`; counts its iterations."""

    def __init__(self, kind: str, frames: list[np.ndarray]) -> None:
        rng = np.random.default_rng(0)
        xy = rng.uniform(0, [600, 320], size=(12, 2))
        self.state: dict[str, Any] = {
            "frames": frames,
            "i": 0,
            "background": np.zeros((90, 160), np.uint8),
            "model": np.zeros((90, 160), np.float32),
            "boxes": np.hstack([xy, xy + rng.uniform(8, 40, size=(12, 2))]),
            "events": {f"track{i}": 0 for i in range(20)},
        }
        self.work: Callable[[dict[str, Any]], None] = {"python": python_work, "lane": lane_work}[kind]
        self.iterations = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"companion-{kind}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            self.work(self.state)
            self.iterations += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


def frames_of(path: Path, count: int = 8) -> list[np.ndarray]:
    """A few BGR frames of the substream clip for the lane companion to work on."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count and (got := capture.read())[0]:
        frames.append(got[1])
    capture.release()
    if not frames:
        raise RuntimeError(f"{path}: no frame could be read for the lane companion")
    return frames


def step(
    clients: Clients | None,
    companion: str,
    interval_ms: float,
    frames: list[np.ndarray],
    settle: float,
    seconds: float,
) -> dict[str, Any]:
    """One switch interval and companion beside ``clients`` (or none): the figures over ``seconds``."""
    sys.setswitchinterval(interval_ms / 1000)
    running = Companion(companion, frames) if companion != "none" else None
    try:
        time.sleep(settle)
        readers = [r._thread.native_id for r in clients.readers] if clients else []
        own = [running.thread.native_id] if running else []
        r0, c0, i0 = group_stats(readers), group_stats(own), running.iterations if running else 0
        p0, t0 = time.process_time(), time.monotonic()
        if clients:
            clients.lags.clear()
        time.sleep(seconds)
        wall = time.monotonic() - t0
        r1, c1 = group_stats(readers), group_stats(own)
        i1 = running.iterations if running else 0
        process = (time.process_time() - p0) / wall
        lags = list(clients.lags) if clients else []
    finally:
        if running:
            running.close()
    n = len(readers)
    reads, own_use = (r1 - r0) / wall, (c1 - c0) / wall
    return {
        "cameras": n,
        "interval_ms": interval_ms,
        "companion": companion,
        "process_cores": round(process, 3),
        "readers_ms_per_camera_s": round(reads[0] * 1000 / n, 2) if n else None,
        "readers_voluntary_per_camera_s": round(reads[1] / n, 1) if n else None,
        "readers_involuntary_per_camera_s": round(reads[2] / n, 1) if n else None,
        "companion_per_s": round((i1 - i0) / wall, 1) if running else None,
        "companion_cores": round(own_use[0], 3) if running else None,
        # per second of its own CPU: what the GIL hand-offs cost it, less at the mercy of the load's share
        "companion_per_cpu_s": round((i1 - i0) / (c1[0] - c0[0]), 1) if running and c1[0] > c0[0] else None,
        "companion_switches_per_s": round(own_use[1] + own_use[2], 1) if running else None,
        "lag_p50_s": round(float(np.percentile(lags, 50)), 3) if lags else None,
        "lag_p95_s": round(float(np.percentile(lags, 95)), 3) if lags else None,
        "errors": clients.errors() if clients else [],
    }


def main() -> None:
    parser = arguments(__doc__, rounds=2, rewrite=True)
    parser.add_argument("--cameras", default="32,64")
    parser.add_argument("--intervals", default="1,5,20", help="switch intervals in ms")
    parser.add_argument("--companions", default=",".join(COMPANIONS))
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per step")
    parser.add_argument("--settle", type=float, default=1.0, help="after a step's change, not measured")
    parser.add_argument("--warmup", type=float, default=8.0, help="the readers' start-up, not measured")
    args = parser.parse_args()
    if args.markdown:
        (HERE / "gil_switch.md").write_text(markdown(json.loads((HERE / "gil_switch.json").read_text())))
        return
    companions = args.companions.split(",")
    if unknown := [c for c in companions if c not in COMPANIONS]:
        parser.error(f"unknown companions {', '.join(unknown)}: known are {', '.join(COMPANIONS)}")
    intervals = [float(x) for x in args.intervals.split(",")]
    cameras = [int(x) for x in args.cameras.split(",")]
    cv2.setNumThreads(1)  # as the pipeline does
    default = sys.getswitchinterval()
    record: dict[str, Any] = {
        "machine": machine(),
        "python": sys.version.split()[0],
        "default_interval_ms": default * 1000,
        "seconds": args.seconds,
        "settle": args.settle,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "note": args.note,
        "steps": [],
    }
    plan = [(i, c) for i in intervals for c in companions]
    per_block = len(plan) * (args.settle + args.seconds + 0.5)
    with tempfile.TemporaryDirectory() as tmp:
        clip = encode("parking", Path(tmp), SUBSTREAM)
        frames = frames_of(clip)
        clips = [("parking", clip, None)]
        for round_ in range(1, args.rounds + 1):
            order = plan if round_ % 2 else plan[::-1]
            for interval, companion in order:  # the companions alone
                if companion != "none":
                    record["steps"].append(
                        {
                            "round": round_,
                            **step(None, companion, interval, frames, args.settle, args.seconds),
                        }
                    )
                    print(record["steps"][-1], flush=True)
            for n in cameras if round_ % 2 else cameras[::-1]:
                sys.setswitchinterval(default)
                farm = Farm(clips, n, args.warmup + per_block + 30, "gst")
                try:
                    clients = Clients("reader", farm.urls, farm.transport, {})
                    try:
                        time.sleep(args.warmup)
                        for interval, companion in order:
                            s = step(clients, companion, interval, frames, args.settle, args.seconds)
                            record["steps"].append({"round": round_, **s})
                            print(record["steps"][-1], flush=True)
                    finally:
                        sys.setswitchinterval(default)
                        clients.close()
                finally:
                    farm.close()
    publish("gil_switch", record, markdown)


def markdown(record: dict[str, Any]) -> str:
    steps = record["steps"]
    lines = [
        "# Readers beside a thread holding the GIL, by switch interval",
        "",
        machine_line(record["machine"], "av", "numpy"),
        "",
        *caveats(record),
        f"One process: N keyframes-only readers (CameraReader, a static camera's settings: detect_fps 0.5) "
        f"on the GStreamer farm (640x360 H.264 25 fps GOP 2 s, TCP), their frames taken and dropped by one "
        f"consumer thread, beside a companion thread (python: a pure-Python loop; lane: small cv2/numpy "
        f"calls on a 640x360 frame with a little Python between, as the analysis lane does; none). "
        f"sys.setswitchinterval per step (Python {record['python']}'s default: "
        f"{record['default_interval_ms']:g} ms); {record['settle']:g} s settle, {record['seconds']:g} s "
        f"measured per step (the companions alone too), readers warmed up {record['warmup']:g} s, "
        f"{record['rounds']} rounds, every other round in the reverse order. Readers: the reader threads' "
        "CPU (user+system per thread from /proc/self/task) and context switches (voluntary / involuntary), "
        "per camera-second. Companion: iterations per second, per second of its own CPU, and its thread's "
        "cores. Lag: how far behind the live edge each frame was when taken.",
        "",
        "| round | cameras | interval ms | companion | readers ms CPU per camera-s | readers switches per "
        "camera-s (vol / invol) | companion it/s | companion it per CPU-s | companion cores | "
        "process cores | lag p50 / p95 s | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in steps:

        def dash(key: str, s: dict[str, Any] = s) -> str:
            return "-" if s.get(key) is None else f"{s[key]:g}"

        switches = (
            "-"
            if not s["cameras"]
            else f"{dash('readers_voluntary_per_camera_s')} / " + dash("readers_involuntary_per_camera_s")
        )
        lag = "-" if s["lag_p50_s"] is None else f"{s['lag_p50_s']:g} / {s['lag_p95_s']:g}"
        lines.append(
            f"| {s['round']} | {s['cameras']} | {s['interval_ms']:g} | {s['companion']} | "
            f"{dash('readers_ms_per_camera_s')} | {switches} | {dash('companion_per_s')} | "
            f"{dash('companion_per_cpu_s')} | "
            f"{dash('companion_cores')} | {s['process_cores']:g} | {lag} | {'; '.join(s['errors']) or '-'} |"
        )
    lines += ["", *summary(steps), ""]
    return "\n".join(lines)


def summary(steps: list[dict[str, Any]]) -> list[str]:
    """Medians over rounds: the readers' CPU and the companion's throughput (beside the readers, and
    as a share of its throughput alone at the same interval)."""
    alone: dict[tuple[float, str, str], list[float]] = {}
    for s in steps:
        for key in ("companion_per_s", "companion_per_cpu_s"):
            if not s["cameras"] and s.get(key) is not None:
                alone.setdefault((s["interval_ms"], s["companion"], key), []).append(s[key])
    keys = sorted({(s["cameras"], s["companion"], s["interval_ms"]) for s in steps if s["cameras"]})
    lines = [
        "Medians over the rounds. Share: the companion's iterations per second (or per second of its own "
        "CPU) beside the readers over its own alone at the same interval.",
        "",
        "| cameras | companion | interval ms | readers ms CPU per camera-s | readers switches per camera-s "
        "(vol + invol) | companion it/s | companion share | companion it per CPU-s | its share | lag p95 s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, companion, interval in keys:
        group = [
            s for s in steps if (s["cameras"], s["companion"], s["interval_ms"]) == (n, companion, interval)
        ]

        def med(key: str, group: list[dict[str, Any]] = group) -> float | None:
            values = [s[key] for s in group if s.get(key) is not None]
            return float(np.median(values)) if values else None

        switches = float(
            np.median(
                [s["readers_voluntary_per_camera_s"] + s["readers_involuntary_per_camera_s"] for s in group]
            )
        )
        shares = []
        for key in ("companion_per_s", "companion_per_cpu_s"):
            rate, base = med(key), alone.get((interval, companion, key))
            shares.append(
                f"{rate:.0f} | {rate / float(np.median(base)):.2f}" if rate is not None and base else "- | -"
            )
        readers, lag = med("readers_ms_per_camera_s"), med("lag_p95_s")
        lines.append(
            f"| {n} | {companion} | {interval:g} | {readers:.2f} | {switches:.1f} | {shares[0]} | "
            f"{shares[1]} | " + ("-" if lag is None else f"{lag:.3f}") + " |"
        )
    return lines


if __name__ == "__main__":
    main()
