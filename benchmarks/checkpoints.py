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

Results go to checkpoints.md and checkpoints.json beside this file, with the machine and its
load average before and after (times on a busy shared machine are inflated; the ratio measured
in the same rounds is what compares).

Usage: ``PYTHONPATH=$PWD python benchmarks/checkpoints.py`` (under a minute).
"""

from __future__ import annotations

import io
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capacity import machine  # noqa: E402  (beside this file)

from vision.camera.packing import pack, unpack  # noqa: E402
from vision.camera.unit import CameraUnit  # noqa: E402
from vision.config import EventsConfig  # noqa: E402
from vision.detect.card import load_card  # noqa: E402
from vision.evaluate.suite import load_suite  # noqa: E402
from vision.ingest.sampler import Sampler  # noqa: E402
from vision.types import Detections, Frame  # noqa: E402

SUITES = (ROOT / "sample_videos" / "suite.yaml", ROOT / "tests" / "footage_suite" / "suite.yaml")
SECONDS = 20.0  # of each video fed to its unit before the arrays are taken
ROUNDS = 15
INTERVAL = 10.0  # storage.checkpoint_interval's default: seconds of stream time between checkpoints


def savez_compressed(arrays: dict[str, np.ndarray]) -> bytes:
    """The peer: how checkpoints were written before packing.py."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def camera_arrays(video: Any, names: dict[int, str]) -> dict[str, np.ndarray] | None:
    """The arrays a checkpoint of this video's camera holds after SECONDS (None: no litter rule)."""
    camera = video.truth.camera
    if not any(zone.rules.litter is not None for zone in camera.zones.values()):
        return None
    unit = CameraUnit(video.name, camera, names, EventsConfig())
    sampler = Sampler(camera.detect_fps)
    with av.open(str(video.truth.video)) as container:
        for frame in container.decode(video=0):
            pts = float(frame.time or 0.0)
            if pts > SECONDS:
                break
            if sampler.due(pts):
                image = frame.to_ndarray(format="bgr24")
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
        for name, encode in encoders.items():
            started = time.perf_counter()
            data[name] = encode(arrays)
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


def markdown(record: dict[str, Any]) -> str:
    m = record["machine"]
    lines = [
        "# Checkpoint arrays: np.savez_compressed against packing.py",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['system']}, Python {m['python']}, numpy "
        f"{m['versions']['numpy']}; load average {m['load_average_before']} before and "
        f"{m['load_average_after']} after"
        + (
            " (**preliminary: a shared machine under load**, absolute times inflated; the ratios, measured "
            "in the same interleaved rounds, are what compare)."
            if max(m["load_average_before"][0], m["load_average_after"][0]) > m["cores"] / 2
            else "."
        )
        + f" Generated by `benchmarks/checkpoints.py`: each video's camera unit fed {SECONDS:g} s at its "
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
    lines += [
        "",
        f"At the default `storage.checkpoint_interval` ({INTERVAL:g} s of stream time) a camera writes one "
        "checkpoint every that many seconds: its write time / "
        f"{INTERVAL:g} is the CPU it costs per camera-second, and the size is what the store's "
        "`camera_state` row holds (replaced at each checkpoint).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    record: dict[str, Any] = {"machine": machine()}
    names = load_card("default").labels
    record["videos"] = {}
    for suite in SUITES:
        for video in load_suite(suite).videos:
            arrays = camera_arrays(video, names)
            if arrays is not None:
                record["videos"][video.name] = measure(arrays)
    record["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    here = Path(__file__).resolve().parent
    (here / "checkpoints.json").write_text(json.dumps(record, indent=2) + "\n")
    (here / "checkpoints.md").write_text(markdown(record))
    print(markdown(record))


if __name__ == "__main__":
    main()
