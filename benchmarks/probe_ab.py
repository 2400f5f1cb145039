"""Issue 16's one-camera probe on two checkouts in turn: CPU ms per detected frame by stage, and the stores.

A pure speed change to the per-frame work must leave every output as it was and lower some stage. This
runs benchmarks/stage_cpu.py (each checkout's own, in a process of its own, OpenCV on one thread as the
capacity runs have it) on one config for ``--before`` and this checkout, alternating which goes first,
``--pairs`` times, each run on a fresh store; the report gives each stage's median per side (and every
run's figure, to see the noise), and a hash per side of what the stores hold: the detections, events,
transitions, clips and the camera's state and arrays, less the wall-clock columns (identical stores:
one hash each side, the same).

Usage: ``python3 benchmarks/probe_ab.py --before DIR --config CONFIG.yaml [--pairs 5] [--name NAME]``
(DIR: a checkout of the old code; CONFIG: e.g. the session 17 probe /tmp/probe/one.yaml, a file camera
that stands for a capacity camera; its ``storage.data_dir`` is replaced by a temporary one per run).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import arguments, caveats, machine, machine_line, publish  # noqa: E402  (beside this file)

TABLES = ("detections", "events", "transitions", "clips", "camera_state", "camera_arrays")
WALL = {"recorded_at", "saved_at", "created_at", "run_id"}  # wall clocks and run ids differ run to run
SUMMARY = ("other_ms", "inference_ms", "other_over_inference")


def store_hash(path: Path) -> str:
    """The outputs a store holds (:data:`TABLES`, less the :data:`WALL` columns), hashed."""
    digest = hashlib.sha256()
    with sqlite3.connect(path) as db:
        for table in TABLES:
            columns = [row[1] for row in db.execute(f"pragma table_info({table})") if row[1] not in WALL]
            rows = db.execute(f"select {','.join(columns)} from {table} order by {','.join(columns)}")
            digest.update(repr((table, rows.fetchall())).encode())
    return digest.hexdigest()[:16]


def run(checkout: Path, config: dict[str, Any]) -> dict[str, Any]:
    """stage_cpu's result for ``config`` in ``checkout``'s code, with its store's hash."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        path = Path(tmp) / "config.yaml"
        path.write_text(
            yaml.safe_dump({**config, "storage": {**config.get("storage", {}), "data_dir": str(data)}})
        )
        out = Path(tmp) / "stages.json"
        env = dict(os.environ, PYTHONPATH=str(checkout), OPENCV_FOR_THREADS_NUM="1")
        script = checkout / "benchmarks" / "stage_cpu.py"
        subprocess.run([sys.executable, str(script), str(path), str(out)], cwd=checkout, env=env, check=True)
        result = json.loads(out.read_text())
        result["store"] = store_hash(next(data.glob("*.sqlite")))
    return result


def render(record: dict[str, Any]) -> str:
    """The report: the stores' verdict, then every stage's medians and runs."""
    runs = record["runs"]
    sides = ("before", "after")
    stages = sorted(
        {stage for r in runs.values() for one in r for stage in one["ms_per_frame"]},
        key=lambda s: -statistics.median(one["ms_per_frame"].get(s) or 0.0 for one in runs["before"]),
    )

    def figures(side: str, key: str) -> list[float]:
        return [
            (one["ms_per_frame"].get(key) if key in one["ms_per_frame"] else one[key]) or 0.0
            for one in runs[side]
        ]

    hashes = {side: sorted({one["store"] for one in runs[side]}) for side in sides}
    same = len(set(hashes["before"] + hashes["after"])) == 1
    lines = [
        f"# The one-camera probe, {record['before']} against {record['after']}",
        "",
        machine_line(record["machine"], "numpy", "onnxruntime", "av"),
        "",
        *caveats(record),
        f"`python3 benchmarks/probe_ab.py --before <a checkout of {record['before']}> "
        f"--config {record['config']} --pairs {len(runs['before'])}`: benchmarks/stage_cpu.py on the config "
        "in each checkout's code in turn (which goes first alternating), OpenCV on one thread; CPU ms per "
        "detected frame, median of the runs (every run's figure after it).",
        "",
        f"Stores (detections, events, transitions, clips, camera state and arrays, less wall clocks): before "
        f"{hashes['before']}, after {hashes['after']}: **{'the same' if same else 'DIFFERENT'}**.",
        "",
        "| stage | before | after | before's runs | after's runs |",
        "|---|---|---|---|---|",
    ]
    for key in (*stages, *SUMMARY):
        b, a = (statistics.median(figures(side, key)) for side in sides)
        lines.append(
            f"| {key} | {b:.3g} | {a:.3g} | {', '.join(f'{v:g}' for v in figures('before', key))} | "
            f"{', '.join(f'{v:g}' for v in figures('after', key))} |"
        )
    return "\n".join([*lines, ""])


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the old code")
    parser.add_argument("--config", type=Path, required=True, help="the pipeline config (one file camera)")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--name", default="probe_ab", help="the report's name beside this file")
    args = parser.parse_args()
    config = yaml.safe_load(args.config.read_text())
    record: dict[str, Any] = {"machine": machine(), "note": args.note, "config": str(args.config)}
    commit = ["git", "log", "-1", "--format=%h"]
    record["before"] = subprocess.run(commit, cwd=args.before, capture_output=True, text=True).stdout.strip()
    record["after"] = subprocess.run(commit, cwd=ROOT, capture_output=True, text=True).stdout.strip()
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    for pair in range(args.pairs):
        order = [("before", args.before), ("after", ROOT)]
        for side, checkout in order if pair % 2 == 0 else order[::-1]:
            runs[side].append(run(checkout.resolve(), config))
            print(side, runs[side][-1]["other_over_inference"], runs[side][-1]["store"], flush=True)
    record["runs"] = runs
    publish(args.name, record, render)


if __name__ == "__main__":
    main()
