"""A camera checkpoint's arrays: what encoding them costs, np.savez_compressed against packing.py.

Every ``storage.checkpoint_interval`` seconds of stream time each camera's unit snapshots its
image-sized models (the litter rule's background model, the heatmap) as npz bytes for the store.
This benchmark builds those arrays for real: a camera unit, configured as the suite video's truth
(zones and rules), fed ``SECONDS`` of the video at its detect fps with no detections (the
background model learns from the pixels alone), for every video of both evaluation suites whose
zones have a litter rule. Then, in interleaved rounds on the same arrays: ``np.savez_compressed``
(how checkpoints were written before, the peer) and ``vision.camera.packing.pack`` (now); for
each the median time to write and to read back, the size, and whether the arrays come back equal
(dtype, shape, every value, NaN included).

Then a camera at the capacity benchmark's settings (benchmarks/capacity.py: the parking clip as a
640x360 substream, the whole picture one zone watched for crowds and litter, the default detector's
boxes, 0.5 detections/s), fed CAPACITY_SECONDS and checkpointed every INTERVAL seconds of stream
time as the pipeline does: each checkpoint's size, now and as written before the fast background was
kept as uint8 when it holds whole grey levels (the peer: the same arrays, that one as float32); the
CPU of a snapshot with its arrays; and, on a store on disk holding CAMERAS cameras' rows, the CPU
(and wall time) of the store's checkpoint (its SQL) with each, written in interleaved rounds over
every camera, and of a state-only save (a transition's: its state without arrays) now that the arrays
have a table of their own, against the peer, the upsert before (the arrays in camera_state's row,
rewritten at every save), and against a row without arrays (the floor).

Results go to checkpoints.md and checkpoints.json beside this file via benchmarks/report.py, with
the machine and its load average before and after (PRELIMINARY when loaded: times on a busy shared
machine are inflated; the ratios measured in the same rounds are what compare).

Usage: ``PYTHONPATH=$PWD python benchmarks/checkpoints.py`` (a few minutes).
"""

from __future__ import annotations

import io
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capacity import ZONES  # noqa: E402  (beside this file)
from farm import SUB_BITRATE, encode, looped  # noqa: E402
from report import arguments, caveats, machine, machine_line, publish  # noqa: E402

from vision.camera.packing import pack, unpack  # noqa: E402
from vision.camera.unit import CameraUnit, Snapshot  # noqa: E402
from vision.config import EventsConfig, parse_config  # noqa: E402
from vision.detect.card import load_card  # noqa: E402
from vision.detect.detector import Detector  # noqa: E402
from vision.evaluate.suite import load_suite  # noqa: E402
from vision.ingest.sampler import Sampler  # noqa: E402
from vision.store import Store  # noqa: E402
from vision.types import Detections, Frame  # noqa: E402

SUITES = (ROOT / "sample_videos" / "suite.yaml", ROOT / "tests" / "footage_suite" / "suite.yaml")
SECONDS = 20.0  # of each video fed to its unit before the arrays are taken
ROUNDS = 15
INTERVAL = 10.0  # storage.checkpoint_interval's default: seconds of stream time between checkpoints
CAPACITY_CLIP = "parking"  # the capacity benchmark's clip, with ZONES["other"] (litter and crowd)
CAPACITY_SECONDS = 90.0
CAPACITY_FPS = 0.5
CAMERAS = 64  # rows in the store: the capacity benchmark's 64 cameras
SQL_ROUNDS = 4  # each round writes every camera's row once with each encoding


def savez_compressed(arrays: dict[str, np.ndarray]) -> bytes:
    """The peer: how checkpoints were written before packing.py."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def sampled(path: Path, fps: float, seconds: float) -> Iterator[tuple[float, np.ndarray]]:
    """The frames (pts, BGR) of the video's first ``seconds`` a camera detecting ``fps`` a second samples."""
    sampler = Sampler(fps)
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            pts = float(frame.time or 0.0)
            if pts > seconds:
                return
            if sampler.due(pts):
                yield pts, frame.to_ndarray(format="bgr24")


def camera_arrays(video: Any, names: dict[int, str]) -> dict[str, np.ndarray] | None:
    """The arrays a checkpoint of this video's camera holds after SECONDS (None: no litter rule)."""
    camera = video.truth.camera
    if not any(zone.rules.litter is not None for zone in camera.zones.values()):
        return None
    unit = CameraUnit(video.name, camera, names, EventsConfig())
    for pts, image in sampled(video.truth.video, camera.detect_fps, SECONDS):
        unit.process(unit.stamp(Frame(video.name, pts, image)), Detections.empty())
    data = unit.snapshot().arrays
    return unpack(data) if data else None


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return list(a) == list(b) and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and np.array_equal(a[k], b[k], equal_nan=True)
        for k in a
    )


def measure(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    encoders: dict[str, Callable[[dict[str, np.ndarray]], bytes]] = {
        "savez_compressed": savez_compressed,
        "pack": pack,
    }
    write: dict[str, list[float]] = {k: [] for k in encoders}
    read: dict[str, list[float]] = {k: [] for k in encoders}
    data: dict[str, bytes] = {}
    for _ in range(ROUNDS):  # interleaved: both see the same load
        for name, encoder in encoders.items():
            started = time.perf_counter()
            data[name] = encoder(arrays)
            write[name].append(time.perf_counter() - started)
            started = time.perf_counter()
            unpack(data[name])
            read[name].append(time.perf_counter() - started)
    out: dict[str, Any] = {
        "arrays": {k: f"{v.dtype}{list(v.shape)}" for k, v in arrays.items()},
        "raw_bytes": sum(v.nbytes for v in arrays.values()),
    }
    for name in encoders:
        out[name] = {
            "write_ms": round(statistics.median(write[name]) * 1e3, 2),
            "read_ms": round(statistics.median(read[name]) * 1e3, 2),
            "bytes": len(data[name]),
            "exact": same(arrays, unpack(data[name])),
        }
    out["ratio_write"] = round(out["pack"]["write_ms"] / out["savez_compressed"]["write_ms"], 3)
    out["ratio_bytes"] = round(out["pack"]["bytes"] / out["savez_compressed"]["bytes"], 3)
    return out


def capacity_checkpoints(folder: Path) -> tuple[CameraUnit, list[Snapshot]]:
    """A camera at the capacity benchmark's settings fed CAPACITY_SECONDS of its substream, and its
    checkpoints, one every INTERVAL seconds of stream time as vision/pipeline/analysis.py takes them."""
    clip = looped(encode(CAPACITY_CLIP, folder, (640, 360, SUB_BITRATE)), CAPACITY_SECONDS)
    classes = "[person, bicycle, bottle, cup, backpack, handbag, suitcase]"  # capacity.py's
    config = parse_config(
        f"cameras:\n  cam:\n    url: {clip}\n    detect_fps: {CAPACITY_FPS}\n    zones:\n{ZONES['other']}"
        f"detector: {{model: default, classes: {classes}}}\n"
    )
    camera = config.cameras["cam"]
    detector = Detector.from_config(config.detector)
    unit = CameraUnit("cam", camera, detector.names, config.events)
    snapshots, due = [], 0.0
    for pts, image in sampled(clip, camera.detect_fps, CAPACITY_SECONDS):
        unit.process(unit.stamp(Frame("cam", pts, image)), detector.detect([image])[0])
        if pts >= due:
            snapshots.append(unit.snapshot())
            due = pts + INTERVAL
    return unit, snapshots


def as_before(data: bytes) -> bytes:
    """The peer: a checkpoint as written before this change, its fast backgrounds float32 and the
    per-pixel bookkeeping always sparse (the same values)."""
    arrays = unpack(data)
    for name in [k for k in arrays if k.endswith(":fast")]:
        arrays[name] = arrays[name].astype(np.float32)
        model = name.removesuffix("fast")
        if f"{model}timer" in arrays:  # written dense: back to the sparse form
            dense = {
                k: arrays.pop(f"{model}{k}")
                for k in ("timer", "arrived", "seen", "unsure")
                if f"{model}{k}" in arrays
            }
            busy = (dense["timer"] != 0) | ~np.isnan(dense["arrived"]) | dense["seen"]
            busy |= dense.get("unsure", False)
            at = np.flatnonzero(busy).astype(np.int32)
            arrays[f"{model}at"] = at
            arrays |= {f"{model}{k}_at": v.ravel()[at] for k, v in dense.items()}
    return pack(arrays)


# The peer of a state-only save: the store's upsert before the arrays had a table of their own (migration
# step 6), when they lay in camera_state's row and SQLite read them back and rewrote them at every update.
ONE_ROW = (
    "INSERT INTO camera_state (camera, pts, state, arrays, saved_at) VALUES (?,?,?,?,?) "
    "ON CONFLICT(camera) DO UPDATE SET pts=excluded.pts, state=excluded.state, "
    "arrays=COALESCE(excluded.arrays, camera_state.arrays), saved_at=excluded.saved_at"
)


def one_row(store: Store) -> Callable[[str, Snapshot], None]:
    """``store``'s camera rows as before step 6 (the arrays in camera_state), and the save then."""
    with store.sql.transaction():
        store.sql.execute(
            "UPDATE camera_state SET arrays = "
            "(SELECT a.arrays FROM camera_arrays a WHERE a.camera = camera_state.camera)"
        )

    def save(camera: str, snapshot: Snapshot) -> None:
        with store.sql.transaction():
            pts, text = snapshot.state.get("pts"), json.dumps(snapshot.state)
            store.sql.execute(ONE_ROW, (camera, pts, text, snapshot.arrays, time.time()))

    return save


def cpu_ms(save: Callable[[str, Snapshot], None], writes: list[tuple[str, Snapshot]]) -> tuple[float, float]:
    """Mean CPU and wall milliseconds of ``save`` of each (camera, snapshot) in turn (the WAL's own
    checkpoints fall in some of them: the mean, not the median, carries their share)."""
    wall, cpu = time.perf_counter(), time.process_time()
    for camera, snapshot in writes:
        save(camera, snapshot)
    return (time.process_time() - cpu) / len(writes) * 1e3, (time.perf_counter() - wall) / len(writes) * 1e3


def medians(runs: dict[str, list[tuple[float, float]]]) -> dict[str, dict[str, float]]:
    """Each peer's median round (CPU and wall ms per call)."""
    return {
        name: {
            "cpu_ms": round(statistics.median(c for c, _ in v), 3),
            "wall_ms": round(statistics.median(w for _, w in v), 3),
        }
        for name, v in runs.items()
    }


def store_costs(folder: Path, encodings: dict[str, list[Snapshot]]) -> dict[str, Any]:
    """The store's checkpoint of CAMERAS cameras with each encoding's snapshots, in interleaved rounds,
    each in a store of its own on disk; then, in interleaved rounds too, state-only saves into rows with
    arrays (now, and as before step 6) and into rows without (the floor)."""
    stores = {name: Store(folder / name) for name in encodings}
    for name, snapshots in encodings.items():  # every camera's row, as after the first checkpoints
        cpu_ms(stores[name].checkpoint, [(f"cam{i}", snapshots[i % len(snapshots)]) for i in range(CAMERAS)])
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in encodings}
    for r in range(SQL_ROUNDS):
        for name, snaps in encodings.items():  # each camera's next checkpoint: other bytes than its row's
            writes = [(f"cam{i}", snaps[(i + r + 1) % len(snaps)]) for i in range(CAMERAS)]
            runs[name].append(cpu_ms(stores[name].checkpoint, writes))
    out: dict[str, Any] = medians(runs)
    states = [Snapshot(s.state, None) for s in encodings["now"]]
    now = stores["now"]
    cpu_ms(now.checkpoint, [(f"bare{i}", states[i % len(states)]) for i in range(CAMERAS)])
    peers = {  # a transition's save: the state alone
        "state_only_now": (now.checkpoint, "cam"),
        "state_only_one_row": (one_row(stores["before"]), "cam"),
        "state_only_without_arrays": (now.checkpoint, "bare"),
    }
    runs = {name: [] for name in peers}
    for r in range(SQL_ROUNDS):
        for name, (save, rows) in peers.items():
            writes = [(f"{rows}{i}", states[(i + r + 2) % len(states)]) for i in range(CAMERAS)]
            runs[name].append(cpu_ms(save, writes))
    out |= medians(runs)
    for store in stores.values():
        store.close()
    return out


def capacity() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        unit, snapshots = capacity_checkpoints(folder)
        before = [Snapshot(s.state, as_before(s.arrays)) for s in snapshots if s.arrays]
        took = []
        for _ in range(ROUNDS):
            started = time.process_time()
            unit.snapshot()
            took.append(time.process_time() - started)
        arrays = unpack(snapshots[-1].arrays or b"")
        return {
            "checkpoints": len(snapshots),
            "arrays": {k: f"{v.dtype}{list(v.shape)}" for k, v in arrays.items()},
            "kB": [len(s.arrays or b"") // 1000 for s in snapshots],
            "kB_before": [len(b.arrays or b"") // 1000 for b in before],
            "snapshot_cpu_ms": round(statistics.median(took) * 1e3, 3),
            "store": store_costs(folder, {"now": snapshots, "before": before}),
        }


def markdown(record: dict[str, Any]) -> str:
    m = record["machine"]
    lines = [
        "# Checkpoint arrays: their encoding, their size and the store's cost",
        "",
        machine_line(m, "numpy"),
        "",
        *caveats(record),
        f"Generated by `benchmarks/checkpoints.py`: each video's camera unit fed {SECONDS:g} s at its "
        f"detect fps, then its checkpoint arrays written and read back {ROUNDS} times by each encoder, "
        "interleaved; medians.",
        "",
        "| video | background model | raw kB | savez_compressed: write / read ms, kB "
        "| pack: write / read ms, kB | pack / savez_compressed: write time, size | exact |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in record["videos"].items():
        old, new = r["savez_compressed"], r["pack"]
        arrays = next((v for k, v in r["arrays"].items() if k.endswith(":fast")), "-")
        lines.append(
            f"| {name} | {arrays} | {r['raw_bytes'] // 1000} | {old['write_ms']} / {old['read_ms']}, "
            f"{old['bytes'] // 1000} | {new['write_ms']} / {new['read_ms']}, {new['bytes'] // 1000} | "
            f"{r['ratio_write']}, {r['ratio_bytes']} | "
            f"{'yes' if old['exact'] and new['exact'] else '**no**'} |"
        )
    c = record["capacity"]
    sql = c["store"]
    now, before = sql["now"], sql["before"]
    state_now, state_before = sql["state_only_now"], sql["state_only_one_row"]
    without = sql["state_only_without_arrays"]
    lines += [
        "",
        f"At the default `storage.checkpoint_interval` ({INTERVAL:g} s of stream time) a camera writes one "
        "checkpoint every that many seconds: its write time / "
        f"{INTERVAL:g} is the CPU it costs per camera-second, and the size is what the store's "
        "`camera_arrays` row holds (replaced at each checkpoint).",
        "",
        "## At the capacity benchmark's settings",
        "",
        f"One camera as benchmarks/capacity.py configures it ({CAPACITY_CLIP} clip as a 640x360 substream, "
        f"the whole picture one zone with crowd and litter rules, the default detector, {CAPACITY_FPS:g} "
        f"detections/s), fed {CAPACITY_SECONDS:g} s, checkpointed every {INTERVAL:g} s of stream time: "
        f"{c['checkpoints']} checkpoints. Its arrays at the last: "
        + ", ".join(f"`{k}` {v}" for k, v in c["arrays"].items())
        + ".",
        "",
        "| | checkpoint kB (each) | store's checkpoint CPU ms (wall ms) |",
        "|---|---|---|",
        f"| now: fast background uint8 when whole grey levels | {', '.join(map(str, c['kB']))} "
        f"| {now['cpu_ms']} ({now['wall_ms']}) |",
        f"| before: fast background float32 (the peer) | {', '.join(map(str, c['kB_before']))} "
        f"| {before['cpu_ms']} ({before['wall_ms']}) |",
        f"| now / before | {sum(c['kB']) / sum(c['kB_before']):.3f} | "
        f"{now['cpu_ms'] / before['cpu_ms']:.3f} ({now['wall_ms'] / before['wall_ms']:.3f}) |",
        "",
        f"Store's checkpoint: `Store.checkpoint` (its SQL, on disk, WAL) of each of {CAMERAS} cameras' rows "
        f"in turn with its next checkpoint, {SQL_ROUNDS} rounds, the two encodings interleaved (each in a "
        "store of its own); the mean per call in a round (the WAL's own checkpoints fall in some calls), the "
        "median round. A snapshot with its arrays (`CameraUnit.snapshot()`, packing included): "
        f"{c['snapshot_cpu_ms']} ms CPU (median of {ROUNDS}). At {CAMERAS} cameras that is "
        f"{CAMERAS / INTERVAL:g} checkpoints a second: "
        f"{CAMERAS / INTERVAL * (now['cpu_ms'] + c['snapshot_cpu_ms']):.1f} ms of CPU a second now, "
        f"{CAMERAS / INTERVAL * (before['cpu_ms'] + c['snapshot_cpu_ms']):.1f} before.",
        "",
        "A state-only save (a transition's: `Store.record` upserts the camera's state without arrays), "
        f"{SQL_ROUNDS} interleaved rounds over {CAMERAS} rows, CPU ms (wall ms) per save:",
        "",
        "| now: the arrays in camera_arrays | before: in camera_state's row (the peer) "
        "| a row without arrays | now / before |",
        "|---|---|---|---|",
        f"| {state_now['cpu_ms']} ({state_now['wall_ms']}) "
        f"| {state_before['cpu_ms']} ({state_before['wall_ms']}) "
        f"| {without['cpu_ms']} ({without['wall_ms']}) "
        f"| {state_now['cpu_ms'] / state_before['cpu_ms']:.3f} |",
        "",
        "Before, SQLite read the row's arrays back and wrote them again at every update of the row.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    args = arguments(__doc__).parse_args()
    record: dict[str, Any] = {"machine": machine(), "note": args.note}
    names = load_card("default").labels
    record["videos"] = {}
    for suite in SUITES:
        for video in load_suite(suite).videos:
            arrays = camera_arrays(video, names)
            if arrays is not None:
                record["videos"][video.name] = measure(arrays)
    record["capacity"] = capacity()
    publish("checkpoints", record, markdown)


if __name__ == "__main__":
    main()
