"""The store's SQL per batch at 100 capacity cameras, by the SQLite file's page size and secure_delete.

Issue 16's "store: SQL" row (benchmarks/stage_cpu.py: ``StoreWriter._commit``) is almost all
checkpoints: on the one-camera probe of the capacity run nearly every transaction holds one, and a
checkpoint rewrites the camera's arrays (the litter model's backgrounds and bookkeeping, the heatmap:
~320 KB at 640x360, its length changing with the bookkeeping, so SQLite writes it as new overflow pages
each time). Each page costs the commit a WAL frame (two writes and a checksum) and, at the WAL's
checkpoint, a copy into the file: fewer, bigger pages cost less. Small writes (a frame's boxes) then
write bigger pages, which is why this is measured as the pipeline batches them, not per checkpoint.
And the arrays' old pages are freed: an SQLite built with SECURE_DELETE (Debian's, this machine's:
main ran so) zeroes each freed page, a second write of them to the WAL; ``secure_delete=FAST`` zeroes
deleted rows within pages but not freed pages.

The writer's batches at 100 cameras (0.5 detections/s each, ``storage.checkpoint_interval`` 10 s,
the writer's 0.1 s batches): per batch 5 detected frames' boxes (3 boxes each, stored every frame at
the default ``detection_interval``) and 1 camera's checkpoint, cameras in turn, on a store on disk that
holds 100 cameras' rows. The arrays are random bytes of the probe's checkpoint sizes (316-324 KB: float
backgrounds do not compress, and SQLite does not compress). Page sizes are taken in turn, round by
round, each on a fresh store made by ``vision.db.connect`` with that ``PAGE_BYTES`` and ``SECURE_DELETE``
(1: zero freed pages, as this build's default; FAST: as the store sets it now); the figure is the
median over rounds of the writer thread's CPU per batch, and per detected frame (a fifth of it). Also
each size's empty store (pages in use: every table and index holds at least one page), which a small
``storage.max_bytes`` has to leave room for.

Usage: ``PYTHONPATH=$PWD python benchmarks/store_pages.py [--rounds 5]``.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import arguments, caveats, machine, machine_line, publish

from vision import db
from vision.camera.unit import Snapshot
from vision.store import Store
from vision.types import Detections

SETTINGS = ((4096, "1"), (8192, "1"), (8192, "FAST"), (16384, "FAST"))  # page bytes, secure_delete
CAMERAS = 100
BATCHES = 300  # per round and size: 30 s of the 100 cameras' writes
FRAMES = 5  # detected frames per 0.1 s batch: 100 cameras at 0.5/s
SIZES = (316_198, 324_000)  # the probe's checkpoint arrays, bytes


def boxes() -> Detections:
    xyxy = np.array([[10, 20, 30, 60], [100, 100, 120, 160], [200, 50, 220, 90]], np.float64)
    found = Detections.from_arrays(xyxy, np.array([0.6, 0.7, 0.8]), np.array([0, 0, 2]))
    found.track_id[:] = [1, 2, 3]
    return found


def batches(store: Store, arrays: list[bytes], count: int) -> float:
    """CPU seconds of ``count`` batches on ``store`` (its cameras' rows already there)."""
    found, names = boxes(), {0: "person", 2: "car"}
    started = time.thread_time()
    for i in range(count):
        with store.sql.transaction():
            for f in range(FRAMES):
                store.add_detections(f"cam{(i * FRAMES + f) % CAMERAS}", i * 0.1, found, names)
            camera = i % CAMERAS
            store.checkpoint(f"cam{camera}", Snapshot({"camera": f"cam{camera}", "pts": i * 0.1}, arrays[i]))
    return time.thread_time() - started


def one(page: int, secure: str, arrays: list[bytes]) -> tuple[float, int]:
    """CPU ms per batch on a fresh store of ``page`` bytes a page and ``secure`` deletes, and that store's
    bytes when empty."""
    db.PAGE_BYTES, db.SECURE_DELETE = page, secure
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder))
        empty = store.used_bytes()
        for camera in range(CAMERAS):
            store.checkpoint(f"cam{camera}", Snapshot({"camera": f"cam{camera}"}, arrays[camera]))
        seconds = batches(store, arrays, BATCHES)
        store.close()
    return seconds / BATCHES * 1e3, empty


def markdown(record: dict[str, Any]) -> str:
    lines = [
        "# Store SQL per batch at 100 capacity cameras, by page size and secure_delete",
        "",
        machine_line(record["machine"]),
        "",
        *caveats(record),
        f"Each batch: {FRAMES} detected frames' boxes and one camera's checkpoint arrays (316-324 KB), on a "
        f"store holding {CAMERAS} cameras; {BATCHES} batches a round, {record['rounds']} rounds, the settings"
        " in turn. CPU ms of the writing thread, median over rounds (min-max).",
        "",
        "| page bytes | secure_delete | CPU ms per batch | per detected frame | empty store, bytes in use |",
        "|---:|---|---:|---:|---:|",
    ]
    for setting, row in record["settings"].items():
        ms = row["ms_per_batch"]
        page, secure = setting.split()
        lines.append(
            f"| {page} | {secure} | {statistics.median(ms):.2f} ({min(ms):.2f}-{max(ms):.2f}) | "
            f"{statistics.median(ms) / FRAMES:.3f} | {row['empty_bytes']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    args = arguments(__doc__ or "", rounds=5).parse_args()
    record: dict[str, Any] = {"machine": machine(), "note": args.note, "rounds": args.rounds}
    rng = random.Random(16)
    arrays = [rng.randbytes(rng.randint(*SIZES)) for _ in range(BATCHES)]
    rows: dict[str, dict[str, Any]] = {f"{p} {s}": {"ms_per_batch": []} for p, s in SETTINGS}
    for turn in range(args.rounds):
        for page, secure in SETTINGS[turn % len(SETTINGS) :] + SETTINGS[: turn % len(SETTINGS)]:
            ms, empty = one(page, secure, arrays)
            rows[f"{page} {secure}"]["ms_per_batch"].append(round(ms, 3))
            rows[f"{page} {secure}"]["empty_bytes"] = empty
    record["settings"] = rows
    publish("store_pages", record, markdown)


if __name__ == "__main__":
    main()
