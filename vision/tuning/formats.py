"""Hand-off to annotation tools and back: CVAT for images 1.1 XML and COCO JSON.

Both are written from the dataset's current labels (the model's pre-labels at first),
and read back through the evaluation's own readers (vision/evaluate/annotations.py).
An image is matched by the number its name ends with, the frame's index in the manifest
(``plaza-000012.jpg``), which both formats keep whatever folder the tool put it in.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vision.evaluate.annotations import AnnotationError, FrameBoxes, load_boxes
from vision.tuning.errors import TuningError


@dataclass(frozen=True)
class LabelledImage:
    """One image and its boxes, for a hand-off file."""

    index: int
    name: str  # the file name the tool shows
    width: int
    height: int
    xyxy: np.ndarray  # float32 [N, 4] pixels
    class_id: np.ndarray  # int [N]


def write_cvat(path: Path, images: list[LabelledImage], names: dict[int, str], task: str) -> Path:
    """A CVAT 'for images 1.1' file: import it into a task made from the same images."""
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    meta = ET.SubElement(ET.SubElement(root, "meta"), "task")
    ET.SubElement(meta, "name").text = task
    ET.SubElement(meta, "size").text = str(len(images))
    ET.SubElement(meta, "mode").text = "annotation"
    labels = ET.SubElement(meta, "labels")
    for name in names.values():
        ET.SubElement(ET.SubElement(labels, "label"), "name").text = name
    for image in images:
        node = ET.SubElement(
            root,
            "image",
            id=str(image.index),
            name=image.name,
            width=str(image.width),
            height=str(image.height),
        )
        for (x1, y1, x2, y2), c in zip(image.xyxy.tolist(), image.class_id.tolist(), strict=True):
            ET.SubElement(
                node,
                "box",
                label=names[int(c)],
                source="auto",
                occluded="0",
                xtl=f"{x1:.2f}",
                ytl=f"{y1:.2f}",
                xbr=f"{x2:.2f}",
                ybr=f"{y2:.2f}",
                z_order="0",
            )
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def write_coco(path: Path, images: list[LabelledImage], names: dict[int, str]) -> Path:
    """A COCO detection file (category ids are class ids + 1; each image keeps its ``frame_id``)."""
    annotations = []
    for image in images:
        for (x1, y1, x2, y2), c in zip(image.xyxy.tolist(), image.class_id.tolist(), strict=True):
            w, h = x2 - x1, y2 - y1
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image.index + 1,
                    "category_id": int(c) + 1,
                    "bbox": [round(x1, 2), round(y1, 2), round(w, 2), round(h, 2)],
                    "area": round(w * h, 2),
                    "iscrowd": 0,
                }
            )
    document = {
        "images": [
            {
                "id": i.index + 1,
                "file_name": i.name,
                "width": i.width,
                "height": i.height,
                "frame_id": i.index,
            }
            for i in images
        ],
        "annotations": annotations,
        "categories": [{"id": k + 1, "name": v} for k, v in names.items()],
    }
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return path


def parse_class_map(pairs: list[str], names: dict[int, str]) -> dict[str, str | None]:
    """``tool=model`` pairs; ``tool=`` drops the tool's class. Targets must be dataset classes."""
    mapping: dict[str, str | None] = {}
    for pair in pairs:
        tool, sep, model = pair.partition("=")
        if not sep or not tool.strip():
            raise TuningError(f"--map {pair!r}: expected TOOL_NAME=MODEL_NAME (or TOOL_NAME= to drop it)")
        target = model.strip() or None
        if target is not None and target not in names.values():
            raise TuningError(
                f"--map {pair!r}: {target!r} is not a class of the dataset ({', '.join(names.values())})"
            )
        mapping[tool.strip()] = target
    return mapping


def read_tool_file(path: Path) -> FrameBoxes:
    """Boxes of a CVAT XML or COCO JSON file, by frame index (the kind is told by the suffix)."""
    kind = {".xml": "cvat", ".json": "coco"}.get(path.suffix.lower())
    if kind is None:
        raise TuningError(f"{path}: expected a CVAT .xml or a COCO .json file")
    try:
        return load_boxes(path, kind)
    except AnnotationError as exc:
        raise TuningError(str(exc)) from None


def to_class_ids(
    truth: FrameBoxes, names: dict[int, str], mapping: dict[str, str | None], path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Per box, the dataset class id (-1: dropped by the map); fails naming unmapped tool classes."""
    ids = {v: k for k, v in names.items()}
    unknown = sorted({str(x) for x in truth.label} - set(ids) - set(mapping))
    if unknown:
        raise TuningError(
            f"{path}: class(es) {', '.join(unknown)} are not in the dataset ({', '.join(names.values())}): "
            "map them with --map TOOL_NAME=MODEL_NAME, or drop them with --map TOOL_NAME="
        )
    target = [mapping.get(str(label), str(label)) for label in truth.label]
    class_id = np.array([ids[t] if t is not None else -1 for t in target], np.int64)
    return class_id, ~truth.ignore & (class_id >= 0)
