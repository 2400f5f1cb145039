"""CPU per call of the analysis side's costly parts (issue 16): this checkout against an older commit.

At the quiet capacity run (64 static SSD cameras, benchmarks/capacity_ssd_static_gst_sub_rest.md)
the litter rule's background model (vision/scene/static_objects.py) cost 4.4 ms of CPU per detected
frame and the checkpoints of its arrays 1.4 ms. This measures both per call, in one process, for
the code of this checkout ("new") and of ``--before`` ("old": vision/scene/static_objects.py, the
blobs and drift check it calls, vision/scene/static_blobs.py and drift.py, and
vision/camera/packing.py as that commit has them, loaded from git), on the same frames, in
interleaved calls, each timed with ``time.thread_time`` (CPU of the calling thread; OpenCV on one
thread, as the pipeline sets it):

- a *look*: ``StaticObjects.update`` for one zone's model, one frame a second of stream time (the
  default ``static_objects.look_every``), for every zone with a litter rule of every video of both
  evaluation suites. Each video twice: as it is, and as a 640x360 substream (the capacity run's
  detection stream) with its zones over the whole frame (the capacity run's zone). Each model at
  the scale it would have before the people's size is known (``work_width``) and once it is known
  (``person_px``: a person an eighth of the frame's height tall), and the whole factor a model's box
  is shrunk by near that scale (vision/scene/static_config.py). Old and new models see the same
  frames; ``blobs differ`` counts the looks at which they found other blobs (boxes, timers).
- a *checkpoint*: the arrays a camera's checkpoint holds for these models after the video (each
  model's ``arrays()`` and the heatmap's grid), packed by the old and the new code, ROUNDS times
  interleaved; the time per checkpoint, its size, and whether the new model restored from it
  (``load_arrays``) holds every array as the model did.

Results go to analysis_cost.md and .json beside this file, with the machine and its load average
(a busy shared machine inflates every time; old and new are measured in the same rounds).

Usage: ``PYTHONPATH=$PWD python3 benchmarks/analysis_cost.py [--before REF]`` (about a minute).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import arguments, caveats, machine, machine_line, publish  # noqa: E402  (beside this file)

from vision.camera import packing  # noqa: E402
from vision.evaluate.suite import load_suite  # noqa: E402
from vision.geometry import box_of  # noqa: E402
from vision.scene import static_objects  # noqa: E402

SUITES = (ROOT / "sample_videos" / "suite.yaml", ROOT / "tests" / "footage_suite" / "suite.yaml")
BEFORE = "7246429"  # integ8 when this benchmark was written: the code before issue 16's analysis work
SUBSTREAM = (640, 360)
WHOLE = (0.0, 0.0, 1.0, 1.0)
ROUNDS = 15
# the modules whose code is compared (the model's blobs, and their drift check, as the old commit has them)
OLD = (("scene", "drift"), ("scene", "static_blobs"), ("scene", "static_objects"), ("camera", "packing"))
STATE = ("fast", "slow", "timer", "arrived", "seen", "unsure")


def before(ref: str, path: str) -> ModuleType:
    """The module at ``path`` as commit ``ref`` has it, loaded under another name."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{ref}:{path}"], capture_output=True, text=True, check=True
    ).stdout
    name = "before_" + path.removesuffix(".py").replace("/", "_")
    module = ModuleType(name)
    sys.modules[name] = module  # dataclasses look their module up
    exec(compile(source, f"{ref}:{path}", "exec"), module.__dict__)
    return module


def uses(module: ModuleType, other: ModuleType, name: str) -> None:
    """Point what ``module`` imported from ``name`` (this checkout's) at ``other`` (the old code's)."""
    for key, value in vars(module).items():
        if getattr(value, "__module__", None) == name and hasattr(other, key):
            setattr(module, key, getattr(other, key))


def frames(video: Path, substream: bool) -> list[tuple[float, np.ndarray]]:
    """One frame a second of stream time (the looks' cadence), BGR; as a 640x360 substream if asked."""
    out: list[tuple[float, np.ndarray]] = []
    with av.open(str(video)) as container:
        first = None
        for frame in container.decode(video=0):
            pts = float(frame.time or 0.0)
            first = pts if first is None else first
            if out and pts - first < len(out):
                continue
            image = frame.to_ndarray(format="bgr24")
            if substream:
                image = cv2.resize(image, SUBSTREAM, interpolation=cv2.INTER_AREA)
            out.append((pts - first, image))
    return out


def same_blobs(a: Any, b: Any) -> bool:
    return (
        len(a) == len(b)
        and np.array_equal(a.xyxy, b.xyxy)
        and np.array_equal(a.static_seconds, b.static_seconds)
    )


def same_state(a: Any, b: Any) -> bool:
    for name in STATE:
        x, y = getattr(a, name), getattr(b, name)
        if (x is None) != (y is None) or (x is not None and not np.array_equal(x, y, equal_nan=True)):
            return False
        if x is not None and x.dtype != y.dtype:
            return False
    return a.coarse == b.coarse and a.scale == b.scale and a.last_pts == b.last_pts


def looks(
    old: dict[str, ModuleType],
    pictures: list[tuple[float, np.ndarray]],
    regions: dict[str, tuple[float, ...]],
    sized: bool,
) -> dict[str, Any]:
    """Every region's old and new model fed the same frames, interleaved; per-look CPU."""
    models = {
        side: {z: module.StaticObjects(module.StaticObjectsConfig(), None, r, z) for z, r in regions.items()}
        for side, module in (("old", old["static_objects"]), ("new", static_objects))
    }
    cpu: dict[str, list[float]] = {"old": [], "new": []}
    differ = moved = 0  # looks with other blobs; looks after which the models' arrays differ
    for i, (pts, image) in enumerate(pictures):
        person = image.shape[0] / 8 if sized else None
        found = {}
        for side in ("old", "new") if i % 2 == 0 else ("new", "old"):
            blobs = []
            for model in models[side].values():
                started = time.thread_time()
                blobs.append(model.update(image, pts, person))
                cpu[side].append(time.thread_time() - started)
            found[side] = blobs
        differ += not all(same_blobs(a, b) for a, b in zip(found["old"], found["new"], strict=True))
        moved += not all(same_state(models["old"][z], models["new"][z]) for z in regions)
    shapes = [list(m.fast.shape) for m in models["new"].values() if m.fast is not None]
    return {
        "scale": [round(m.scale, 3) for m in models["new"].values() if m.scale is not None],
        # the whole factor the new model shrinks by (vision/scene/static_config.py), 0: the scale as it is
        "factor": [
            int(m.step[0]) if m.scale < 1 and m.step[0] == m.step[1] and float(m.step[0]).is_integer() else 0
            for m in models["new"].values()
            if m.scale is not None
        ],
        "analysis_px": shapes,
        "looks": len(cpu["new"]),
        "blobs_differ": differ,
        "state_differs": moved,
        "old_ms": round(statistics.median(cpu["old"]) * 1e3, 2),
        "new_ms": round(statistics.median(cpu["new"]) * 1e3, 2),
        "old_mean_ms": round(statistics.mean(cpu["old"]) * 1e3, 2),
        "new_mean_ms": round(statistics.mean(cpu["new"]) * 1e3, 2),
        "ratio": round(statistics.median(cpu["new"]) / statistics.median(cpu["old"]), 3),
        "checkpoint": checkpoint(models, regions, old["packing"].pack),
    }


def checkpoint(
    models: dict[str, dict[str, Any]],
    regions: dict[str, tuple[float, ...]],
    old_pack: Callable[[dict[str, np.ndarray]], bytes],
) -> dict[str, Any]:
    """The models' checkpoint arrays (and a heatmap grid) packed by old and new code, ROUNDS interleaved."""
    grid = np.zeros((72, 96), np.float32)
    grid[30:40, 20:60] = 0.75  # people went there

    def arrays(side: str) -> dict[str, np.ndarray]:
        out = {f"static.{z}:{k}": v for z, m in models[side].items() for k, v in m.arrays().items()}
        return out | {"heatmap.grid": grid, "heatmap.last_pts": np.array(1.0)}

    cpu: dict[str, list[float]] = {"old": [], "new": []}
    data: dict[str, bytes] = {}
    for _ in range(ROUNDS):
        for side, pack in (("old", old_pack), ("new", packing.pack)):
            started = time.thread_time()
            data[side] = pack(arrays(side))
            cpu[side].append(time.thread_time() - started)
    back = packing.unpack(data["new"])
    exact = True
    for zone, model in models["new"].items():
        restored = static_objects.StaticObjects(model.cfg, None, regions[zone], zone)
        mine = {k.split(":", 1)[1]: v for k, v in back.items() if k.startswith(f"static.{zone}:")}
        exact &= restored.load_arrays(mine) and same_state(model, restored)
    return {
        "old_ms": round(statistics.median(cpu["old"]) * 1e3, 2),
        "new_ms": round(statistics.median(cpu["new"]) * 1e3, 2),
        "old_kB": round(len(data["old"]) / 1e3, 1),
        "new_kB": round(len(data["new"]) / 1e3, 1),
        "ratio": round(statistics.median(cpu["new"]) / statistics.median(cpu["old"]), 3),
        "restores_exactly": bool(exact),
    }


def scaled(scale: float, factor: int) -> str:
    """A model's wanted scale, and the whole factor its box is shrunk by where it has one."""
    return f"{scale} (1/{factor})" if factor else str(scale)


def markdown(record: dict[str, Any]) -> str:
    lines = [
        "# Analysis cost per call: the litter background model's look and its checkpoint",
        "",
        machine_line(record["machine"], "numpy") + f" OpenCV {record['opencv']} (one thread).",
        "",
        *caveats(
            record,
            "Per-thread CPU time is less load-sensitive than wall time but not immune: the ratios, old and "
            "new in the same interleaved calls, are what compare.",
        ),
        f"Old: `{record['before']}` (`git show`); new: this checkout. Generated by "
        "`benchmarks/analysis_cost.py`; medians of `time.thread_time` per call.",
        "",
        "## A look (StaticObjects.update, one zone), one a second of each video",
        "",
        "| video | frame | people's size | scale wanted (new: shrunk by) | new analysis px | looks | old ms "
        "| new ms | new / old "
        "| old / new mean ms | looks with other blobs | looks after which the arrays differ |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in record["runs"]:
        lines.append(
            f"| {r['video']} | {r['frame']} | {'known' if r['sized'] else 'not yet'} | "
            f"{', '.join(map(scaled, r['scale'], r.get('factor', [0] * len(r['scale']))))} | "
            f"{', '.join(f'{w}x{h}' for h, w in r['analysis_px'])} | "
            f"{r['looks']} | {r['old_ms']} | {r['new_ms']} | **{r['ratio']}** | "
            f"{r['old_mean_ms']} / {r['new_mean_ms']} | {r['blobs_differ']} | {r['state_differs']} |"
        )
    lines += [
        "",
        f"## A checkpoint of those models' arrays (and a heatmap), {ROUNDS} rounds",
        "",
        "| video | frame | people's size | old ms, kB | new ms, kB | new / old time | restores exactly |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in record["runs"]:
        c = r["checkpoint"]
        lines.append(
            f"| {r['video']} | {r['frame']} | {'known' if r['sized'] else 'not yet'} | {c['old_ms']}, "
            f"{c['old_kB']} | {c['new_ms']}, {c['new_kB']} | **{c['ratio']}** | "
            f"{'yes' if c['restores_exactly'] else '**no**'} |"
        )
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--before", default=BEFORE, help="the commit whose code is 'old'")
    parser.add_argument("--only", nargs="*", help="these videos only (a quick check; writes no report)")
    args = parser.parse_args()
    cv2.setNumThreads(1)  # as the pipeline runs OpenCV
    old = {name: before(args.before, f"vision/{path}/{name}.py") for path, name in OLD}
    uses(old["static_blobs"], old["drift"], "vision.scene.drift")
    uses(old["static_objects"], old["static_blobs"], "vision.scene.static_blobs")
    record: dict[str, Any] = {
        "machine": machine(),
        "before": args.before,
        "opencv": cv2.__version__,
        "note": args.note,
    }
    runs = []
    for suite in SUITES:
        for video in load_suite(suite).videos:
            zones = {
                name: box_of(np.asarray(zone.polygon, np.float64))
                for name, zone in video.truth.camera.zones.items()
                if zone.rules.litter is not None
            }
            if not zones or (args.only and video.name not in args.only):
                continue
            for substream in (False, True):
                pictures = frames(video.truth.video, substream)
                regions = {"whole": WHOLE} if substream else zones
                frame = "x".join(map(str, pictures[0][1].shape[1::-1]))
                for sized in (False, True):
                    run = looks(old, pictures, regions, sized)
                    runs.append({"video": video.name, "frame": frame, "sized": sized, **run})
                    print(video.name, frame, sized, run, flush=True)
    record["runs"] = runs
    if args.only:
        return
    publish("analysis_cost", record, markdown, 0.5)


if __name__ == "__main__":
    main()
