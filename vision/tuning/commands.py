"""``street-vision dataset mine|label|import`` and ``street-vision train``: the tuning workflow's commands.

The heavy modules (torch, Ultralytics) load only when a command runs that needs them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from vision.config import ConfigError
from vision.tuning.errors import TuningError

CONFIG_SUFFIXES = {".yaml", ".yml"}


def user_errors(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """TuningError becomes the CLI's one-line error and exit 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except TuningError as exc:
            raise ConfigError([str(exc)]) from None

    return run


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``dataset`` and ``train`` on the CLI's subcommand parser."""
    p = sub.add_parser("dataset", help="mine frames from cameras and events, pre-label them, import labels")
    dataset = p.add_subparsers(dest="dataset_command", required=True)

    m = dataset.add_parser(
        "mine", help="frames from a config's cameras and store, or from videos and image folders"
    )
    m.add_argument(
        "sources", nargs="+", type=Path, help="one config YAML, or video files and folders of images"
    )
    m.add_argument("--out", type=Path, required=True, help="new dataset folder")
    m.add_argument("--every", type=float, default=2.0, help="uniform sample: one frame per this many seconds")
    m.add_argument(
        "--store",
        type=Path,
        help="data folder whose SQLite store to mine (default: the config's storage, SQLite or storage.url)",
    )
    m.add_argument(
        "--min-score", type=float, help="the detector's threshold (default: the config's, else 0.4)"
    )
    m.add_argument(
        "--uncertain-band",
        type=float,
        default=0.15,
        help="detections scored below threshold + this are uncertain: their frames are mined (default 0.15)",
    )
    m.add_argument("--max-frames", type=int, default=2000, help="cap on the dataset's size (default 2000)")
    m.add_argument(
        "--max-distance",
        type=int,
        default=10,
        help="frames within this many dHash bits (of 256) of a kept one are near-duplicates (default 10)",
    )
    m.set_defaults(func=user_errors(cmd_mine))

    m = dataset.add_parser(
        "label", help="pre-label with a model; write YOLO labels, the split, CVAT and COCO"
    )
    m.add_argument("folder", type=Path, help="a folder written by `dataset mine`")
    m.add_argument("--model", default="default", help="model card of the current model")
    m.add_argument("--min-score", type=float, default=0.25)
    m.add_argument(
        "--classes",
        help="the dataset's classes, comma-separated (default: the model's labels); "
        "new classes get no pre-labels",
    )
    m.add_argument("--val-fraction", type=float, default=0.2, help="share of frames for val (whole cameras)")
    m.add_argument("--val-cameras", help="comma-separated cameras for val (instead of --val-fraction)")
    m.add_argument("--threads", type=int, default=0)
    m.add_argument("--relabel", action="store_true", help="replace the labels of a labelled dataset")
    m.add_argument(
        "--config",
        type=Path,
        help="the config the frames were mined from: with a `litter` class, its file cameras' litter "
        "rules offer their static-object blobs as `litter` pre-labels",
    )
    m.set_defaults(func=user_errors(cmd_label))

    m = dataset.add_parser("import", help="read corrected labels back from CVAT XML or COCO JSON")
    m.add_argument("folder", type=Path)
    m.add_argument("--from", dest="tool_file", type=Path, required=True, help="CVAT .xml or COCO .json")
    m.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="TOOL=MODEL",
        help="rename a tool's class to a dataset class (TOOL= drops it); repeat for more",
    )
    m.set_defaults(func=user_errors(cmd_import))

    p = sub.add_parser("train", help="fine-tune a YOLO model on a dataset; export ONNX, card and metrics")
    p.add_argument("data", type=Path, help="a dataset folder (or its data.yaml) in the YOLO layout")
    p.add_argument(
        "--base", required=True, help="a local .pt to start from, or a model YAML (yolov8n.yaml) from scratch"
    )
    p.add_argument(
        "--out", type=Path, required=True, help="model folder; each run adds a version v001, v002..."
    )
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--imgsz", type=int, default=640, help="training size (a multiple of 32)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="cpu", help="cpu, cuda, or a GPU index (0)")
    p.add_argument("--name", help="model name (default: the --out folder's name)")
    p.add_argument("--threads", type=int, default=0, help="inference threads for the val metrics")
    p.set_defaults(func=user_errors(cmd_train))


def _mine_sources(args: argparse.Namespace) -> tuple[list[Iterator[Any]], list[str]]:
    from vision.config import DecodeConfig, load_config
    from vision.secrets import SecretUrl
    from vision.store.sqlite import store_path
    from vision.tuning.sources import event_snapshots, image_folder, uncertain_times, video_frames

    notes: list[str] = []
    config = None
    if len(args.sources) == 1 and args.sources[0].suffix.lower() in CONFIG_SUFFIXES:
        config = load_config(args.sources[0])
    store = args.store or (config.storage if config else None)
    sqlite = store_path(config.storage.data_dir) if config and config.storage.url is None else None
    if sqlite is not None and args.store is None and not sqlite.is_file():
        notes.append(f"no store at {sqlite} yet: no event or uncertain frames")
        store = None
    low = args.min_score if args.min_score is not None else (config.detector.min_score if config else 0.4)
    uncertain = (
        uncertain_times(store, low, low + args.uncertain_band, args.every / 2) if store is not None else {}
    )
    sources: list[Iterator[Any]] = [event_snapshots(store)] if store is not None else []
    if config:
        for camera_id, camera in config.cameras.items():
            if not camera.url.is_file:
                notes.append(
                    f"camera {camera_id}: live stream not read (its event frames come from the store)"
                )
                continue
            sources.append(
                video_frames(camera_id, camera.url, camera.decode, args.every, uncertain.get(camera_id))
            )
        return sources, notes
    for path in args.sources:
        if path.is_dir():
            sources.append(image_folder(path))
        elif path.is_file():
            sources.append(
                video_frames(
                    path.stem, SecretUrl(str(path)), DecodeConfig(), args.every, uncertain.get(path.stem)
                )
            )
        else:
            raise TuningError(f"{path}: no such file or folder")
    return sources, notes


def cmd_mine(args: argparse.Namespace) -> int:
    from vision.tuning.mine import MineOptions, mine

    if args.every <= 0 or args.max_frames < 1 or args.max_distance < 0:
        raise TuningError("--every must be > 0, --max-frames >= 1 and --max-distance >= 0")
    sources, notes = _mine_sources(args)
    summary = mine(sources, args.out, MineOptions(args.max_frames, args.max_distance))
    print(json.dumps({**summary, "notes": notes}))
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    from vision.config import load_config
    from vision.detect.card import load_card
    from vision.tuning.label import prelabel

    if not 0 < args.val_fraction < 1:
        raise TuningError(f"--val-fraction {args.val_fraction}: must be between 0 and 1")
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    cameras = [c.strip() for c in args.val_cameras.split(",") if c.strip()] if args.val_cameras else None
    config = load_config(args.config) if args.config else None
    summary = prelabel(
        args.folder,
        load_card(args.model),
        args.min_score,
        classes,
        args.val_fraction,
        cameras,
        args.threads,
        args.relabel,
        config.cameras if config else None,
    )
    print(json.dumps(summary))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from vision.tuning.label import import_labels

    print(json.dumps(import_labels(args.folder, args.tool_file, args.map)))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from vision.tuning.train import train

    if args.epochs < 1 or args.batch < 1 or args.imgsz < 32 or args.imgsz % 32:
        raise TuningError("--epochs and --batch must be >= 1, --imgsz a multiple of 32")
    record = train(
        args.data, args.base, args.out, args.epochs, args.imgsz, args.device, args.batch, args.name,
        threads=args.threads,
    )  # fmt: skip
    metrics = record["metrics"]
    per_class = ", ".join(f"{k} {v:.3f}" for k, v in metrics["ap50"].items()) or "no boxes in val"
    print(
        f"wrote {record['model']}: val mAP@0.5 {metrics['map50']} ({per_class}) on {metrics['images']} images"
    )
    print(json.dumps(record))
    return 0


def add_model_parsers(models: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``models gate``, ``promote`` and ``rebuild``, beside ``models card`` and ``models quantize``."""
    m = models.add_parser("gate", help="compare a candidate with the current model on a dataset's val split")
    m.add_argument("candidate", type=Path, help="the candidate's card")
    m.add_argument("--against", required=True, help="the current model's card ('default': the embedded SSD)")
    m.add_argument("--data", type=Path, required=True, help="dataset folder or data.yaml")
    m.add_argument("--margin", type=float, default=0.02, help="largest AP@0.5 drop allowed per class")
    m.add_argument(
        "--suite",
        type=Path,
        action="append",
        default=[],
        help="also replay this evaluation suite (as `eval --model`) with both models; repeat for more",
    )
    m.add_argument(
        "--event-margin", type=float, default=0.05, help="largest event F1 drop allowed per event type"
    )
    m.add_argument(
        "--detect-margin",
        type=float,
        default=2.0,
        help="largest growth of the mean time to detect allowed per event type, in seconds",
    )
    m.add_argument("--out", type=Path, help="report folder (default: beside the candidate, gate/)")
    m.add_argument("--threads", type=int, default=0)
    m.set_defaults(func=user_errors(cmd_gate))
    m = models.add_parser("promote", help="make a version the model `run` uses (NAME/current.yaml)")
    m.add_argument("card", type=Path, help="a version's card, NAME/vNNN/NAME.yaml")
    m.add_argument("--gate", type=Path, help="the gate report (gate.json) that passed it")
    m.add_argument("--force", action="store_true", help="promote without a passing gate report")
    m.set_defaults(func=user_errors(cmd_promote))
    m = models.add_parser(
        "rebuild", help="a .pt that `train --base` starts from, made from a YOLO ONNX export (float or INT8)"
    )
    m.add_argument("onnx", type=Path, help="an Ultralytics ONNX export")
    m.add_argument("--arch", required=True, help="its architecture's model YAML, e.g. yolov8n.yaml")
    m.add_argument("--out", type=Path, required=True, help="the checkpoint to write (.pt)")
    m.set_defaults(func=user_errors(cmd_rebuild))


def cmd_gate(args: argparse.Namespace) -> int:
    from vision.detect.card import load_card
    from vision.tuning.gate import gate, write_report
    from vision.tuning.layout import load_dataset

    if not 0 <= args.margin < 1 or not 0 <= args.event_margin < 1:
        raise TuningError(f"--margin {args.margin}, --event-margin {args.event_margin}: must be in [0, 1)")
    if args.detect_margin < 0:
        raise TuningError(f"--detect-margin {args.detect_margin}: must be >= 0 seconds")
    missing = [str(s) for s in args.suite if not s.exists()]
    if missing:
        raise TuningError(f"--suite {', '.join(missing)}: no such suite file or folder")
    candidate = load_card(args.candidate)
    report = gate(
        candidate,
        load_card(args.against),
        load_dataset(args.data),
        args.margin,
        args.threads,
        args.suite,
        args.event_margin,
        args.detect_margin,
    )
    path = write_report(report, args.out or candidate.card_path.parent / "gate")
    print(f"{report['decision']}: {report['reason']}; report: {path.with_suffix('.md')}")
    print(json.dumps(report))
    return 0 if report["decision"] == "promote" else 1


def cmd_promote(args: argparse.Namespace) -> int:
    from vision.tuning.gate import promote

    print(json.dumps(promote(args.card, args.gate, args.force)))
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    from vision.tuning.rebuild import rebuild
    from vision.tuning.train import offline

    if not args.onnx.is_file():
        raise TuningError(f"{args.onnx}: no such file")
    if args.out.suffix != ".pt":
        raise TuningError(f"--out {args.out}: must end in .pt")
    offline()
    print(json.dumps({"checkpoint": str(rebuild(args.onnx, args.arch, args.out)), "source": str(args.onnx)}))
    return 0


def int8_gate_data(args: argparse.Namespace) -> Any:
    """The dataset of ``models quantize --data``, checked before anything is written."""
    from vision.tuning.layout import load_dataset

    if not 0 <= args.margin < 1:
        raise TuningError(f"--margin {args.margin}: must be in [0, 1)")
    dataset = load_dataset(args.data)
    if not dataset.splits["val"]:
        raise TuningError(f"{dataset.data_yaml}: the val split has no images")
    return dataset


def gate_int8(
    float_card: Any, int8_card: Path, dataset: Any, args: argparse.Namespace, drift: dict[str, Any]
) -> int:
    """``models quantize --data``: the INT8 model is kept only when the gate passes it against the float
    model on the dataset's val split; refused, its files are removed and the report says why."""
    from vision.detect.card import load_card
    from vision.tuning.gate import gate, write_report

    report = gate(load_card(int8_card), float_card, dataset, args.margin, args.threads)
    path = write_report(report, args.out.with_name(args.out.stem + "_gate"))
    kept = report["decision"] == "promote"
    if not kept:
        _remove_int8(int8_card, args.out)
    verdict = "kept" if kept else "refused (removed)"
    print(f"INT8 {verdict}: {report['reason']}; report: {path.with_suffix('.md')}", file=sys.stderr)
    print(
        json.dumps(
            {
                "card": str(int8_card) if kept else None,
                "model": str(args.out) if kept else None,
                "gate": report,
                **drift,
            }
        )
    )
    return 0 if kept else 1


def _remove_int8(card: Path, model: Path) -> None:
    card.unlink(missing_ok=True)
    model.unlink(missing_ok=True)
