"""Fine-tune a YOLO model on a dataset with Ultralytics' trainer, export it, write its card and metrics.

Nothing is downloaded: the base is a local ``.pt`` or a model YAML (trained from
scratch), Ultralytics runs offline, and the steps of its trainer that would fetch a
font (dataset check) or weights (the AMP check on a GPU) are kept from doing so.
Each run becomes a new version folder, ``OUT/v001``, ``OUT/v002``..., holding:

- ``NAME.pt`` (the trained checkpoint) and ``NAME.onnx`` (dynamic batch and size: rect inputs),
- ``NAME.yaml``, the card (written from the export's own metadata, as ``models card`` does),
- ``training.json``: the base, the arguments, the dataset and the sha256 of its manifest and
  labels, and mAP@0.5 per class on the val split measured through our detector path.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from vision.detect.card import load_card
from vision.detect.yolo_card import card_for
from vision.tuning.errors import TuningError
from vision.tuning.layout import Dataset, label_path, load_dataset
from vision.tuning.metrics import split_metrics
from vision.tuning.mine import MANIFEST

VERSION = re.compile(r"^v(\d{3,})$")


def offline() -> None:
    """Keep Ultralytics off the network before it is imported (the user's own settings win)."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")


def next_version(out: Path) -> Path:
    """``out/vNNN`` one past the highest version there."""
    taken = [int(m.group(1)) for p in out.glob("v*") if (m := VERSION.match(p.name))] if out.is_dir() else []
    return out / f"v{max(taken, default=0) + 1:03d}"


def fingerprint(dataset: Dataset) -> dict[str, Any]:
    """What the model was trained on: sha256 of the manifest (if mined) and of every label file."""
    labels = hashlib.sha256()
    for split in ("train", "val"):
        for image in dataset.splits[split]:
            path = label_path(image)
            labels.update(f"{split}/{image.name}\n".encode())
            labels.update(path.read_bytes() if path.is_file() else b"")
    manifest = dataset.root / MANIFEST
    return {
        "data": str(dataset.data_yaml),
        "names": dataset.names,
        "train_images": len(dataset.splits["train"]),
        "val_images": len(dataset.splits["val"]),
        "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else None,
        "labels_sha256": labels.hexdigest(),
    }


def check_base(base: str) -> str:
    """A local checkpoint or a model YAML; anything else would make Ultralytics download it."""
    if base.endswith(".pt"):
        if not Path(base).is_file():
            raise TuningError(
                f"--base {base}: no such file (street-vision never downloads weights: give a local .pt, "
                "or a model YAML such as yolov8n.yaml to train from scratch)"
            )
        return str(Path(base).resolve())
    if base.endswith((".yaml", ".yml")):
        return base
    raise TuningError(f"--base {base}: expected a local .pt checkpoint or a model YAML (yolov8n.yaml)")


def _ultralytics_trainer_offline() -> None:
    """Ultralytics' dataset check fetches Arial.ttf for plots we never draw: skip that step."""
    import ultralytics.data.utils as data_utils

    data_utils.check_font = lambda *args, **kwargs: None


def amp_setting(device: str) -> bool | str:
    """bf16 autocast on GPUs that have it (no AMP self-check, which would download weights); else fp32."""
    if device == "cpu":
        return False
    import torch

    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else False


def train(
    data: Path,
    base: str,
    out: Path,
    epochs: int,
    imgsz: int,
    device: str = "cpu",
    batch: int = 16,
    name: str | None = None,
    seed: int = 0,
    threads: int = 0,
    **train_args: Any,
) -> dict[str, Any]:
    """Train, export and measure one version; returns the training record (also in training.json)."""
    dataset = load_dataset(data)
    for split in ("train", "val"):
        if not dataset.splits[split]:
            raise TuningError(f"{dataset.data_yaml}: the {split} split has no images")
    base = check_base(base)
    name = name or out.resolve().name
    version = next_version(out)
    offline()
    from ultralytics import YOLO

    _ultralytics_trainer_offline()
    model = YOLO(base)
    model.train(
        data=str(dataset.data_yaml.resolve()),
        epochs=epochs,
        imgsz=imgsz,
        batch=batch,
        device=device,
        workers=0,
        plots=False,
        amp=amp_setting(device),
        seed=seed,
        deterministic=True,
        project=str(version.resolve()),
        name="train",
        exist_ok=True,
        **train_args,
    )
    weights = version / "train" / "weights"
    best = weights / "best.pt" if (weights / "best.pt").is_file() else weights / "last.pt"
    checkpoint = version / f"{name}.pt"
    shutil.copyfile(best, checkpoint)
    exported = Path(YOLO(str(checkpoint)).export(format="onnx", imgsz=imgsz, dynamic=True, device="cpu"))
    onnx_path = version / f"{name}.onnx"
    if exported.resolve() != onnx_path.resolve():
        exported.replace(onnx_path)
    card = card_for(onnx_path) | {"name": f"{name}-{version.name}"}
    card["source"] = {
        "path": base,
        "converter": f"street-vision train ({card.get('source', {}).get('converter')})",
    }
    card_path = version / f"{name}.yaml"
    card_path.write_text(
        f"# Written by `street-vision train` from {onnx_path.name}'s own metadata.\n"
        + yaml.safe_dump(card, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    record = {
        "model": str(card_path),
        "version": version.name,
        "base": base,
        "args": {
            "epochs": epochs,
            "imgsz": imgsz,
            "batch": batch,
            "device": device,
            "seed": seed,
            **train_args,
        },
        "dataset": fingerprint(dataset),
        "metrics": split_metrics(load_card(card_path), dataset, "val", threads),
    }
    (version / "training.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record
