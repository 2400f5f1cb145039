"""Fine-tuned against generic on the city's own data: park-my-bike's bicycles (the tuning workflow, issue 15).

The generic model is the COCO-pretrained YOLOv8n INT8 of ../shared/data/models, scored on its
``bicycle`` class. The fine-tuned one starts from that same model's weights (rebuilt into a
trainable checkpoint by ``street-vision models rebuild``) and is trained on park-my-bike's train
split with ``street-vision train``'s code path; its float ONNX and its INT8 copy (calibrated on the
train images by ``models quantize``'s code path) are scored too. With ``--scratch`` the same number
of epochs from the bare YOLOv8n YAML shows what the COCO start is worth. Every model is scored the
same way: mAP@0.5 on the val split through our own detector path (vision/tuning/metrics.py), which
is what ``run`` sees.

    python benchmarks/finetune.py [--epochs 30] [--imgsz 256] [--device cpu] [--scratch]

writes benchmarks/finetune.md and finetune.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from vision.detect.card import load_card
from vision.detect.quantize import quantize, read_frames
from vision.detect.yolo_card import card_for
from vision.tuning.layout import load_dataset
from vision.tuning.metrics import split_metrics
from vision.tuning.rebuild import rebuild
from vision.tuning.train import offline, train

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
DATA = SHARED / "datasets" / "park-my-bike"
COCO_INT8 = SHARED / "models" / "yolov8n_coco_int8.onnx"


def card_beside(onnx: Path, folder: Path) -> Path:
    """A card for ``onnx`` (linked into ``folder``), as ``models card`` writes it."""
    linked = folder / onnx.name
    if not linked.exists():
        linked.symlink_to(onnx.resolve())
    card = linked.with_suffix(".yaml")
    card.write_text(yaml.safe_dump(card_for(linked), sort_keys=False))
    return card


def scored(name: str, card: Path, seconds: float | None = None) -> dict[str, Any]:
    metrics = split_metrics(load_card(card), load_dataset(DATA), "val")
    return {"model": name, "bicycle_ap50": metrics["ap50"].get("bicycle"), "val": metrics, "train_s": seconds}


def fine_tune(base: str, work: Path, name: str, args: argparse.Namespace) -> tuple[Path, float]:
    started = time.perf_counter()
    record = train(DATA, base, work / name, args.epochs, args.imgsz, device=args.device, batch=args.batch)
    return Path(record["model"]), time.perf_counter() - started


def minutes(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f} min"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--imgsz", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--scratch", action="store_true", help="also train from the bare YAML")
    parser.add_argument("--out", type=Path, default=HERE / "finetune")
    args = parser.parse_args()
    for needed in (DATA, COCO_INT8):
        if not needed.exists():
            raise SystemExit(f"{needed}: missing (the benchmark reads ../shared/data beside the repository)")
    offline()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows.append(scored("generic: COCO YOLOv8n INT8 (640)", card_beside(COCO_INT8, work)))
        base = rebuild(COCO_INT8, "yolov8n.yaml", work / "coco.pt")
        card, seconds = fine_tune(str(base), work, "bikes", args)
        rows.append(scored(f"fine-tuned from COCO, {args.epochs} epochs ({args.imgsz})", card, seconds))
        calibration = read_frames(DATA / "images" / "train", 64)
        int8 = quantize(load_card(card), calibration, card.with_name(card.stem + "_int8.onnx"))
        rows.append(scored(f"fine-tuned, INT8 calibrated on {len(calibration)} train images", int8))
        if args.scratch:
            card, seconds = fine_tune("yolov8n.yaml", work, "scratch", args)
            rows.append(
                scored(f"from the YAML (no COCO start), {args.epochs} epochs ({args.imgsz})", card, seconds)
            )
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "device": args.device,
    }
    result = {
        "dataset": str(DATA.relative_to(SHARED.parent.parent)),
        "machine": machine,
        "rows": rows,
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Fine-tuned against generic on park-my-bike (bicycles at London bike bays)",
        "",
        f"`python benchmarks/finetune.py --epochs {args.epochs} --imgsz {args.imgsz} --device {args.device}"
        f"{' --scratch' if args.scratch else ''}` on {machine['cores']} cores ({machine['cpu']}).",
        f"Validation split: {rows[0]['val']['images']} images, {rows[0]['val']['boxes']} bicycles; "
        "AP@0.5 through our own detector path (what `run` sees).",
        "",
        "| model | bicycle AP@0.5 | training time |",
        "|---|---|---|",
        *(f"| {r['model']} | {r['bicycle_ap50']:.3f} | {minutes(r['train_s'])} |" for r in rows),
        "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
