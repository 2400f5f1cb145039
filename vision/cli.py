"""``street-vision``: check a config, detect on images, run the pipeline on cameras.

Errors that the user can fix (a config line, a missing model, an unreadable image)
end with one readable line per problem and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import cv2

from vision.config import Config, ConfigError, load_config
from vision.detect.card import ModelError, load_card
from vision.detect.detector import Detector
from vision.evaluate import commands as evaluate_commands
from vision.types import Frame, Transition

log = logging.getLogger("vision")
EXIT_USAGE = 2


def _fail(problems: list[str]) -> int:
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return EXIT_USAGE


def cmd_check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    cameras = ", ".join(f"{k} ({v.url})" for k, v in config.cameras.items())
    zones = sum(len(c.zones) for c in config.cameras.values())
    print(f"{args.config}: ok: {len(config.cameras)} camera(s): {cameras}; {zones} zone(s)")
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    detector = Detector(load_card(args.model), threads=args.threads, min_score=args.min_score)
    status = 0
    for path in args.images:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            status = _fail([f"{path}: cannot read it as an image"])
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


def cmd_run(args: argparse.Namespace) -> int:
    from vision.pipeline import Pipeline
    from vision.store import Store

    config: Config = load_config(args.config)
    detector = Detector.from_config(config.detector)
    if config.dispatch.webhook_url:
        log.warning(
            "dispatch.webhook_url is set, but webhook delivery is not built yet: "
            "events are stored in SQLite only"
        )
    store = Store(config.storage.data_dir, str(args.config))

    def print_transition(transition: Transition, payload: dict[str, Any]) -> None:
        print(json.dumps({"kind": "event", **payload}), flush=True)

    def print_detections(frame: Frame, detections: Any) -> None:
        print(
            json.dumps(
                {
                    "kind": "detections",
                    "camera": frame.camera_id,
                    "pts": round(frame.pts, 3),
                    "detections": detections.to_records(detector.names),
                }
            ),
            flush=True,
        )

    pipeline = Pipeline(
        config,
        detector,
        store,
        on_transition=print_transition if args.jsonl else None,
        on_detections=print_detections if args.jsonl and args.detections else None,
    )
    try:
        summary = pipeline.run()
    finally:
        store.close()
    heatmaps = config.storage.data_dir / "heatmaps"
    for camera_id, worker in pipeline.workers.items():
        if worker.analysis.scene.last_frame is not None:
            heatmaps.mkdir(parents=True, exist_ok=True)
            (heatmaps / f"{camera_id}.png").write_bytes(
                worker.analysis.scene.heatmap.png(worker.analysis.scene.last_frame.image)
            )
    record = summary.to_record()
    if args.jsonl:
        print(json.dumps({"kind": "summary", **record}), flush=True)
    else:
        for camera, stats in record["cameras"].items():
            print(
                f"{camera}: {stats['frames_detected']} frames detected, {stats['detections']} detections"
                + (f", error: {stats['error']}" if stats["error"] else "")
            )
        print(
            f"transitions: {record['transitions'] or 'none'}; still open: {record['open_events']}; "
            f"{record['detect_fps']} frames/s; store: {store.path}"
        )
    failed = [k for k, v in record["cameras"].items() if v["error"]]
    return 1 if failed and len(failed) == len(record["cameras"]) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="street-vision", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help="validate a config file")
    p.add_argument("config", type=Path)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("detect", help="print the detections of images")
    p.add_argument("images", nargs="+")
    p.add_argument("--model", default="default", help="model card YAML (default: embedded SSD)")
    p.add_argument("--min-score", type=float, default=0.4)
    p.add_argument("--threads", type=int, default=0, help="inference threads (0: all cores)")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("run", help="run the pipeline on every enabled camera of a config")
    p.add_argument("config", type=Path)
    p.add_argument("--jsonl", action="store_true", help="print events as JSON lines on stdout")
    p.add_argument("--detections", action="store_true", help="with --jsonl, also print every frame's boxes")
    p.set_defaults(func=cmd_run)
    evaluate_commands.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args))
    except ConfigError as exc:
        return _fail(exc.problems)
    except ModelError as exc:
        return _fail([str(exc)])
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
