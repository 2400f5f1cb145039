"""Tracker cost per frame against the number of boxes, beside Roboflow's ByteTrack in the same run.

A synthetic street at 5 detected frames per second: N people walk across a 1920x1080
picture with jittery boxes, 5% of boxes missed, scores spread over the two ByteTrack
stages and a few clutter boxes; whoever leaves the picture comes back at the other
side as a new person. Both trackers get the same boxes and the same settings, and
both are scored against the true identities (distinct ids per person: 1.0 is perfect).

Usage: ``python benchmarks/track.py`` (writes track.md and track.json beside it).
The peer is Roboflow's `trackers` package (supervision itself no longer ships
ByteTrack): `pip install supervision rich && pip install --no-deps trackers` (its
declared opencv-python would replace the project's headless OpenCV). Without it only
this tracker is measured.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vision.track import Tracker, TrackerConfig  # noqa: E402
from vision.types import Detections  # noqa: E402

SIZES = (10, 50, 200)
FRAMES = 300  # 60 s at 5 fps
FPS = 5.0
REPEATS = 5
WIDTH, HEIGHT = 1920, 1080
CONFIG = TrackerConfig()


def scene(n: int, seed: int = 0) -> list[tuple[float, np.ndarray, np.ndarray, np.ndarray]]:
    """(pts, xyxy, score, true identity) per frame; identity -1 marks clutter boxes."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform([0, 100], [WIDTH, HEIGHT - 200], (n, 2))
    vel = rng.uniform(-1, 1, (n, 2)) * [90, 25]  # walking, px/s
    size = np.column_stack([rng.uniform(30, 60, n), np.zeros(n)])
    size[:, 1] = size[:, 0] * 2.5
    ident = np.arange(n)
    next_ident = n
    frames = []
    for k in range(FRAMES):
        pts = k / FPS
        pos += vel / FPS
        gone = (pos[:, 0] < -60) | (pos[:, 0] > WIDTH) | (pos[:, 1] < 0) | (pos[:, 1] > HEIGHT - 150)
        pos[gone, 0] = np.where(vel[gone, 0] > 0, -50.0, WIDTH - 10.0)
        pos[gone, 1] = rng.uniform(100, HEIGHT - 200, int(gone.sum()))
        ident[gone] = np.arange(next_ident, next_ident + int(gone.sum()))
        next_ident += int(gone.sum())
        seen = rng.random(n) > 0.05
        xyxy = np.concatenate([pos, pos + size], axis=1) + rng.normal(0, 2.0, (n, 4))
        score = np.clip(rng.normal(0.75, 0.15, n), 0.15, 0.99)
        clutter = rng.uniform([0, 0], [WIDTH - 40, HEIGHT - 80], (max(n // 10, 1), 2))
        clutter_xyxy = np.concatenate([clutter, clutter + np.array([40, 80])], axis=1)
        frames.append(
            (
                pts,
                np.concatenate([xyxy[seen], clutter_xyxy]).astype(np.float32),
                np.concatenate([score[seen], rng.uniform(0.1, 0.45, len(clutter))]).astype(np.float32),
                np.concatenate([ident[seen], np.full(len(clutter), -1)]),
            )
        )
    return frames


def identity_score(truth: list[np.ndarray], ids: list[np.ndarray]) -> dict[str, float]:
    """Distinct track ids per true person (1.0: one id each) and the share of true boxes with an id."""
    per_person: dict[int, set[int]] = {}
    boxes = tracked = 0
    for who, tid in zip(truth, ids, strict=True):
        real = who >= 0
        boxes += int(real.sum())
        tracked += int((tid[real] >= 0).sum())
        for w, t in zip(who[real].tolist(), tid[real].tolist(), strict=True):
            if t >= 0:
                per_person.setdefault(w, set()).add(t)
    return {
        "ids_per_person": round(statistics.mean(len(s) for s in per_person.values()), 3),
        "boxes_with_id": round(tracked / boxes, 3),
    }


def run_ours(frames: list) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
    tracker = Tracker(CONFIG)
    inputs = [Detections.from_arrays(xyxy, score, np.zeros(len(score))) for _, xyxy, score, _ in frames]
    start = time.perf_counter()
    outs = []
    for (pts, *_), dets in zip(frames, inputs, strict=True):
        outs.append(tracker.update(dets, pts).track_id)
        tracker.tracks()  # what the rules read each frame
    elapsed = time.perf_counter() - start
    return elapsed, [f[3] for f in frames], outs


def peer() -> Callable[[list], tuple[float, list[np.ndarray], list[np.ndarray]]] | None:
    try:
        import supervision as sv
        from trackers import ByteTrackTracker
    except ImportError:
        return None

    def run_peer(frames: list) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
        tracker = ByteTrackTracker(
            lost_track_buffer=round(CONFIG.max_lost * 30),  # counted in 30 fps frames
            frame_rate=FPS,
            track_activation_threshold=CONFIG.new_track_score,
            minimum_consecutive_frames=CONFIG.min_hits,
            minimum_iou_threshold=CONFIG.match_iou,
            high_conf_det_threshold=CONFIG.high_score,
        )
        inputs = [
            sv.Detections(xyxy=xyxy, confidence=score, class_id=np.zeros(len(score), int), data={"who": who})
            for _, xyxy, score, who in frames
        ]
        start = time.perf_counter()
        outs = [tracker.update(dets, timestamp=pts) for (pts, *_), dets in zip(frames, inputs, strict=True)]
        elapsed = time.perf_counter() - start
        return elapsed, [o.data["who"] for o in outs], [o.tracker_id for o in outs]  # it reorders boxes

    return run_peer


def measure(run: Callable, frames: list) -> dict[str, float]:
    run(frames[:20])  # warm-up
    results = [run(frames) for _ in range(REPEATS)]
    best = min(r[0] for r in results)
    quality = identity_score(results[0][1], results[0][2])
    return {"ms_per_frame": round(best / len(frames) * 1000, 3), **quality}


def main() -> None:
    run_peer = peer()
    rows = []
    for n in SIZES:
        frames = scene(n)
        row = {"boxes": n, "ours": measure(run_ours, frames)}
        if run_peer:
            row["trackers_bytetrack"] = measure(run_peer, frames)
            ratio = row["trackers_bytetrack"]["ms_per_frame"] / row["ours"]["ms_per_frame"]
            row["speed_ratio"] = round(ratio, 2)
        rows.append(row)
        print(json.dumps(row))
    versions = {p: metadata.version(p) for p in ("numpy", "scipy", "supervision", "trackers") if _has(p)}
    result = {
        "machine": {"cpu": _cpu(), "cores": os.cpu_count(), "python": platform.python_version(), **versions},
        "scene": {"frames": FRAMES, "fps": FPS, "size": [WIDTH, HEIGHT], "repeats": REPEATS},
        "config": CONFIG.model_dump(),
        "results": rows,
    }
    out = Path(__file__).with_suffix("")
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(_markdown(result))


def _has(package: str) -> bool:
    try:
        metadata.version(package)
    except metadata.PackageNotFoundError:
        return False
    return True


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Tracker benchmark",
        "",
        "`python benchmarks/track.py`: a synthetic street at 5 fps, 300 frames, jittery boxes, 5% missed,",
        "10% clutter boxes; best of 5 runs. *ids/person* counts distinct track ids per true person",
        "(1.0 is perfect); *with id* is the share of true boxes that carry a track id.",
        "Peer: Roboflow's `trackers` ByteTrackTracker (supervision no longer ships ByteTrack), same",
        "settings (thresholds, min hits, max lost time as timestamps), same boxes, same process.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
        + ", ".join(f"{k} {v}" for k, v in m.items() if k not in ("cpu", "cores", "python")),
        "",
        "| boxes | ours ms/frame | peer ms/frame | peer / ours | ours ids/person | peer ids/person "
        "| ours with id | peer with id |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["results"]:
        o, p = r["ours"], r.get("trackers_bytetrack", {})
        lines.append(
            f"| {r['boxes']} | {o['ms_per_frame']} | {p.get('ms_per_frame', '-')} "
            f"| {r.get('speed_ratio', '-')} | {o['ids_per_person']} | {p.get('ids_per_person', '-')} "
            f"| {o['boxes_with_id']} | {p.get('boxes_with_id', '-')} |"
        )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
