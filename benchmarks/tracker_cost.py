"""CPU cost of the tracker alone, old code against this checkout's, on the same recorded calls.

The pipeline's tracker calls (``update`` with a frame's detections, ``hold`` on frames the motion
gate kept from the detector, ``tracks`` after each) are recorded once from ``Pipeline.run`` on the
three sample videos (embedded SSD, detect_fps 5, capacity_profile's cameras), then replayed on a
fresh tracker per camera: the old code (``vision/track`` of ``--before``, a git commit, loaded
under another package name) and this checkout's, in alternating rounds of the same process.
Per-thread CPU time (``time.thread_time``), summed over the calls, per detected frame. Every
replay's outputs (track ids of each update, every track table's columns) must be identical in
both codes, else the run fails naming the first difference.

Usage: ``python benchmarks/tracker_cost.py [--before integ8] [--rounds 7] [--profile]``
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import io
import json
import pickle
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(OUT))

from capacity import machine  # noqa: E402  (beside this file)
from capacity_profile import config as camera_config  # noqa: E402

from vision.types import Detections  # noqa: E402

RECORDING = Path(tempfile.gettempdir()) / "tracker_calls.pkl"
TABLE = ("track_id", "class_id", "first_seen", "last_seen", "hits", "streak", "box", "predicted",
         "stationary_since", "history_times", "history_boxes", "history_scores", "median_score")  # fmt: skip


def record(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every tracker call of ``Pipeline.run`` on the three sample videos, per camera."""
    from vision.config import parse_config
    from vision.detect.detector import Detector
    from vision.pipeline import Pipeline
    from vision.store import Store
    from vision.track.tracker import Tracker

    calls: dict[int, list[tuple[Any, ...]]] = {}
    update, hold = Tracker.update, Tracker.hold

    def recorded_update(self: Tracker, detections: Detections, pts: float) -> Detections:
        d = detections
        calls.setdefault(id(self), []).append(
            ("update", pts, d.xyxy.copy(), d.score.copy(), d.class_id.copy())
        )
        return update(self, detections, pts)

    def recorded_hold(self: Tracker, pts: float, still: np.ndarray) -> None:
        calls.setdefault(id(self), []).append(("hold", pts, np.array(still, np.int64)))
        hold(self, pts, still)

    Tracker.update, Tracker.hold = recorded_update, recorded_hold  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = parse_config(yaml.safe_dump(camera_config(3, Path(tmp) / "data")))
            store = Store(config.storage.data_dir, "tracker")
            Pipeline(config, Detector.from_config(config.detector), store).run()
            store.close()
    finally:
        Tracker.update, Tracker.hold = update, hold  # type: ignore[method-assign]
    out = {f"camera{i}": c for i, c in enumerate(calls.values())}
    path.write_bytes(pickle.dumps(out))
    return out


def old_package(commit: str, into: Path) -> ModuleType:
    """``vision/track`` of ``commit``, importable as ``track_before`` (its own modules renamed)."""
    package = into / "track_before"
    package.mkdir()
    names = subprocess.run(
        ["git", "ls-tree", "--name-only", commit, "vision/track/"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for name in names:
        text = subprocess.run(
            ["git", "show", f"{commit}:{name}"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        (package / Path(name).name).write_bytes(text.replace(b"vision.track", b"track_before"))
    sys.path.insert(0, str(into))
    return importlib.import_module("track_before.tracker")


def replay(
    tracker_cls: type, config: Any, calls: list[tuple[Any, ...]], keep: bool
) -> tuple[float, list[Any]]:
    """CPU seconds of one camera's calls on a fresh tracker, and (if ``keep``) every output."""
    tracker = tracker_cls(config)
    outputs: list[Any] = []
    spent = 0.0
    for call in calls:
        if call[0] == "update":
            dets = Detections.from_arrays(call[2], call[3], call[4])
            start = time.thread_time()
            out = tracker.update(dets, call[1])
            table = tracker.tracks()
            spent += time.thread_time() - start
            if keep:
                outputs.append(out.track_id)
        else:
            start = time.thread_time()
            tracker.hold(call[1], call[2])
            table = tracker.tracks()
            spent += time.thread_time() - start
        if keep:
            outputs.append([getattr(table, name) for name in TABLE])
    return spent, outputs


def first_difference(before: list[Any], after: list[Any]) -> str | None:
    """Where two replays' outputs differ (ids exactly, floats within 1e-4 relative), None if nowhere."""
    for k, (a, b) in enumerate(zip(before, after, strict=True)):
        pairs = [(a, b, "track ids")] if isinstance(a, np.ndarray) else list(zip(a, b, TABLE, strict=True))
        for x, y, name in pairs:
            if x.shape != y.shape or x.dtype != y.dtype:
                return f"output {k}, {name}: shape/dtype {x.shape} {x.dtype} vs {y.shape} {y.dtype}"
            if x.dtype.kind == "f":
                if not np.allclose(x, y, rtol=1e-4, atol=1e-3, equal_nan=True):
                    return f"output {k}, {name}: {x} vs {y}"
            elif not np.array_equal(x, y):
                return f"output {k}, {name}: {x} vs {y}"
    return None


def profiled(tracker_cls: type, config: Any, recording: dict[str, list[tuple[Any, ...]]]) -> str:
    profile = cProfile.Profile()
    profile.enable()
    for calls in recording.values():
        replay(tracker_cls, config, calls, keep=False)
    profile.disable()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(25)
    return text.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="integ8", help="git commit of the old tracker code")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--record", action="store_true", help=f"record again even if {RECORDING} exists")
    parser.add_argument("--profile", action="store_true", help="print cProfile of both codes, write nothing")
    args = parser.parse_args()
    from vision.track import TrackerConfig
    from vision.track.tracker import Tracker

    recording = (
        pickle.loads(RECORDING.read_bytes()) if RECORDING.exists() and not args.record else record(RECORDING)
    )
    commit = subprocess.run(
        ["git", "rev-parse", args.before], cwd=ROOT, check=True, capture_output=True, text=True
    )
    with tempfile.TemporaryDirectory() as tmp:
        old = old_package(commit.stdout.strip(), Path(tmp))
        codes = {"before": (old.Tracker, old.TrackerConfig()), "after": (Tracker, TrackerConfig())}
        if args.profile:
            for label, (cls, cfg) in codes.items():
                print(f"=== {label}\n{profiled(cls, cfg, recording)}")
            return
        for name, calls in recording.items():
            outs = {label: replay(cls, cfg, calls, keep=True)[1] for label, (cls, cfg) in codes.items()}
            where = first_difference(outs["before"], outs["after"])
            if where is not None:
                raise SystemExit(f"tracks differ on {name}: {where}")
        load_before = machine()["load_average_before"]
        seconds: dict[str, list[float]] = {label: [] for label in codes}
        for _ in range(args.rounds):
            for label, (cls, cfg) in codes.items():
                seconds[label].append(sum(replay(cls, cfg, c, keep=False)[0] for c in recording.values()))
    calls = [c for cs in recording.values() for c in cs]
    detected = sum(c[0] == "update" for c in calls)
    result = {
        "machine": machine() | {"load_average_before": load_before},
        "before": args.before,
        "before_commit": commit.stdout.strip(),
        "cameras": len(recording),
        "updates": detected,
        "holds": len(calls) - detected,
        "boxes": int(sum(len(c[3]) for c in calls if c[0] == "update")),
        "rounds": args.rounds,
        "identical": True,
        "ms_per_detected_frame": {k: float(np.median(v)) * 1000 / detected for k, v in seconds.items()},
        "all_rounds_s": seconds,
    }
    ms = result["ms_per_detected_frame"]
    result["after_over_before"] = ms["after"] / ms["before"]
    (OUT / "tracker_cost.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
