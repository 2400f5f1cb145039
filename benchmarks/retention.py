"""Retention soak: a real ``street-vision serve`` on the looping demo, with retention set to minutes.

It plays configs/serve-demo.yaml (sample_videos/plaza.mp4 in real time, looping, 5 fps)
with the webhook pointed at a real ``street-vision receiver`` on 127.0.0.1, and
storage.retention at minutes instead of days. Every SAMPLE_S seconds it records the
store's size on disk (database, WAL, snapshot folders), its row counts, and the
pruner's figures from ``/metrics`` (transactions, seconds holding the write lock, the
longest one, rows removed). Beside the service, a probe thread takes the store's write
lock the way the pipeline does (``BEGIN IMMEDIATE``, then ``ROLLBACK``: nothing is
written) five times a second and records how long it waited: the wait any pipeline
write saw from the pruner, the dispatcher and the pipeline itself together.

The size levels off when the growth over the last third of the run is small next to
the growth over the first third.

Usage: ``python benchmarks/retention.py [--minutes 30]`` (writes retention.md and
retention.json beside it). Run it niced on a shared machine: ``nice -n 10 python ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vision.db import connect  # noqa: E402

DEMO = ROOT / "configs" / "serve-demo.yaml"
SAMPLE_S = 15.0
PROBE_EVERY_S = 0.2
RETENTION = {
    "detections": "3m",
    "snapshots": "5m",
    "delivered_outbox": "5m",
    "closed_events": "5m",
    "interval": "30s",
}
SECRET = "retention-soak-secret"
TOKEN = "retention-soak-admin-token"
METRIC = re.compile(r"^(street_vision_store_\w+?)(?:\{(\w+)=\"(\w+)\"\})? ([0-9.e+-]+)$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, seconds: float, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s")


def write_config(work: Path, hook: str) -> Path:
    config = yaml.safe_load(DEMO.read_text())
    config["cameras"]["plaza"]["url"] = str(ROOT / "sample_videos" / "plaza.mp4")
    config["storage"] = {"data_dir": str(work / "data"), "retention": RETENTION}
    config["dispatch"] = {"webhook_url": hook, "secret": "${SOAK_WEBHOOK_SECRET}"}
    path = work / "soak.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder.exists() else 0


def sample(store: Path, snapshots: Path, metrics_url: str, started: float) -> dict[str, Any]:
    """One reading of the store's size, rows and the pruner's counters."""
    db = sqlite3.connect(store, timeout=10)
    try:
        rows = {
            table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("detections", "events", "transitions", "outbox")
        }
    finally:
        db.close()
    text = httpx.get(metrics_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).text
    metrics: dict[str, float] = {}
    for line in text.splitlines():
        match = METRIC.match(line)
        if match:
            name, _, label, value = match.groups()
            metrics[f"{name}.{label}" if label else name] = float(value)
    wal = Path(f"{store}-wal")
    return {
        "t": round(time.monotonic() - started, 1),
        "db_bytes": store.stat().st_size,
        "wal_bytes": wal.stat().st_size if wal.exists() else 0,
        "snapshot_bytes": folder_bytes(snapshots),
        "rows": rows,
        "metrics": metrics,
    }


class LockProbe:
    """Takes the store's write lock like a pipeline write would, and records how long each take waited."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.waits: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        db = connect(self.store)
        try:
            while not self.stop.wait(PROBE_EVERY_S):
                started = time.perf_counter()
                db.execute("BEGIN IMMEDIATE")
                self.waits.append(time.perf_counter() - started)
                db.execute("ROLLBACK")
        finally:
            db.close()


def summarize(samples: list[dict[str, Any]], waits: list[float], minutes: float) -> dict[str, Any]:
    total = [s["db_bytes"] + s["wal_bytes"] + s["snapshot_bytes"] for s in samples]
    third = max(1, len(samples) // 3)
    first = total[third] - total[0]
    last = total[-1] - total[-third - 1]
    m = samples[-1]["metrics"]
    removed = sum(
        v for k, v in m.items() if k.startswith("street_vision_store_pruned_total.") and "snapshots" not in k
    )
    batches = m.get("street_vision_store_prune_batches_total", 0.0)
    seconds = m.get("street_vision_store_prune_seconds_total", 0.0)
    ordered = sorted(waits)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0

    return {
        "minutes": minutes,
        "samples": len(samples),
        "bytes_start": total[0],
        "bytes_end": total[-1],
        "bytes_max": max(total),
        "growth_first_third": first,
        "growth_last_third": last,
        "levels_off": last <= max(0.1 * first, 2_000_000),
        "rows_pruned": removed,
        "snapshot_pictures_pruned": m.get("street_vision_store_pruned_total.snapshots", 0.0),
        "prune_batches": batches,
        "prune_seconds": seconds,
        "prune_ms_per_batch": 1000 * seconds / batches if batches else 0.0,
        "prune_batch_max_ms": 1000 * m.get("street_vision_store_prune_batch_max_seconds", 0.0),
        "rows_per_second_while_pruning": removed / seconds if seconds else 0.0,
        "lock_waits": len(waits),
        "lock_wait_ms_p50": 1000 * pct(0.5),
        "lock_wait_ms_p99": 1000 * pct(0.99),
        "lock_wait_ms_max": 1000 * (ordered[-1] if ordered else 0.0),
        "lock_wait_ms_mean": 1000 * statistics.fmean(waits) if waits else 0.0,
    }


def report(result: dict[str, Any], out: Path) -> None:
    s = result["summary"]
    mb = 1e6
    lines = [
        "# Retention soak",
        "",
        f"`python benchmarks/retention.py --minutes {s['minutes']:g}` on {result['machine']}: a real "
        "`street-vision serve` of configs/serve-demo.yaml (plaza.mp4 in real time, looping, 5 fps) with "
        "its webhook at a real `street-vision receiver`, and "
        f"`storage.retention: {json.dumps(RETENTION)}`.",
        "",
        "## Size over time",
        "",
        "| minute | database | WAL | snapshots | total | detections | events | transitions | outbox |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    every = max(1, round(60 / SAMPLE_S))
    for row in result["samples"][::every] + result["samples"][-1:]:
        total = row["db_bytes"] + row["wal_bytes"] + row["snapshot_bytes"]
        r = row["rows"]
        lines.append(
            f"| {row['t'] / 60:.1f} | {row['db_bytes'] / mb:.2f} MB | {row['wal_bytes'] / mb:.2f} MB | "
            f"{row['snapshot_bytes'] / mb:.2f} MB | {total / mb:.2f} MB | {r['detections']} | "
            f"{r['events']} | {r['transitions']} | {r['outbox']} |"
        )
    verdict = "levels off" if s["levels_off"] else "does NOT level off"
    lines += [
        "",
        f"The store {verdict}: it grew {s['growth_first_third'] / mb:.2f} MB over the first third of the "
        f"run and {s['growth_last_third'] / mb:.2f} MB over the last third "
        f"(largest {s['bytes_max'] / mb:.2f} MB, end {s['bytes_end'] / mb:.2f} MB).",
        "",
        "## Pruning cost",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| rows removed (detections, messages, events, transitions) | {s['rows_pruned']:.0f} |",
        f"| snapshot pictures removed | {s['snapshot_pictures_pruned']:.0f} |",
        f"| write transactions (delete batches and incremental vacuum steps) | {s['prune_batches']:.0f} |",
        f"| seconds holding the write lock, all together | {s['prune_seconds']:.2f} |",
        f"| per transaction, mean | {s['prune_ms_per_batch']:.1f} ms |",
        f"| longest transaction | {s['prune_batch_max_ms']:.1f} ms |",
        f"| rows removed per second of lock held | {s['rows_per_second_while_pruning']:.0f} |",
        f"| write-lock waits probed (every {PROBE_EVERY_S:g} s) | {s['lock_waits']} |",
        f"| wait p50 / p99 / max | {s['lock_wait_ms_p50']:.2f} / {s['lock_wait_ms_p99']:.2f} / "
        f"{s['lock_wait_ms_max']:.1f} ms |",
        "",
        f"Tickets at the receiver at the end: {json.dumps(result['receiver_tickets'])}.",
        "",
        "The probe's waits include the pipeline's and the dispatcher's own writes; the pruner's share is "
        "bounded by its longest transaction, after which it pauses at least as long.",
        "",
        "What still grows: the demo's crowd comes back with every 40-second loop of the clip, within "
        "`events.reopen_window` (60 s), so it reopens the same event for the whole run and that event is "
        "never closed for long. An event that is not resolved keeps its transitions (the `transitions` "
        "column, about 1.3 KB each) and the pictures of its latest transition; everything else levels off. "
        "The WAL stays at SQLite's auto-checkpoint size (1,000 pages).",
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(lines))
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("retention"))
    args = parser.parse_args()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "STREET_VISION_WEBHOOK_SECRET": SECRET,
        "SOAK_WEBHOOK_SECRET": SECRET,
        "STREET_VISION_ADMIN_TOKEN": TOKEN,
    }
    with tempfile.TemporaryDirectory(prefix="retention-soak-") as tmp:
        work = Path(tmp)
        hook_port, api_port = free_port(), free_port()
        cli = [sys.executable, "-m", "vision.cli"]
        log = (work / "services.log").open("w")
        receiver = subprocess.Popen(
            [*cli, "receiver", "--port", str(hook_port), "--db", str(work / "receiver.sqlite")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        config = write_config(work, f"http://127.0.0.1:{hook_port}/webhook")
        serve = subprocess.Popen(
            [*cli, "serve", str(config), "--port", str(api_port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        probe: LockProbe | None = None
        samples: list[dict[str, Any]] = []
        try:
            wait_http(f"http://127.0.0.1:{hook_port}/health", 60)
            wait_http(f"http://127.0.0.1:{api_port}/healthz", 120)
            store = work / "data" / "street-vision.sqlite"
            probe = LockProbe(store)
            probe.thread.start()
            started = time.monotonic()
            end = started + args.minutes * 60
            metrics_url = f"http://127.0.0.1:{api_port}/metrics"
            while time.monotonic() < end:
                samples.append(sample(store, work / "data" / "snapshots", metrics_url, started))
                time.sleep(max(0.0, min(SAMPLE_S, end - time.monotonic())))
            samples.append(sample(store, work / "data" / "snapshots", metrics_url, started))
        finally:
            if probe is not None:
                probe.stop.set()
                probe.thread.join(10)
            for process in (serve, receiver):
                process.terminate()
                process.wait(60)
            log.close()
        with sqlite3.connect(work / "receiver.sqlite") as db:
            received = dict(db.execute("SELECT state, COUNT(*) FROM tickets GROUP BY state").fetchall())
        result = {
            "machine": f"{os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}",
            "retention": RETENTION,
            "summary": summarize(samples, probe.waits if probe else [], args.minutes),
            "receiver_tickets": received,
            "samples": samples,
        }
    report(result, args.out)
    print(json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
