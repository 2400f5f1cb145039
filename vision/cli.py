"""``street-vision``: check a config, detect on images, run the pipeline, dispatch tickets.

Errors that the user can fix (a config line, a missing model, an unreadable image)
end with one readable line per problem and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import cv2
import yaml

from vision import collector
from vision.api import commands as api_commands
from vision.cluster import commands as cluster_commands
from vision.config import Config, ConfigError, load_config
from vision.config.defaults import describe_shared
from vision.detect.card import ModelError, load_card
from vision.detect.detector import Detector, describe_engine, engine_hint
from vision.detect.planner import camera_outlook
from vision.dispatch import commands as dispatch_commands
from vision.evaluate import commands as evaluate_commands
from vision.ingest.abandoned import leave
from vision.ingest.health import CameraHealth
from vision.ingest.probe import probe
from vision.jsonl import CLOSED_PIPE, JsonLines, quiet_stdout
from vision.rules.base import RuleError
from vision.store import commands as store_commands
from vision.tuning import commands as tuning_commands
from vision.types import Frame, Transition

log = logging.getLogger("vision")
EXIT_USAGE = 2


def _fail(problems: list[str]) -> int:
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return EXIT_USAGE


def cmd_check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.show is not None:  # one camera's effective settings, defaults merged in (passwords hidden)
        if args.show not in config.cameras:
            return _fail([f"{args.config}: no camera {args.show!r} (cameras: {', '.join(config.cameras)})"])
        print(yaml.safe_dump({args.show: config.cameras[args.show].model_dump(mode="json")}, sort_keys=False))
        return 0
    cameras = ", ".join(
        f"{k} ({v.url}{f'; detection: {v.detect_url}' if v.detect_url else ''})"
        for k, v in config.cameras.items()
    )
    zones = sum(len(c.zones) for c in config.cameras.values())
    try:
        card = load_card(config.detector.model)
    except ModelError as exc:
        return _fail([f"detector.model: {exc}"])
    try:
        engine = describe_engine(config.detector)
    except ModelError as exc:
        return _fail([str(exc)])
    print(f"{args.config}: ok: {len(config.cameras)} camera(s): {cameras}; {zones} zone(s)")
    print(f"  detector: {card.name} on {engine}")
    hint = engine_hint(config.detector, card)
    if hint:
        print(f"  hint: {hint}")
    for line in describe_shared(config):
        print(f"  {line}")
    sizes = probe({k: c for k, c in config.cameras.items() if c.source.is_file or args.probe})
    for camera_id, camera in config.cameras.items():
        print(f"  {camera_id}: detection {camera_outlook(camera, card, sizes.get(camera_id))}")
    return 1 if any(isinstance(size, str) for size in sizes.values()) else 0  # a camera cannot be read


def cmd_detect(args: argparse.Namespace) -> int:
    detector = Detector(load_card(args.model), threads=args.threads, min_score=args.min_score)
    status = 0
    for path in args.images:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            status = _fail([f"{path}: cannot read it as an image"])
            continue
        if min(image.shape[:2]) < 2:
            status = _fail([f"{path}: {image.shape[1]}x{image.shape[0]} pixels: too small (at least 2x2)"])
            continue
        detections = detector.detect([image])[0]
        records = detections.to_records(detector.names)
        if args.json:
            print(
                json.dumps(
                    {"image": path, "width": image.shape[1], "height": image.shape[0], "detections": records}
                )
            )
        else:
            print(f"{path}: {len(records)} detection(s)")
            for r in records:
                box = ", ".join(f"{v:.0f}" for v in r["box"])
                print(f"  {r['label']:<14} {r['score']:.2f}  [{box}]")
    return status


def cmd_models_card(args: argparse.Namespace) -> int:
    from vision.detect.yolo_card import write_card

    labels = None
    if args.labels:
        try:
            lines = Path(args.labels).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            return _fail([f"{args.labels}: cannot read the labels file: {exc.strerror or exc}"])
        labels = dict(enumerate(line.strip() for line in lines if line.strip()))
    card = write_card(args.model, args.out, labels)
    detector = Detector(
        load_card(card), threads=1, backend="ultralytics" if args.model.suffix == ".pt" else "onnx"
    )
    spec = detector.card.input
    print(
        f"wrote {card}: {len(detector.names)} classes, family {detector.card.family}, "
        f"input {spec.width}x{spec.height}{' (rect)' if spec.rect else ''}; checked against the file"
    )
    return 0


def cmd_models_quantize(args: argparse.Namespace) -> int:
    from vision.detect.quantize import compare, quantize, read_frames

    card = load_card(args.card)
    dataset = None if args.data is None else tuning_commands.int8_gate_data(args)
    frames = read_frames(args.calibrate, 2 * args.frames)
    out_card = quantize(card, frames[::2], args.out)
    report = compare(card, load_card(out_card), frames[1::2], threads=args.threads, min_score=args.min_score)
    if dataset is None:
        print(json.dumps({"card": str(out_card), "model": str(args.out), **report}))
        return 0
    return tuning_commands.gate_int8(card, out_card, dataset, args, report)


def cmd_run(args: argparse.Namespace) -> int:
    from vision.runtime import Runtime, log_health
    from vision.stats import StatsTicker, StatsWindow

    config: Config = load_config(args.config)
    if config.cluster is not None:
        return cluster_commands.run(args, config)
    emit = JsonLines(lambda: runtime.pipeline.stop())  # the stats thread prints too: whole lines only

    def on_transition(transition: Transition, payload: dict[str, Any]) -> None:
        if args.jsonl:
            emit({"kind": "event", **payload})

    def print_detections(frame: Frame, detections: Any) -> None:
        emit(
            {
                "kind": "detections",
                "camera": frame.camera_id,
                "pts": round(frame.pts, 3),
                "detections": detections.to_records(runtime.detector.names),
            }
        )

    def print_health(health: CameraHealth) -> None:
        emit({"kind": "health", **health.to_record()})

    runtime = Runtime.build(
        config,
        args.config,
        on_transition=on_transition,
        on_detections=print_detections if args.jsonl and args.detections else None,
        on_health=print_health if args.jsonl else log_health,
    )
    pipeline, store, dispatcher = runtime.pipeline, runtime.store, runtime.dispatcher
    for signum in (signal.SIGINT, signal.SIGTERM):  # finish the round, stop the readers, print the summary
        signal.signal(signum, lambda *_: pipeline.stop())
    if dispatcher:
        dispatcher.start()
    ticker = None
    if args.jsonl and args.stats_every > 0:
        window = StatsWindow(pipeline.stats, pipeline.health)
        ticker = StatsTicker(window.record, args.stats_every, emit).start()
    collector.settle()  # start-up is done: its objects stay out of the collector's walks
    try:
        summary = pipeline.run(max_seconds=args.max_seconds)
        if ticker:
            ticker.stop()
        delivery = dispatcher.drain(args.drain_seconds) if dispatcher else None
    finally:
        runtime.close()
    runtime.write_heatmaps()
    record = summary.to_record()
    if delivery is not None:
        record["outbox"] = delivery.to_record()
        dispatch_commands.report_leftovers(delivery)
    if args.jsonl:
        emit({"kind": "summary", **record})
    else:
        for camera, stats in record["cameras"].items():
            print(
                f"{camera}: {stats['frames_detected']} frames detected, {stats['detections']} detections"
                + (f", error: {stats['error']}" if stats["error"] else "")
            )
        print(
            f"transitions: {record['transitions'] or 'none'}; still open: {record['open_events']}; "
            f"{record['detect_fps'] or 'no'} frames/s; store: {store.location}"
        )
        if delivery is not None:
            print(f"webhook: {dispatch_commands.describe(delivery)}")
    failed = [k for k, v in record["cameras"].items() if v["error"]]
    if emit.closed:
        return CLOSED_PIPE
    return 1 if failed and len(failed) == len(record["cameras"]) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="street-vision", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help="validate a config file")
    p.add_argument("config", type=Path)
    p.add_argument(
        "--show", metavar="CAMERA", help="print this camera's effective settings (defaults merged)"
    )
    p.add_argument(
        "--probe", action="store_true", help="connect to the live cameras too (files are always read)"
    )
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("detect", help="print the detections of images")
    p.add_argument("images", nargs="+")
    p.add_argument(
        "--model", default="default", help="model card YAML or Ultralytics export (default: embedded SSD)"
    )
    p.add_argument("--min-score", type=float, default=0.4)
    p.add_argument("--threads", type=int, default=0, help="inference threads (0: all cores)")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser(
        "models", help="write a model's card; quantize a model to INT8; gate and promote a trained model"
    )
    models = p.add_subparsers(dest="models_command", required=True)
    m = models.add_parser("card", help="write MODEL.yaml for a YOLO .onnx export (or .pt) from its metadata")
    m.add_argument("model", type=Path)
    m.add_argument("--out", type=Path, help="card path (default: beside the model, MODEL.yaml)")
    m.add_argument("--labels", help="text file with one class name per line, for exports without metadata")
    m.set_defaults(func=cmd_models_card)
    m = models.add_parser("quantize", help="static INT8 quantization calibrated on your own footage")
    m.add_argument("card", help="model card of a float32 ONNX model")
    m.add_argument("--calibrate", type=Path, required=True, help="a video file or a folder of images")
    m.add_argument(
        "--out", type=Path, required=True, help="the INT8 model to write (its card goes beside it)"
    )
    m.add_argument("--frames", type=int, default=64, help="calibration frames (as many again are compared)")
    m.add_argument("--threads", type=int, default=0, help="inference threads for the comparison")
    m.add_argument("--min-score", type=float, default=0.25)
    m.add_argument(
        "--data",
        type=Path,
        help="dataset (folder or data.yaml): refuse INT8 that loses AP@0.5 on its val split",
    )
    m.add_argument("--margin", type=float, default=0.02, help="with --data: largest AP@0.5 drop allowed")
    m.set_defaults(func=tuning_commands.user_errors(cmd_models_quantize))
    tuning_commands.add_model_parsers(models)

    p = sub.add_parser("run", help="run the pipeline on every enabled camera of a config")
    p.add_argument("config", type=Path)
    p.add_argument("--jsonl", action="store_true", help="print events as JSON lines on stdout")
    p.add_argument("--detections", action="store_true", help="with --jsonl, also print every frame's boxes")
    p.add_argument(
        "--stats-every",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="with --jsonl, print a stats line (per camera fps in/out, drops, detector and analysis "
        "time, lag p50/p95) this often, wall clock, and one at the end (default 10; 0: none)",
    )
    p.add_argument(
        "--drain-seconds",
        type=float,
        default=30.0,
        help="with a webhook: at the end, wait this long for the outbox to be delivered (default 30)",
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="stop the live cameras (streams, realtime files) after this many seconds of wall time; "
        "files read as fast as possible still run to their end. Without it a run with live cameras "
        "goes on until Ctrl-C or SIGTERM",
    )
    p.set_defaults(func=cmd_run)
    dispatch_commands.add_parsers(sub)
    evaluate_commands.add_parsers(sub)
    api_commands.add_parsers(sub)
    tuning_commands.add_parsers(sub)
    store_commands.add_parsers(sub)
    cluster_commands.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code = int(args.func(args))
    except ConfigError as exc:
        code = _fail(exc.problems)
    except (ModelError, RuleError) as exc:
        code = _fail([str(exc)])
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:  # the reader of the output quit (`check ... | head -1`): as cat would
        quiet_stdout()
        code = CLOSED_PIPE
    return leave(code)  # a camera thread stuck in FFmpeg must not outlive the interpreter


if __name__ == "__main__":
    sys.exit(main())
