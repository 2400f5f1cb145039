"""The Ultralytics YOLO layout: images/, labels/ (one ``class cx cy w h`` line per box), data.yaml.

A mined dataset keeps every image in ``images/`` and lists the split in ``train.txt`` and
``val.txt`` (Ultralytics reads such lists), so re-splitting never moves a file. Datasets
laid out the other usual way (``images/train``, ``images/val`` folders) read the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from vision.detect.quantize import IMAGE_SUFFIXES
from vision.tuning.errors import TuningError

DATA_YAML = "data.yaml"
SPLITS = ("train", "val")


@dataclass(frozen=True)
class Dataset:
    """A YOLO dataset: its data.yaml, class names and the images of each split."""

    data_yaml: Path
    names: dict[int, str]
    splits: dict[str, list[Path]]

    @property
    def root(self) -> Path:
        return self.data_yaml.parent


def label_path(image: Path) -> Path:
    """Where Ultralytics looks for an image's labels: the last ``images`` folder becomes ``labels``."""
    parts = list(image.parts)
    if "images" not in parts:
        raise TuningError(f"{image}: a YOLO image must be inside an 'images' folder (labels go in 'labels')")
    at = len(parts) - 1 - parts[::-1].index("images")
    return Path(*parts[:at], "labels", *parts[at + 1 :]).with_suffix(".txt")


def write_labels(image: Path, xyxy: np.ndarray, class_id: np.ndarray, width: int, height: int) -> None:
    """Boxes in pixels to normalized YOLO lines (clipped to the image); no boxes: an empty file."""
    path = label_path(image)
    path.parent.mkdir(parents=True, exist_ok=True)
    box = np.clip(np.asarray(xyxy, np.float64).reshape(-1, 4), 0, [width, height, width, height])
    cx, cy = (box[:, 0] + box[:, 2]) / 2 / width, (box[:, 1] + box[:, 3]) / 2 / height
    w, h = (box[:, 2] - box[:, 0]) / width, (box[:, 3] - box[:, 1]) / height
    lines = [
        f"{int(c)} {a:.6f} {b:.6f} {d:.6f} {e:.6f}"
        for c, a, b, d, e in zip(class_id, cx, cy, w, h, strict=True)
        if d > 0 and e > 0
    ]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def read_labels(image: Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """An image's boxes as pixel xyxy [N, 4] and class ids [N]; a missing file means no boxes."""
    path = label_path(image)
    if not path.is_file():
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            c, cx, cy, w, h = (float(v) for v in line.split()[:5])
        except ValueError:
            raise TuningError(f"{path}: line {number}: expected 'class cx cy w h', got {line!r}") from None
        rows.append((c, cx, cy, w, h))
    table = np.array(rows, np.float64).reshape(-1, 5)
    cx, cy, w, h = table[:, 1] * width, table[:, 2] * height, table[:, 3] * width, table[:, 4] * height
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
    return xyxy, table[:, 0].astype(np.int64)


def write_data_yaml(root: Path, names: dict[int, str], splits: dict[str, list[Path]]) -> Path:
    """``train.txt``/``val.txt`` (./images/...) and a data.yaml without ``path`` (the folder can move)."""
    for split, images in splits.items():
        lines = [f"./{image.relative_to(root).as_posix()}" for image in images]
        (root / f"{split}.txt").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    data = {"train": "train.txt", "val": "val.txt", "names": dict(names)}
    out = root / DATA_YAML
    header = "# Ultralytics dataset written by street-vision; splits in train.txt and val.txt.\n"
    out.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out


def _split_images(base: Path, entry: object, data_yaml: Path, split: str) -> list[Path]:
    entries = entry if isinstance(entry, list) else [entry]
    images: list[Path] = []
    for item in entries:
        where = base / str(item)
        if where.is_dir():
            images += sorted(p for p in where.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif where.is_file():
            for line in where.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line:
                    images.append(where.parent / line[2:] if line.startswith("./") else Path(line))
        else:
            raise TuningError(f"{data_yaml}: {split}: {where} is neither a folder of images nor a list file")
    return images


def load_dataset(data_yaml: Path) -> Dataset:
    """Read a data.yaml (its ``path``, ``train``/``val`` folders or list files, ``names``)."""
    if data_yaml.is_dir():
        data_yaml = data_yaml / DATA_YAML
    try:
        data = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:  # a missing file or broken YAML: both name the file
        raise TuningError(f"{data_yaml}: cannot read it as a YOLO data.yaml: {exc}") from None
    if not isinstance(data, dict) or not all(k in data for k in ("train", "val", "names")):
        raise TuningError(f"{data_yaml}: a YOLO data.yaml needs 'train', 'val' and 'names'")
    raw = data["names"]
    names = dict(enumerate(raw)) if isinstance(raw, list) else raw
    if not isinstance(names, dict) or sorted(names) != list(range(len(names))):
        raise TuningError(f"{data_yaml}: names must be a list or a mapping 0..N-1 -> class name")
    base = data_yaml.parent / str(data.get("path", "."))
    splits = {split: _split_images(base, data[split], data_yaml, split) for split in SPLITS}
    return Dataset(data_yaml, {int(k): str(v) for k, v in names.items()}, splits)
