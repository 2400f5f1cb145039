"""CPU per look of the static-object model: main (no drift check), the drift check as merged, this checkout.

The drift check (vision/scene/drift.py) judges every static blob at every look: as merged
(``--merged``) it moved the slow background by 24 sub-pixel shifts each time, even for a bag on
plain ground that no shift explains. This checkout bounds the shifted backgrounds first (the least
and the most of the background within reach) and tries shifts only where enough pixels could match,
stopping at the first that explains the blob. Measured here per look (``StaticObjects.update``, the
default settings, the whole frame, five looks a second of stream time) on real clips where blobs
lie, for the three versions' code in one process (``--main`` and ``--merged`` loaded from git), fed
the same frames in interleaved calls (the order turns each look), each timed with
``time.thread_time`` (OpenCV on one thread, as the pipeline runs it), ROUNDS times over each clip.
``state differs`` counts the looks after which this checkout's model (its arrays and blobs) is not
exactly the merged one's: the verdicts must be the same, only cheaper. Main's differs where the
check heals an edge (it has no check): its cost is the floor the check adds to.

Results go to drift_cost.md and .json beside this file, with the machine and its load average.

Usage: ``PYTHONPATH=$PWD python3 benchmarks/drift_cost.py`` (a few minutes on a loaded machine).
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis_cost import before, same_blobs, same_state  # noqa: E402  (beside this file)
from report import arguments, caveats, machine, machine_line, publish  # noqa: E402

from vision.scene import static_objects  # noqa: E402

MAIN = "753676f"  # main before the drift check
MERGED = "b74d199"  # lead12: main with the drift check as litter14 wrote it (422142b)
ROUNDS = 3
EVERY = 0.2  # seconds of stream time between two looks
FOOTAGE = ROOT.parent / "shared" / "data" / "footage"
CLIPS = {
    "litter": ROOT / "sample_videos" / "litter.mp4",  # a bundle lies there from 10 s
    "bike_parking": ROOT / "sample_videos" / "bike_parking.mp4",
    "parking_lane": FOOTAGE / "parking_lane_topdown_intel.mp4",  # the camera drifts: stall lines' edges
    "highway_jitter": FOOTAGE / "highway_overpass_jitter_boofcv.mp4",  # it shakes: lane markings' edges
    "vtest": FOOTAGE / "vtest.avi",
}
SIDES = ("main", "merged", "new")


def load(ref: str) -> ModuleType:
    """vision/scene/static_objects.py as commit ``ref`` has it, importing that commit's drift.py (main
    has none, and its static_objects does not import one)."""
    drift = sys.modules["vision.scene.drift"]
    with contextlib.suppress(subprocess.CalledProcessError):
        sys.modules["vision.scene.drift"] = before(ref, "vision/scene/drift.py")
    try:
        return before(ref, "vision/scene/static_objects.py")
    finally:
        sys.modules["vision.scene.drift"] = drift


def frames(video: Path) -> list[tuple[float, np.ndarray]]:
    """A frame every EVERY seconds of stream time, BGR."""
    out: list[tuple[float, np.ndarray]] = []
    with av.open(str(video)) as container:
        last = -1.0
        for frame in container.decode(video=0):
            pts = float(frame.time or 0.0)
            if pts - last >= EVERY - 1e-6:
                out.append((pts, frame.to_ndarray(format="bgr24")))
                last = pts
    return out


def rounds(
    modules: dict[str, ModuleType], pictures: list[tuple[float, np.ndarray]], count: int
) -> dict[str, Any]:
    """The three versions' models fed the same frames, interleaved, ``count`` times over the clip; the
    looks at which the merged model judged a blob (its ``shifted_share`` counted) are also timed apart."""
    cpu: dict[str, list[float]] = {side: [] for side in SIDES}
    checked: dict[str, list[float]] = {side: [] for side in SIDES}
    differ = {"main": 0, "new": 0}
    checks = [0]
    share = modules["merged"].shifted_share

    def counted(*args: Any) -> float:
        checks[0] += 1
        return share(*args)

    modules["merged"].shifted_share = counted
    try:
        for _ in range(count):
            models = {
                side: m.StaticObjects(m.StaticObjectsConfig(look_every=0)) for side, m in modules.items()
            }
            for i, (pts, image) in enumerate(pictures):
                found, spent, judged = {}, {}, checks[0]
                for side in SIDES[i % 3 :] + SIDES[: i % 3]:
                    started = time.thread_time()
                    found[side] = models[side].update(image, pts)
                    spent[side] = time.thread_time() - started
                for side in SIDES:
                    cpu[side].append(spent[side])
                    if checks[0] > judged:
                        checked[side].append(spent[side])
                for side in ("main", "new"):
                    same = same_blobs(found[side], found["merged"]) and same_state(
                        models[side], models["merged"]
                    )
                    differ[side] += not same
    finally:
        modules["merged"].shifted_share = share
    return {
        "looks": len(cpu["new"]),
        "looks_judged": len(checked["new"]),
        "blobs_judged": checks[0],
        **{f"{side}_ms": ms(cpu[side]) for side in SIDES},
        **{f"{side}_judged_ms": ms(checked[side]) for side in SIDES},
        "new_vs_merged": ratio(cpu["new"], cpu["merged"]),
        "new_vs_merged_judged": ratio(checked["new"], checked["merged"]),
        "main_state_differs": differ["main"],
        "new_state_differs": differ["new"],
    }


def ms(seconds: list[float]) -> float | None:
    return round(statistics.median(seconds) * 1e3, 3) if seconds else None


def ratio(new: list[float], old: list[float]) -> float | None:
    return round(statistics.median(new) / statistics.median(old), 3) if new and old else None


def markdown(record: dict[str, Any]) -> str:
    lines = [
        "# The camera drift check's cost per look of the static-object model",
        "",
        machine_line(record["machine"], "numpy") + f" OpenCV {record['opencv']} (one thread).",
        "",
        *caveats(record, "Main, merged and new ran in the same interleaved calls: their ratios compare."),
        f"Main: `{record['main']}` (no drift check); merged: `{record['merged']}` (the check as merged); "
        "new: this checkout. Generated by `benchmarks/drift_cost.py`: per look, median `time.thread_time` "
        f"over {record['rounds']} rounds of each clip (default settings, the whole frame, a look every "
        f"{EVERY} s); *judged*: the looks at which the merged model judged at least one blob.",
        "",
        "| clip | looks | looks judged | blobs judged | main ms | merged ms | new ms | new / merged | "
        "judged: main ms | merged ms | new ms | new / merged | looks new != merged | looks main != merged |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in record["clips"].items():
        lines.append(
            f"| {name} | {r['looks']} | {r['looks_judged']} | {r['blobs_judged']} | {r['main_ms']} | "
            f"{r['merged_ms']} | {r['new_ms']} | {r['new_vs_merged']} | {r['main_judged_ms']} | "
            f"{r['merged_judged_ms']} | {r['new_judged_ms']} | **{r['new_vs_merged_judged']}** | "
            f"{r['new_state_differs']} | {r['main_state_differs']} |"
        )
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = arguments(__doc__, ROUNDS)
    parser.add_argument("--only", nargs="*", help="these clips only (a quick check; writes no report)")
    args = parser.parse_args()
    cv2.setNumThreads(1)  # as the pipeline runs OpenCV
    modules = {"main": load(MAIN), "merged": load(MERGED), "new": static_objects}
    record: dict[str, Any] = {
        "machine": machine(),
        "main": MAIN,
        "merged": MERGED,
        "rounds": args.rounds,
        "opencv": cv2.__version__,
        "note": args.note,
        "clips": {},
    }
    for name, clip in CLIPS.items():
        if args.only and name not in args.only:
            continue
        record["clips"][name] = rounds(modules, frames(clip), args.rounds)
        print(name, record["clips"][name], flush=True)
    if not args.only:
        publish("drift_cost", record, markdown, 0.5)


if __name__ == "__main__":
    main()
