"""Pre-label a mined dataset with the current model, split it by camera, hand it to a tool, read it back.

The split puts whole cameras in ``val``: a model that learnt a camera's background by
heart scores well on frames of that camera and badly elsewhere, so only unseen cameras
measure what a new camera will get. With a single camera, its last frames in time go to
``val`` instead (said in the summary), which at least keeps near-identical neighbours apart.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vision.config import CameraConfig
from vision.detect.card import ModelCard
from vision.detect.detector import Detector
from vision.tuning.errors import TuningError
from vision.tuning.formats import (
    LabelledImage,
    parse_class_map,
    read_tool_file,
    to_class_ids,
    write_coco,
    write_cvat,
)
from vision.tuning.layout import load_dataset, read_labels, write_data_yaml, write_labels
from vision.tuning.litter import litter_blobs_by_record
from vision.tuning.mine import read_manifest

CVAT_FILE = "annotations/cvat.xml"
COCO_FILE = "annotations/coco.json"
BATCH = 8


def split_by_camera(
    records: list[dict[str, Any]], val_fraction: float, val_cameras: list[str] | None = None
) -> tuple[dict[str, list[int]], str]:
    """Indices of the train and val frames, and how the split was made (for the summary)."""
    counts = Counter(r["camera"] for r in records)
    if val_cameras:
        unknown = sorted(set(val_cameras) - set(counts))
        if unknown:
            raise TuningError(
                f"--val-cameras: {', '.join(unknown)} not in the dataset ({', '.join(sorted(counts))})"
            )
        chosen = set(val_cameras)
    elif len(counts) == 1:
        order = sorted(range(len(records)), key=lambda i: (records[i]["pts"] or 0.0, records[i]["index"]))
        cut = len(order) - max(1, round(val_fraction * len(order)))
        val = sorted(order[cut:])
        note = f"one camera only: its last {len(val)} frames in time are val"
        return {"train": sorted(order[:cut]), "val": val}, note
    else:  # cameras in a fixed pseudo-random order, until val holds its share (never every camera)
        order = sorted(counts, key=lambda c: hashlib.sha1(c.encode()).hexdigest())
        chosen, held = set(), 0
        for camera in order[:-1]:
            if held >= val_fraction * len(records):
                break
            chosen.add(camera)
            held += counts[camera]
    if chosen == set(counts):
        raise TuningError("--val-cameras: leave at least one camera for training")
    val = [i for i, r in enumerate(records) if r["camera"] in chosen]
    train = [i for i, r in enumerate(records) if r["camera"] not in chosen]
    return {"train": train, "val": val}, f"val cameras: {', '.join(sorted(chosen))}"


def labelled_images(root: Path, records: list[dict[str, Any]]) -> list[LabelledImage]:
    """The dataset's current labels, per manifest frame."""
    out = []
    for r in records:
        xyxy, class_id = read_labels(root / r["image"], r["width"], r["height"])
        out.append(LabelledImage(r["index"], Path(r["image"]).name, r["width"], r["height"], xyxy, class_id))
    return out


def prelabel(
    root: Path,
    card: ModelCard,
    min_score: float,
    classes: list[str] | None,
    val_fraction: float,
    val_cameras: list[str] | None,
    threads: int = 0,
    relabel: bool = False,
    cameras: dict[str, CameraConfig] | None = None,
) -> dict[str, Any]:
    """Label every mined frame with the model, write the YOLO layout, the split and the tool files.

    With the config's ``cameras`` and a ``litter`` class, frames of a file camera with a litter rule
    also get the rule's static blobs as ``litter`` boxes (see vision/tuning/litter.py)."""
    records = read_manifest(root)
    if (root / "data.yaml").exists() and not relabel:
        raise TuningError(
            f"{root}: already labelled (data.yaml); pass --relabel to replace every label with the model's"
        )
    names = {i: n for i, n in enumerate(classes)} if classes else dict(card.labels)
    detector = Detector(card, threads=threads, min_score=min_score)
    to_dataset = {k: next((i for i, n in names.items() if n == v), -1) for k, v in detector.names.items()}
    litter_id = next((i for i, n in names.items() if n == "litter"), None)
    blobs, notes = (
        ({}, []) if litter_id is None or not cameras else litter_blobs_by_record(records, cameras, detector)
    )
    boxes = litter = 0
    for start in range(0, len(records), BATCH):
        batch = records[start : start + BATCH]
        images = [cv2.imread(str(root / r["image"]), cv2.IMREAD_COLOR) for r in batch]
        for r, image in zip(batch, images, strict=True):
            if image is None:
                raise TuningError(f"{root / r['image']}: cannot read it (the manifest lists it)")
        for r, image, found in zip(batch, images, detector.detect(images), strict=True):
            class_id = np.array([to_dataset[int(c)] for c in found.class_id], np.int64)
            keep = class_id >= 0  # classes the dataset does not train are not pre-labelled
            xyxy, class_id = found.xyxy[keep], class_id[keep]
            if r["index"] in blobs:
                replayer, at_frame = blobs[r["index"]]
                extra = replayer.litter(image, float(r["pts"]), at_frame, found)
                xyxy = np.concatenate([xyxy, extra.astype(xyxy.dtype)])
                class_id = np.concatenate([class_id, np.full(len(extra), litter_id, np.int64)])
                litter += len(extra)
            write_labels(root / r["image"], xyxy, class_id, r["width"], r["height"])
            boxes += len(class_id)
    indices, note = split_by_camera(records, val_fraction, val_cameras)
    write_data_yaml(root, names, {s: [root / records[i]["image"] for i in v] for s, v in indices.items()})
    (root / "annotations").mkdir(exist_ok=True)
    current = labelled_images(root, records)
    write_cvat(root / CVAT_FILE, current, names, root.name)
    write_coco(root / COCO_FILE, current, names)
    return {
        "frames": len(records),
        "boxes": boxes,
        "litter_blobs": litter,
        "model": card.name,
        "names": names,
        "train": len(indices["train"]),
        "val": len(indices["val"]),
        "split": note,
        "cvat": str(root / CVAT_FILE),
        "coco": str(root / COCO_FILE),
        "notes": notes,
    }


def import_labels(root: Path, tool_file: Path, pairs: list[str]) -> dict[str, Any]:
    """Replace the labels of every frame the tool file covers with its boxes (mapped to dataset classes)."""
    records = read_manifest(root)
    dataset = load_dataset(root)
    mapping = parse_class_map(pairs, dataset.names)
    truth = read_tool_file(tool_file)
    class_id, keep = to_class_ids(truth, dataset.names, mapping, tool_file)
    by_index = {r["index"]: r for r in records}
    strangers = sorted(int(f) for f in truth.frames if int(f) not in by_index)
    if strangers:
        raise TuningError(
            f"{tool_file}: image(s) numbered {', '.join(map(str, strangers[:5]))} are not frames of {root} "
            "(names must end in the frame's index, as written by `dataset label`)"
        )
    for frame in truth.frames.tolist():
        r = by_index[frame]
        rows = keep & (truth.frame == frame)
        write_labels(root / r["image"], truth.xyxy[rows], class_id[rows], r["width"], r["height"])
    return {
        "images": len(truth.frames),
        "boxes": int(keep.sum()),
        "dropped_boxes": int((~keep).sum()),
        "unchanged_images": len(records) - len(truth.frames),
        "classes": dict(Counter(dataset.names[int(c)] for c in class_id[keep])),
    }
