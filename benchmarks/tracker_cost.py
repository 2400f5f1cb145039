"""CPU cost of the tracker alone, old code against this checkout's, on the same recorded calls.

The pipeline's tracker calls (``update`` with a frame's detections, also on frames the motion gate
kept from the detector, whose last detections are given again; ``tracks`` after each) are recorded
once from ``Pipeline.run`` on five file cameras (embedded SSD, detect_fps 5): the three sample videos
(capacity_profile's cameras) and the shared footage's vtest and parking lane, with each call's frame
(PNG in the recording, decoded once before any replay: the tracker takes the frame for the looks of
its boxes, vision/track/appearance.py), then replayed on a fresh tracker per camera: the old code
(``vision/track`` of ``--before``, a git commit, loaded under another package name) and this
checkout's, in alternating rounds of the same process. Per-thread CPU time (``time.thread_time``),
summed over the calls, per detected frame. Before any timing, every replay's outputs (track ids of
each update, every track table's columns) must be the same in both codes, at the defaults and with
the appearance check off (``appearance_distance`` 1): ids and integers exactly, floats within
``TOLERANCE``; else the run fails naming the first difference. ``--check`` runs that check alone
(the proof that a change of the tracker's code left its tracks as they were).

``--beside``: also this checkout's replay beside the company it has in the pipeline, a thread running
the detector on a frame in a loop (ONNX Runtime on every core, as the inference thread) and a thread
running Python code (as readers and lanes do), each in turn, in alternating rounds with the replay
alone: why the tracker costs more CPU per frame in benchmarks/ssd_batch.md part 2 (stage_cpu's
"tracker": the same calls) than here, where it runs alone.

Usage: ``python benchmarks/tracker_cost.py [--before 9033cc5] [--rounds 7] [--check] [--profile] [--beside]``
"""

from __future__ import annotations

import cProfile
import importlib
import inspect
import io
import pickle
import pstats
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(OUT))

from capacity_profile import config as camera_config  # noqa: E402
from report import arguments, caveats, machine, machine_line, publish  # noqa: E402

from vision.types import Detections  # noqa: E402

SHARE = 0.5  # PRELIMINARY above half the cores' load: a replay is one thread
TOLERANCE = 1e-6  # largest float difference allowed between the two codes' outputs
RECORDING = Path(tempfile.gettempdir()) / "tracker_calls_footage.pkl"
FOOTAGE = {
    "vtest": ROOT.parent / "shared" / "data" / "footage" / "vtest.avi",
    "parking": ROOT.parent / "shared" / "data" / "footage" / "parking_lane_topdown_intel.mp4",
}
TABLE = ("track_id", "class_id", "first_seen", "last_seen", "hits", "streak", "box", "predicted",
         "stationary_since", "history_times", "history_boxes", "history_scores", "median_score")  # fmt: skip


def cameras(data: Path) -> dict[str, Any]:
    """The recorded run's config: capacity_profile's three sample cameras, and the shared footage's
    vtest (a crowded plaza) and parking lane (cars crossing), each watched whole."""
    config = camera_config(3, data)
    config["detector"]["classes"] = [*config["detector"]["classes"], "car"]
    whole = {"all": {"polygon": [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]}}
    for name, clip in FOOTAGE.items():
        config["cameras"][name] = {"url": str(clip), "detect_fps": 5, "zones": whole}
    return config


def record(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every tracker call of ``Pipeline.run`` on :func:`cameras`, per camera, with its frame
    (PNG: lossless, a tenth of the raw frames' size)."""
    from vision.camera.analysis import CameraAnalysis
    from vision.config import parse_config
    from vision.detect.detector import Detector
    from vision.pipeline import Pipeline
    from vision.store import Store
    from vision.track.tracker import Tracker

    calls: dict[int, list[tuple[Any, ...]]] = {}
    names: dict[int, str] = {}  # id of each camera's tracker -> the camera
    update, start = Tracker.update, CameraAnalysis.__init__

    def named(self: CameraAnalysis, camera_id: str, *args: Any) -> None:
        start(self, camera_id, *args)
        names[id(self.tracker)] = camera_id

    def recorded_update(
        self: Tracker, detections: Detections, pts: float, image: np.ndarray | None = None
    ) -> Detections:
        d = detections
        if image is None:
            raise SystemExit("the pipeline gave the tracker no frame: nothing to record its looks from")
        png = cv2.imencode(".png", image)[1].tobytes()
        calls.setdefault(id(self), []).append(
            ("update", pts, d.xyxy.copy(), d.score.copy(), d.class_id.copy(), png)
        )
        return update(self, detections, pts, image)

    Tracker.update = recorded_update  # type: ignore[method-assign]
    CameraAnalysis.__init__ = named  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = parse_config(yaml.safe_dump(cameras(Path(tmp) / "data")))
            store = Store(config.storage.data_dir, "tracker")
            Pipeline(config, Detector.from_config(config.detector), store).run()
            store.close()
    finally:
        Tracker.update = update  # type: ignore[method-assign]
        CameraAnalysis.__init__ = start  # type: ignore[method-assign]
    out = {names[key]: c for key, c in sorted(calls.items(), key=lambda kv: names[kv[0]])}
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


def takes_frames(tracker_cls: type) -> bool:
    """Whether this code's ``update`` takes the frame (the old code of an earlier commit may not)."""
    return "image" in inspect.signature(tracker_cls.update).parameters


def replay(
    tracker_cls: type, config: Any, calls: list[tuple[Any, ...]], keep: bool
) -> tuple[float, list[Any]]:
    """CPU seconds of one camera's calls on a fresh tracker, and (if ``keep``) every output."""
    tracker = tracker_cls(config)
    frames = takes_frames(tracker_cls)
    outputs: list[Any] = []
    spent = 0.0
    for call in calls:
        dets = Detections.from_arrays(call[2], call[3], call[4])
        start = time.thread_time()
        out = tracker.update(dets, call[1], call[5]) if frames else tracker.update(dets, call[1])
        table = tracker.tracks()
        spent += time.thread_time() - start
        if keep:
            outputs.append(out.track_id)
            outputs.append([getattr(table, name) for name in TABLE])
    return spent, outputs


def busy(kind: str, stop: threading.Event) -> None:
    """Keep a core busy until ``stop``: ``inference`` (the detector on a sample frame, in a loop) or
    ``python`` (pure Python, holding the GIL between its switches)."""
    if kind == "inference":
        import cv2

        from vision.detect.card import load_card
        from vision.detect.detector import Detector

        detector = Detector(load_card("default"), min_score=0.4)
        capture = cv2.VideoCapture(str(ROOT / "sample_videos" / "plaza.mp4"))
        frame = capture.read()[1]
        while not stop.is_set():
            detector.detect([frame])
    else:
        count = 0
        while not stop.is_set():
            count += 1


def beside(tracker_cls: type, config: Any, recording: dict[str, list[tuple[Any, ...]]], rounds: int) -> dict:
    """CPU seconds of a whole replay alone and beside each kind of :func:`busy` thread, ``rounds`` each,
    in turn."""
    seconds: dict[str, list[float]] = {"alone": [], "beside inference": [], "beside Python": []}
    for _ in range(rounds):
        for label in seconds:
            stop = threading.Event()
            company = None
            if label != "alone":
                kind = "inference" if label.endswith("inference") else "python"
                company = threading.Thread(target=busy, args=(kind, stop), daemon=True)
                company.start()
                time.sleep(2.0 if kind == "inference" else 0.2)  # the detector loaded and running
            seconds[label].append(
                sum(replay(tracker_cls, config, c, keep=False)[0] for c in recording.values())
            )
            stop.set()
            if company is not None:
                company.join()
    return seconds


def decoded(recording: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """The recording with each call's frame decoded, once for the whole run (outside every timer)."""
    return {
        name: [(*c[:5], cv2.imdecode(np.frombuffer(c[5], np.uint8), cv2.IMREAD_COLOR)) for c in calls]
        for name, calls in recording.items()
    }


def track_ids(outputs: list[Any]) -> int:
    """How many track ids a replay gave (its outputs: each update's ids, then its table)."""
    return len({int(i) for ids in outputs[::2] for i in ids if i >= 0})


def compare(before: list[Any], after: list[Any]) -> tuple[str | None, float]:
    """Where two replays' outputs first differ (ids and ints exactly, floats within ``TOLERANCE``
    absolute, NaN in the same places), None if nowhere; and the largest absolute float difference."""
    worst = 0.0
    for k, (a, b) in enumerate(zip(before, after, strict=True)):
        pairs = [(a, b, "track ids")] if isinstance(a, np.ndarray) else list(zip(a, b, TABLE, strict=True))
        for x, y, name in pairs:
            if x.shape != y.shape or x.dtype != y.dtype:
                return f"output {k}, {name}: shape/dtype {x.shape} {x.dtype} vs {y.shape} {y.dtype}", worst
            if x.dtype.kind != "f":
                if not np.array_equal(x, y):
                    return f"output {k}, {name}: {x} vs {y}", worst
                continue
            if not np.array_equal(np.isnan(x), np.isnan(y)):
                return f"output {k}, {name}: NaN in different places", worst
            if x.size:
                worst = max(worst, float(np.nanmax(np.abs(x.astype(np.float64) - y), initial=0.0)))
            if worst > TOLERANCE:
                return f"output {k}, {name}: {x} vs {y}", worst
    return None, worst


def check(codes: dict[str, tuple[type, Any]], blind: dict[str, Any], recording: dict[str, list]) -> dict:
    """Replay every camera on both codes at the defaults and with the appearance check off (``blind``:
    each code's config); exit naming the first difference, else each camera's ids and largest float
    difference."""
    worst, ids = 0.0, {}
    for name, calls in recording.items():
        for configs in ({k: cfg for k, (_, cfg) in codes.items()}, blind):
            outs = {
                label: replay(cls, configs[label], calls, keep=True)[1] for label, (cls, _) in codes.items()
            }
            where, largest = compare(outs["before"], outs["after"])
            if where is not None:
                raise SystemExit(f"tracks differ on {name}: {where}")
            worst = max(worst, largest)
        ids[name] = track_ids(outs["after"])  # with the check off: the last configs
    return {"max_abs_float_difference": worst, "track_ids_check_off": ids}


def profiled(
    tracker_cls: type, config: Any, recording: dict[str, list[tuple[Any, ...]]], top: int = 25
) -> tuple[str, float]:
    """cProfile of one replay of every camera, by own time (``top`` lines), paths shortened; and the
    function calls it counted per update (Python functions and numpy's C functions and methods alike;
    the replay's own few included: a count of the small numpy calls that cost a frame more than their
    arithmetic, not a time)."""
    profile = cProfile.Profile()
    profile.enable()
    for calls in recording.values():
        replay(tracker_cls, config, calls, keep=False)
    profile.disable()
    text = io.StringIO()
    stats = pstats.Stats(profile, stream=text)
    stats.sort_stats("tottime").print_stats(top)
    lines = text.getvalue().splitlines()
    body = lines[next(i for i, line in enumerate(lines) if "ncalls" in line) :]
    short = re.compile(r"\S*/(vision|track_before|numpy|scipy|benchmarks)/")
    updates = sum(len(calls) for calls in recording.values())
    return "\n".join(short.sub(r"\1/", line) for line in body if line.strip()), stats.total_calls / updates


def markdown(result: dict[str, Any], profiles: dict[str, tuple[str, float]]) -> str:
    ms = result["ms_per_detected_frame"]
    boxes = ", ".join(f"{k} {v}" for k, v in result["boxes_per_camera"].items())
    lines = [
        "# Tracker CPU cost: old code against this checkout's, same recorded calls",
        "",
        machine_line(result["machine"], "numpy"),
        "",
        *caveats(
            result,
            "Per-thread CPU time does not count waiting for a core, but loaded cores' caches slow all code; "
            "only the before/after ratio of this run compares (rounds alternate between the two codes).",
        ),
    ]
    lines += [
        f"`python benchmarks/tracker_cost.py --rounds {result['rounds']}"
        f"{' --beside' if result.get('beside_ms_per_detected_frame') else ''}`. The tracker calls of "
        "`Pipeline.run` on five file cameras (embedded SSD, detect_fps 5): the three sample videos "
        "(benchmarks/capacity_profile.py's cameras: cam0 plaza, cam1 litter, cam2 bike parking) and "
        "the shared footage's vtest and parking lane (its top-down cars are seldom found by the SSD), "
        f"were recorded once: {result['updates']} frames (`update`, {result['boxes']} boxes: {boxes}; a "
        "frame the motion gate held gives the last detections again), with their frames, each followed "
        "by `tracks()` as in vision/camera/analysis.py. They are replayed on a fresh tracker per camera, "
        f"old code (`vision/track` of {result['before']}, {result['before_commit'][:10]}) and new, "
        f"{result['rounds']} alternating rounds; the median round's CPU time "
        f"(`time.thread_time`) over all calls, per detected frame; the frames are decoded once before "
        "any replay (the tracker takes the frame for the looks of the boxes that need one, "
        "vision/track/appearance.py).",
        "",
        "**Same tracks** (`--check` runs this alone): on every camera, at the defaults and with the "
        "appearance check off (`appearance_distance: 1`), every update's track ids and every table's "
        "columns (ids, classes, hits, streaks, boxes, predicted boxes, rest times, so the stationary "
        "flags, history, median scores) are equal in both codes: ids and integers exactly, floats "
        f"within {result['tolerance']:g} (largest difference {result['max_abs_float_difference']:.3g}); "
        "the run fails naming the first difference otherwise.",
        "",
        "| code | CPU ms per detected frame | vs before |",
        "|---|---|---|",
        f"| before ({result['before']}) | {ms['before']:.3f} | 1.00 |",
        f"| after (this checkout) | {ms['after']:.3f} | {result['after_over_before']:.2f} |",
        "",
    ]
    if result.get("beside_ms_per_detected_frame"):
        alone = result["beside_ms_per_detected_frame"]["alone"]
        lines += [
            "## The same replay in company (`--beside`)",
            "",
            "This checkout's replay alone, and while another thread of the process runs the detector on a "
            "frame in a loop (ONNX Runtime's threads on every core, as the pipeline's inference) or pure "
            "Python code (as its readers and analysis lanes run), the three in turn in each round; the "
            "median round. The replay's own CPU time grows in company: the pipeline's tracker stage "
            "(benchmarks/ssd_batch.md part 2, the same calls) runs among a dozen busy threads.",
            "",
            "| replay | CPU ms per detected frame | vs alone |",
            "|---|---|---|",
            *[
                f"| {k} | {v:.3f} | {v / alone:.2f} |"
                for k, v in result["beside_ms_per_detected_frame"].items()
            ],
            "",
        ]
    calls = result["calls_per_update"]
    lines += [
        "## Where the time goes (cProfile, one replay, own time; the profiler inflates small calls)",
        "",
        "Function calls per update (cProfile's ncalls summed over one replay of every camera, divided by "
        "the updates; the replay's own calls, the same in both, included): "
        f"before {calls['before']:.1f}, after {calls['after']:.1f}.",
        "",
    ]
    for label, (text, per_update) in profiles.items():
        lines += [f"### {label} ({per_update:.1f} calls per update)", "", "```", text, "```", ""]
    return "\n".join(lines)


def main() -> None:
    parser = arguments(__doc__, rounds=7)
    parser.add_argument("--before", default="9033cc5", help="git commit of the old tracker code")
    parser.add_argument("--check", action="store_true", help="only check the two codes' outputs are the same")
    parser.add_argument("--record", action="store_true", help=f"record again even if {RECORDING} exists")
    parser.add_argument("--profile", action="store_true", help="print cProfile of both codes, write nothing")
    parser.add_argument("--beside", action="store_true", help="also this code beside inference / Python")
    args = parser.parse_args()
    from vision.track import TrackerConfig
    from vision.track.tracker import Tracker

    recording = decoded(
        pickle.loads(RECORDING.read_bytes()) if RECORDING.exists() and not args.record else record(RECORDING)
    )
    commit = subprocess.run(
        ["git", "rev-parse", args.before], cwd=ROOT, check=True, capture_output=True, text=True
    )
    with tempfile.TemporaryDirectory() as tmp:
        old = old_package(commit.stdout.strip(), Path(tmp))
        codes = {"before": (old.Tracker, old.TrackerConfig()), "after": (Tracker, TrackerConfig())}
        blind = {
            "before": old.TrackerConfig(appearance_distance=1.0),
            "after": TrackerConfig(appearance_distance=1.0),
        }
        if args.profile:
            for label, (cls, cfg) in codes.items():
                text, per_update = profiled(cls, cfg, recording)
                print(f"=== {label}: {per_update:.1f} function calls per update\n{text}")
            return
        same = check(codes, blind, recording)
        if args.check:
            print(f"identical on {', '.join(recording)}: {same}")
            return
        started = machine()
        seconds: dict[str, list[float]] = {label: [] for label in codes}
        for _ in range(args.rounds):
            for label, (cls, cfg) in codes.items():
                seconds[label].append(sum(replay(cls, cfg, c, keep=False)[0] for c in recording.values()))
        profiles = {label: profiled(cls, cfg, recording, 15) for label, (cls, cfg) in codes.items()}
        company = beside(Tracker, TrackerConfig(), recording, args.rounds) if args.beside else {}
    calls = [c for cs in recording.values() for c in cs]
    detected = sum(c[0] == "update" for c in calls)
    result = {
        "machine": started,
        "note": args.note,
        "before": args.before,
        "before_commit": commit.stdout.strip(),
        "cameras": len(recording),
        "updates": detected,
        "boxes": int(sum(len(c[3]) for c in calls if c[0] == "update")),
        "rounds": args.rounds,
        "identical": True,
        "tolerance": TOLERANCE,
        **same,
        "boxes_per_camera": {k: int(sum(len(c[3]) for c in cs)) for k, cs in recording.items()},
        "ms_per_detected_frame": {k: float(np.median(v)) * 1000 / detected for k, v in seconds.items()},
        "all_rounds_s": seconds,
        "beside_ms_per_detected_frame": {
            k: float(np.median(v)) * 1000 / detected for k, v in company.items()
        },
        "beside_rounds_s": company,
        "calls_per_update": {label: per_update for label, (_, per_update) in profiles.items()},
    }
    ms = result["ms_per_detected_frame"]
    result["after_over_before"] = ms["after"] / ms["before"]
    publish("tracker_cost", result, lambda r: markdown(r, profiles), SHARE)


if __name__ == "__main__":
    main()
