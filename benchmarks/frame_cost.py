"""CPU per frame of the analysis stages around the tracker, old code against this checkout's, same calls.

Issue 16's per-frame work other than inference, the rows of benchmarks/ssd_batch.md part 2 that are
neither the tracker nor the litter model: "rules, masks, frame context" (``CameraAnalysis.process``
less what it calls that has its own row), "detection planner" (``Planner.boxes`` and ``observe``),
"heatmap, people's sizes" (``Scene.update`` less the litter model) and "camera views"
(``Pipeline._view``). The sections are benchmarks/stage_cpu.py's (its ``SECTIONS``, each wrapped with
its ``Stages.timed``: ``time.thread_time`` around every call, exclusive of the sections inside it), so
the figures are those rows', measured on the calls alone.

The calls are recorded once from ``Pipeline.run`` (this checkout, embedded SSD) on every video of
the two evaluation suites (the sample scenarios and the shared footage: vtest, the parking lane, the
highway), each as the suite runs it (its own camera config, zones and rules): every ``Planner.boxes``
and ``observe`` and every ``CameraUnit.process`` with its frame (PNG in the recording, decoded before
any timing) and detections (None on a frame the motion gate held). A replay feeds one camera's calls
to a fresh ``CameraUnit`` and ``Planner`` in the recorded order and publishes the camera's view after
each frame, as the pipeline does. Both codes run in this process: the old one is ``--before``'s
``vision`` package copied as ``vision_before`` (its imports renamed), with its own sections. They
take the calls in turn, call by call (which goes first alternating), so a change in the machine's
load falls on both alike.

Every call's outputs must be the same in both codes, bit for bit, or the run stops naming the call:
per frame the tracked detections, the rules' observations and the transitions (event ids numbered in
order: they are random uuids), and the view published after it (zones, plan, frame pts, heatmap grid
bytes and clock); per planner call the boxes and the plan's record; at the end the unit's snapshot
(state and arrays) and the planner's state; and every view's heatmap must still hold, after the
replay, the grid it held when it was published (a view is a snapshot). ``--check`` runs one round
without writing a report.

Usage: ``python benchmarks/frame_cost.py --before DIR [--rounds 5] [--check] [--record]``
(DIR: a checkout of the old code, e.g. ``git worktree add --detach /tmp/before main``).
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import pickle
import re
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent
sys.path.insert(0, str(OUT))

SUITES = (ROOT / "sample_videos" / "suite.yaml", ROOT / "tests" / "footage_suite" / "suite.yaml")
RECORDING = Path(tempfile.gettempdir()) / "frame_cost_calls.pkl"
# stage_cpu's sections that moved, and where an older code has them (before vision/pipeline/ was a package)
MOVED = {
    ("vision.pipeline.worker", "CameraWorker", "view"): ("vision.pipeline", "Pipeline", "_view"),
    ("vision.pipeline.worker", "CameraWorker", "snapshot"): ("vision.pipeline", "CameraWorker", "snapshot"),
}
SHARE = 0.5  # PRELIMINARY above half the cores' load: a replay is one thread
ROWS = ("rules, masks, frame context", "detection planner", "heatmap, people's sizes", "camera views")
CONTEXT = ("tracker", "litter background model", "event lifecycle")  # timed too, not this work's rows


def record(path: Path) -> dict[str, dict[str, Any]]:
    """Every camera's planner and unit calls in ``Pipeline.run``, each suite video run as the suite
    runs it (its own pipeline)."""
    from vision.camera.unit import CameraUnit
    from vision.detect.detector import Detector
    from vision.detect.planner import Planner
    from vision.evaluate.replay import camera_name
    from vision.evaluate.suite import load_suite
    from vision.pipeline import Pipeline
    from vision.store import Store

    calls: dict[str, list[tuple[Any, ...]]] = {}
    planners: dict[int, str] = {}
    boxes, observe, process, for_camera = (
        Planner.boxes,
        Planner.observe,
        CameraUnit.process,
        Planner.for_camera,
    )

    def named(cls: type, *args: Any, **kwargs: Any) -> Planner:
        planner = for_camera(*args, **kwargs)
        planners[id(planner)] = current
        return planner

    def recorded_boxes(self: Planner, width: int, height: int) -> np.ndarray | None:
        calls[planners[id(self)]].append(("boxes", width, height))
        return boxes(self, width, height)

    def recorded_observe(self: Planner, detections: Any, width: int, height: int) -> None:
        calls[planners[id(self)]].append(("observe", detections, width, height))
        observe(self, detections, width, height)

    def recorded_process(self: CameraUnit, frame: Any, detections: Any) -> Any:
        png = cv2.imencode(".png", frame.image)[1].tobytes()
        calls[self.camera_id].append(("process", frame.pts, png, detections))
        return process(self, frame, detections)

    out: dict[str, dict[str, Any]] = {}
    Planner.boxes, Planner.observe = recorded_boxes, recorded_observe  # type: ignore[method-assign]
    CameraUnit.process = recorded_process  # type: ignore[method-assign]
    Planner.for_camera = classmethod(named)  # type: ignore[method-assign, assignment]
    try:
        for suite in SUITES:
            for video in load_suite(suite).videos:
                current = camera_name(video.path)
                calls[current] = []
                with tempfile.TemporaryDirectory() as tmp:
                    config = video.truth.to_config(current, Path(tmp))
                    detector = Detector.from_config(config.detector)
                    store = Store(Path(tmp))
                    Pipeline(config, detector, store).run()
                    store.close()
                out[current] = {
                    "camera": config.cameras[current],
                    "events": config.events,
                    "names": detector.names,
                    "card": detector.card,
                    "calls": calls[current],
                }
                print(f"recorded {current}: {len(calls[current])} calls", flush=True)
    finally:
        Planner.boxes, Planner.observe, CameraUnit.process = boxes, observe, process  # type: ignore[method-assign]
        Planner.for_camera = classmethod(for_camera.__func__)  # type: ignore[method-assign, attr-defined]
    path.write_bytes(pickle.dumps(out))
    return out


def canon(value: Any) -> Any:
    """A value as nested tuples of plain values, arrays as (dtype, shape, bytes): equal exactly when
    the values are the same bit for bit (whatever objects hold them)."""
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, np.ascontiguousarray(value).tobytes())
    if isinstance(value, np.generic):
        return ("scalar", value.dtype.str, value.tobytes())
    if isinstance(value, dict):
        return ("dict", tuple((canon(k), canon(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(canon(v) for v in value))
    if hasattr(value, "__dataclass_fields__"):
        return (
            type(value).__name__,
            tuple((f, canon(getattr(value, f))) for f in value.__dataclass_fields__),
        )
    if isinstance(value, float):
        return ("float", float(value).hex())
    return (type(value).__name__, repr(value))


def digest(value: Any) -> str:
    return hashlib.sha256(repr(canon(value)).encode()).hexdigest()[:16]


def old_package(checkout: Path, into: Path) -> str:
    """``checkout``'s vision package copied into ``into`` as ``vision_before`` (its imports renamed), so
    both codes run in this process; its name."""
    for source in (checkout / "vision").rglob("*.py"):
        target = into / "vision_before" / source.relative_to(checkout / "vision")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(re.sub(r"\b(from|import) vision\b", r"\1 vision_before", source.read_text()))
    sys.path.insert(0, str(into))
    return "vision_before"


class Code:
    """One code's classes, and the CPU of its calls by stage_cpu's sections."""

    def __init__(self, package: str) -> None:
        from stage_cpu import SECTIONS, Stages

        def module(name: str) -> Any:
            return importlib.import_module(f"{package}.{name}")

        self.unit, self.planner = module("camera.unit").CameraUnit, module("detect.planner").Planner
        self.frame, self.detections = module("types").Frame, module("types").Detections
        self.config, self.card = module("config"), module("detect.card")
        self.lifecycle = module("events.lifecycle")  # its event ids, made in order here (Camera.call)
        self.stages = Stages()
        for section in SECTIONS:  # as stage_cpu.installed wraps them, in this package
            name, cls, method, stage = section
            try:
                owner = getattr(module(name.removeprefix("vision.")), cls)
            except (ModuleNotFoundError, AttributeError):  # an older code: where the section was then
                name, cls, method = MOVED[section[:3]]
                owner = getattr(module(name.removeprefix("vision.")), cls)
            raw = owner.__dict__.get(method)
            if isinstance(raw, staticmethod):
                setattr(owner, method, staticmethod(self.stages.timed(stage, raw.__func__)))
            elif raw is not None:
                setattr(owner, method, self.stages.timed(stage, raw))
        pipeline = module("pipeline")  # a camera's view: the worker's own, or (older codes) the pipeline's
        self.view = getattr(pipeline.Pipeline, "_view", None) or module("pipeline.worker").CameraWorker.view

    def seconds(self) -> dict[str, float]:
        """CPU seconds by section so far (this thread's)."""
        return dict(self.stages._mine()[0].sections)

    def boxes(self, found: Any) -> Any:
        """Recorded detections as this code's (its own class, the same arrays)."""
        if found is None:
            return None
        return self.detections(found.xyxy, found.score, found.class_id, found.track_id, dict(found.data))


class Camera:
    """One camera's unit and planner in one code, fed the recorded calls; each call's outputs' digest."""

    def __init__(self, code: Code, camera_id: str, spec: dict[str, Any]) -> None:
        self.code, self.camera_id = code, camera_id
        camera = code.config.CameraConfig.model_validate(spec["camera"].model_dump())
        events = code.config.EventsConfig.model_validate(spec["events"].model_dump())
        card = code.card.ModelCard.model_validate(spec["card"].model_dump())
        self.numbers = itertools.count(1)
        self.unit = code.unit(camera_id, camera, spec["names"], events)
        scene = self.unit.analysis.scene
        self.planner = code.planner.for_camera(camera.detect_regions, scene.zones, scene.ground, card, 0)
        self.worker = SimpleNamespace(camera_id=camera_id, unit=self.unit, regions=self.planner)
        analyse = self.unit.analysis.process
        self.seen: list[Any] = []

        def observed(*args: Any) -> Any:  # the rules' observations, kept for the digest
            tracked, observations = analyse(*args)
            self.seen[:] = observations
            return tracked, observations

        self.unit.analysis.process = observed  # the class's (timed) method inside
        self.views: list[tuple[Any, str]] = []

    def call(self, call: tuple[Any, ...], image: np.ndarray | None, boxes: Any) -> str:
        """One recorded call (its detections already this code's ``boxes``); its outputs' digest."""
        if call[0] == "boxes":
            found = self.planner.boxes(call[1], call[2])
            return digest((found, self.planner.plan.to_record()))
        if call[0] == "observe":
            self.planner.observe(boxes, call[2], call[3])
            return ""
        # event ids in order (uuids are random), in the lifecycle only: numba takes uuid4s for the names of
        # the cache files it writes when a code compiles its kernels, which the other code may not do then
        ids = SimpleNamespace(uuid4=lambda: uuid.UUID(int=next(self.numbers)))
        self.code.lifecycle.uuid = ids  # type: ignore[attr-defined]
        tracked, transitions = self.unit.process(self.code.frame(self.camera_id, call[1], image), boxes)
        view = self.code.view(self.worker)
        heat = view.heatmap
        grid = None if heat is None else (heat.grid, heat.last_pts)
        self.views.append((view, digest(grid)))
        shown = (view.camera_id, view.active_zones, view.detection, view.frame.pts, grid)
        return digest((tracked, self.seen, transitions, shown))

    def end(self) -> str:
        """The unit's snapshot and the planner's state; every view's heatmap as it was published."""
        changed = sum(digest((v.heatmap.grid, v.heatmap.last_pts)) != d for v, d in self.views if v.heatmap)
        if changed:
            raise SystemExit(f"{self.camera_id}: {changed} views' heatmaps changed after they were published")
        snapshot = self.unit.snapshot()
        return digest((snapshot.state, snapshot.arrays, self.planner.state()))


def replay(codes: dict[str, Code], camera_id: str, spec: dict[str, Any], images: list[np.ndarray]) -> int:
    """One camera's calls on both codes, call by call (alternating which goes first); exit at the first
    call whose outputs differ. Returns the outputs compared."""
    cameras = {label: Camera(code, camera_id, spec) for label, code in codes.items()}
    frames = iter(images)
    compared = 0
    for i, call in enumerate(spec["calls"]):
        image = next(frames) if call[0] == "process" else None
        found = {"process": call[-1], "observe": call[1]}.get(call[0])  # the call's detections
        order = list(cameras) if i % 2 == 0 else list(cameras)[::-1]
        out = {label: cameras[label].call(call, image, codes[label].boxes(found)) for label in order}
        if out["old"] != out["new"]:
            raise SystemExit(f"{camera_id}: call {i} ({call[0]}) gives other outputs")
        compared += bool(out["new"])
    if cameras["old"].end() != cameras["new"].end():
        raise SystemExit(f"{camera_id}: the snapshots at the end differ")
    return compared + 1


def rounds(codes: dict[str, Code], recording: dict[str, Any], count: int) -> dict[str, Any]:
    """``count`` rounds of every camera on both codes: each round's CPU seconds by section per code,
    and the outputs compared (all identical, else the run has ended)."""
    import cv2 as opencv

    opencv.setNumThreads(1)  # as the pipeline runs OpenCV
    per_round: dict[str, list[dict[str, float]]] = {label: [] for label in codes}
    cameras: dict[str, dict[str, int]] = {}
    for camera_id, spec in recording.items():  # each camera's frames decoded once, outside every timer
        images = [
            opencv.imdecode(np.frombuffer(c[2], np.uint8), opencv.IMREAD_COLOR)
            for c in spec["calls"]
            if c[0] == "process"
        ]
        for r in range(count):
            before = {label: code.seconds() for label, code in codes.items()}
            compared = replay(codes, camera_id, spec, images)
            for label, code in codes.items():
                now = code.seconds()
                spent = {k: now.get(k, 0.0) - before[label].get(k, 0.0) for k in ROWS + CONTEXT}
                if len(per_round[label]) <= r:
                    per_round[label].append(dict.fromkeys(ROWS + CONTEXT, 0.0))
                for k, v in spent.items():
                    per_round[label][r][k] += v
        cameras[camera_id] = {"frames": len(images), "outputs_identical": compared}
        print(camera_id, cameras[camera_id], flush=True)
    return {"cameras": cameras, "rounds": per_round}


def markdown(result: dict[str, Any]) -> str:
    from report import caveats, machine_line

    lines = [
        "# CPU per frame of the rules, the planner, the heatmap and the camera views: old code and new",
        "",
        machine_line(result["machine"], "numpy") + f" OpenCV {result['opencv']} (one thread).",
        "",
        *caveats(result),
        f"Old: `{result['before']}`; new: this checkout. Generated by `benchmarks/frame_cost.py`: the "
        f"recorded calls of {result['frames']} analysed frames on {len(result['cameras'])} cameras (every "
        "video of both evaluation suites, each with its own zones and rules) replayed on both codes in one "
        f"process, call by call in turn, {result['rounds']} rounds; CPU ms per analysed frame (each "
        "section's `time.thread_time`, exclusive of the sections inside it: benchmarks/stage_cpu.py's "
        "sections), median over the rounds.",
        "",
        "**Same outputs, bit for bit**, in every round (`--check`: one round alone): on every camera, "
        "every frame's tracked detections, observations and transitions, every planner call's boxes and "
        "plan, every view (zones, plan, frame, heatmap grid and clock), the unit's snapshot and the "
        "planner's state at the end; and no view's heatmap changed after it was published.",
        "",
        "| camera | analysed frames | outputs compared, all identical |",
        "|---|---|---|",
        *[f"| {k} | {v['frames']} | {v['outputs_identical']} |" for k, v in result["cameras"].items()],
        "",
        "| section | old ms per frame | new ms per frame | new / old |",
        "|---|---|---|---|",
    ]
    for name in (*ROWS, "these four rows", *CONTEXT):
        old, new = result["old_ms"][name], result["new_ms"][name]
        bold = "**" if name in (*ROWS, "these four rows") else ""
        lines.append(f"| {name} | {old:.3f} | {new:.3f} | {bold}{new / old:.2f}{bold} |")
    lines += [
        "",
        "(tracker, litter background model, event lifecycle: the other sections the same calls run in)",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    from report import arguments, machine, publish

    parser = arguments(__doc__, rounds=5)
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the old code")
    parser.add_argument("--check", action="store_true", help="only check the two codes' outputs are the same")
    parser.add_argument("--record", action="store_true", help=f"record again even if {RECORDING} exists")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.record or not RECORDING.exists():
        record(RECORDING)
    recording = pickle.loads(RECORDING.read_bytes())
    started = machine()
    with tempfile.TemporaryDirectory() as tmp:
        codes = {"old": Code(old_package(args.before.resolve(), Path(tmp))), "new": Code("vision")}
        found = rounds(codes, recording, 1 if args.check else args.rounds)
    if args.check:
        return
    frames = sum(c["frames"] for c in found["cameras"].values())
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=args.before, capture_output=True, text=True
    )
    result: dict[str, Any] = {
        "machine": started,
        "note": args.note,
        "before": head.stdout.strip(),
        "opencv": cv2.__version__,
        "rounds": args.rounds,
        "frames": frames,
        "cameras": found["cameras"],
        "all_rounds_s": found["rounds"],
    }
    for label, per_round in found["rounds"].items():
        for r in per_round:
            r["these four rows"] = sum(r[k] for k in ROWS)
        result[f"{label}_ms"] = {
            k: float(np.median([r[k] for r in per_round])) * 1000 / frames for k in per_round[0]
        }
    publish("frame_cost", result, markdown, SHARE)


if __name__ == "__main__":
    main()
