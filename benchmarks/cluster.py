"""Cluster mode against the single process, on the same load, on this machine.

The load: CAMERAS cameras, each the plaza clip (768x576 H.264, 10 fps, 40 s) read as fast
as possible at detect_fps 5 with the demo's crowd zone, the store in PostgreSQL (a
throwaway server, tests/pg_support.py). Every frame of every camera is decoded (as a live
camera's are) and 5 a second (every other one) are detected and analysed, so the wall time
to get through the load gives how many such cameras the setup keeps live in real time:
``cameras held = cameras x 40 s / wall seconds``.

Modes (each run REPEATS times, alternating, the median kept; the machine is shared):

- ``single``: one process, ``Pipeline`` as ``street-vision run`` builds it;
- ``cluster-local``: two Ray nodes started here with ``ray start`` (1 CPU each,
  tests/ray_support.py), two shards, each with its own detector;
- ``cluster-shared``: the same two shards (0.5 CPU each) sending frames to one detector
  replica (1 CPU reserved) that batches them.

The detector runs on one thread (``detector.threads: 1``) in every mode, so that every mode
runs the model the same way and the CPU times compare the same work.

Camera names are picked so that the hash ring gives each shard half of them. Time is the
pipelines' own run time (from the first shard's start to the last one's end), without the
Ray cluster's and the actors' start-up (a few seconds, once per service). Also reported: the
CPU time of every process of the mode while the pipelines ran (``time.process_time``: all
threads of the single process, of each shard's and the replica's Ray worker), per second of one
camera, which does not depend on what else loads the machine and which docs/scaling.md sizes
from, and the time in detector calls per frame.

Usage: ``python benchmarks/cluster.py [--cameras 4] [--repeats 2]`` (writes cluster.md and
cluster.json beside it; about 5 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.pg_support import PostgresServer  # noqa: E402
from tests.ray_support import RayCluster  # noqa: E402
from vision.cluster.ring import HashRing, shard_names  # noqa: E402
from vision.config import Config, load_config  # noqa: E402

SAMPLE = ROOT / "sample_videos" / "plaza.mp4"
CLIP_SECONDS = 40.0
DETECT_FPS = 5.0
ZONE = "[[0.0, 0.33], [0.55, 0.33], [0.95, 0.25], [1.0, 0.45], [1.0, 0.85], [0.55, 0.62], [0.0, 0.5]]"
MODES = {
    "single": "",
    "cluster-local": "cluster: {address: ADDRESS, shards: 2, shard_cpus: 1}\n",
    "cluster-shared": (
        "cluster: {address: ADDRESS, shards: 2, shard_cpus: 0.5, detector: shared, replica_cpus: 1,"
        " batch_size: 8, batch_wait: 0.005}\n"
    ),
}


def balanced_names(cameras: int, shards: int = 2) -> list[str]:
    """``cameras`` names the hash ring spreads evenly over ``shards`` (the same names in every mode)."""
    ring, per_shard = HashRing(shard_names(shards)), -(-cameras // shards)
    taken: dict[str, list[str]] = {name: [] for name in shard_names(shards)}
    for i in range(100 * cameras):
        name = f"cam{i}"
        if len(taken[ring.owner(name)]) < per_shard:
            taken[ring.owner(name)].append(name)
    return sorted(name for names in taken.values() for name in names)[:cameras]


def write_config(folder: Path, cameras: int, mode: str, address: str, url: str) -> Path:
    lines = ["cameras:"]
    for name in balanced_names(cameras):
        lines += [
            f"  {name}:",
            f"    url: {SAMPLE}",
            f"    detect_fps: {DETECT_FPS:g}",
            "    zones:",
            f"      crossing: {{polygon: {ZONE}, rules: {{crowd: {{enter_count: 7, min_duration: 2}}}}}}",
        ]
    text = "\n".join(lines) + "\n"
    text += "detector: {min_score: 0.4, classes: [person, bicycle], threads: 1}\n"
    text += f"storage: {{data_dir: {folder / 'data'}, url: '{url}'}}\n"
    text += MODES[mode].replace("ADDRESS", address)
    path = folder / f"{mode}.yaml"
    path.write_text(text)
    return path


def run_single(config: Config, path: Path) -> dict[str, Any]:
    from vision.runtime import Runtime

    inference = {"seconds": 0.0, "frames": 0}

    def inferred(seconds: float, frames: int) -> None:
        inference["seconds"] += seconds
        inference["frames"] += frames

    runtime = Runtime.build(config, path, on_inference=inferred)
    cpu = time.process_time()
    try:
        summary = runtime.pipeline.run()
        cpu = time.process_time() - cpu
    finally:
        runtime.close()
    frames = sum(c.frames_detected for c in summary.cameras.values())
    return {"wall_s": summary.wall_seconds, "cpu_s": cpu, "frames": frames, **_inference(inference)}


def run_cluster(config: Config, path: Path) -> dict[str, Any]:
    from vision.cluster.control import ClusterRuntime

    runtime = ClusterRuntime.build(config, path)
    try:
        records = runtime.cluster.run(threading.Event())  # until the files end
        statuses = runtime.cluster.ask("status")
        replicas = [r for r in runtime.cluster.replica_reports().values() if r is not None]
    finally:
        runtime.close()
    wall = max(s["ran"][1] for s in statuses.values()) - min(s["ran"][0] for s in statuses.values())
    frames = sum(r["frames_detected"] for r in records.values())
    if replicas:  # the model's time is the replica's; the shards' calls include the trip there and back
        inference = {
            "seconds": sum(r["busy_seconds"] for r in replicas),
            "frames": sum(r["frames"] for r in replicas),
        }
        batches = sum(r["batches"] for r in replicas)
        trip = sum(s["inference"]["seconds"] for s in statuses.values())
        calls = sum(s["inference"]["calls"] for s in statuses.values())
        extra = {
            "frames_per_batch": inference["frames"] / batches,
            "shard_call_ms": 1000 * trip / calls,
            "replica_cpu_ms_per_frame": 1000 * sum(r["cpu_seconds"] for r in replicas) / inference["frames"],
        }
    else:
        inference = {
            "seconds": sum(s["inference"]["seconds"] for s in statuses.values()),
            "frames": sum(s["inference"]["frames"] for s in statuses.values()),
        }
        extra = {}
    cpu = sum(s["cpu_seconds"] for s in statuses.values()) + sum(r["cpu_seconds"] for r in replicas)
    return {"wall_s": wall, "cpu_s": cpu, "frames": frames, **_inference(inference), **extra}


def _inference(inference: dict[str, float]) -> dict[str, float]:
    frames = inference["frames"] or 1
    return {"inference_ms_per_frame": 1000 * inference["seconds"] / frames}


def measure(cameras: int, repeats: int) -> dict[str, Any]:
    pg, ray_cluster = PostgresServer().start(), RayCluster().start()
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    try:
        for _ in range(repeats):
            for mode in MODES:
                with tempfile.TemporaryDirectory() as folder:
                    url = pg.url(pg.database())
                    path = write_config(Path(folder), cameras, mode, ray_cluster.address, url)
                    config = load_config(path)
                    result = (run_single if mode == "single" else run_cluster)(config, path)
                    result["load_1min"] = os.getloadavg()[0]
                    runs[mode].append(result)
                    print(mode, json.dumps(result), flush=True)
    finally:
        ray_cluster.stop()
        pg.stop()
    table = {}
    camera_seconds = cameras * CLIP_SECONDS
    for mode, results in runs.items():
        wall = statistics.median(r["wall_s"] for r in results)
        cpu = statistics.median(r["cpu_s"] for r in results)
        extra = ("frames_per_batch", "shard_call_ms", "replica_cpu_ms_per_frame")
        table[mode] = {
            "wall_s": round(wall, 2),
            "frames": results[0]["frames"],
            "cameras_held": round(camera_seconds / wall, 2),
            "cpu_ms_per_camera_second": round(1000 * cpu / camera_seconds, 1),
            "cameras_per_core": round(camera_seconds / cpu, 2),
            "inference_ms_per_frame": round(
                statistics.median(r["inference_ms_per_frame"] for r in results), 1
            ),
            **{k: round(statistics.median(r[k] for r in results), 2) for k in extra if k in results[0]},
        }
    return {"cameras": cameras, "repeats": repeats, "modes": table, "runs": runs}


SHARED_NOTE = (
    "Preliminary: this machine was shared with other work while it ran (load average per run in "
    "cluster.json), so whole runs differ by up to a third; compare the modes of one run, and rerun it "
    "on a quiet machine before sizing hardware from it."
)


def write_report(result: dict[str, Any], out: Path) -> None:
    modes = result["modes"]
    single = modes["single"]["cameras_held"]
    lines = [
        "# Cluster benchmark",
        "",
        "`python benchmarks/cluster.py` (see its docstring for the method).",
        "",
        f"**{result['note']}**",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, Ray {metadata.version('ray')}. Load: {result['cameras']} "
        f"cameras x {CLIP_SECONDS:g} s of the plaza clip (768x576 H.264, 10 fps), detect_fps {DETECT_FPS:g}, "
        f"median of {result['repeats']} runs.",
        "",
        "| mode | wall s | cameras held in real time, here | vs single | CPU core-ms per camera-second "
        "| cameras per core | CPU vs single | inference wall ms/frame |",
        "|---|---|---|---|---|---|---|---|",
    ]
    cpu = modes["single"]["cpu_ms_per_camera_second"]
    for mode, m in modes.items():
        lines.append(
            f"| {mode} | {m['wall_s']} | {m['cameras_held']} | {m['cameras_held'] / single:.0%} | "
            f"{m['cpu_ms_per_camera_second']} | {m['cameras_per_core']} | "
            f"{m['cpu_ms_per_camera_second'] / cpu:.0%} | {m['inference_ms_per_frame']} |"
        )
    shared = modes["cluster-shared"]
    lines += [
        "",
        f"Shared detector: {shared['frames_per_batch']:.1f} frames per replica batch; the replica spent "
        f"{shared['replica_cpu_ms_per_frame']:.1f} CPU ms per frame; a shard's call (there, the batch's "
        f"wait and inference, and back) took {shared['shard_call_ms']:.1f} ms of wall time.",
        "",
        "*cameras held in real time, here* = cameras x clip seconds / wall seconds on this machine (on a "
        "machine that other work shares, more processes get a larger share of it, which favours the "
        "cluster modes). *CPU core-ms per camera-second* = CPU time of every process of the mode (the "
        "single process; the shards' and the replica's worker processes, Ray's threads in them included) "
        "while the pipelines ran, per second of one camera (every frame decoded, 5 detected): the cost "
        "that does not depend on what else runs, and what docs/scaling.md sizes from. *cameras per core* "
        "= 1000 / that. *inference wall ms/frame*: time in detector calls per frame (the replica's own "
        "time in shared mode).",
        "",
    ]
    out.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--note", default=SHARED_NOTE, help="how loaded the machine was, for the report")
    args = parser.parse_args()
    result = measure(args.cameras, args.repeats) | {"note": args.note}
    here = Path(__file__).parent
    (here / "cluster.json").write_text(json.dumps(result, indent=2) + "\n")
    write_report(result, here / "cluster.md")
    print(json.dumps(result["modes"], indent=2))


if __name__ == "__main__":
    main()
