"""Per-frame boxes from annotation tools: COCO JSON and CVAT 1.1 XML, keyed by video frame.

Annotators label videos in tools such as CVAT and export either CVAT's own XML (tracks
of boxes for a video task, or images for an image task) or COCO JSON. Both become one
struct of arrays indexed by the video's frame number; the frame's timestamp is then
``frame / fps`` of the video, the same clock the pipeline runs on. Every frame the file
covers counts as annotated, boxes or not: a detection on an empty annotated frame is a
false positive.
"""

from __future__ import annotations

import itertools
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TRAILING_NUMBER = re.compile(r"(\d+)\D*$")


class AnnotationError(ValueError):
    """An annotation file that cannot be read; the message names the file and the element."""


@dataclass(frozen=True)
class FrameBoxes:
    """Ground-truth boxes of annotated frames, one row per box."""

    frames: np.ndarray  # int64 [F]: every annotated frame, with or without boxes, sorted
    frame: np.ndarray  # int64 [M]: the frame of each box
    xyxy: np.ndarray  # float32 [M, 4], pixels
    label: np.ndarray  # str [M]
    ignore: np.ndarray  # bool [M]: a crowd region; a detection on it is neither right nor wrong
    labels: tuple[str, ...]  # the classes the file annotates (COCO categories, CVAT labels)

    def __len__(self) -> int:
        return int(self.frame.shape[0])


def _build(frames: set[int], rows: list[tuple[int, list[float], str, bool]], labels: list[str]) -> FrameBoxes:
    return FrameBoxes(
        frames=np.array(sorted(frames), np.int64),
        frame=np.array([r[0] for r in rows], np.int64),
        xyxy=np.array([r[1] for r in rows], np.float32).reshape(len(rows), 4),
        label=np.array([r[2] for r in rows], dtype=str).reshape(len(rows)),
        ignore=np.array([r[3] for r in rows], bool),
        labels=tuple(dict.fromkeys([*labels, *(r[2] for r in rows)])),
    )


def load_coco(path: Path) -> FrameBoxes:
    """COCO detection JSON. The video frame of an image is its ``frame_id`` if present, else the
    last number in its file name (CVAT's COCO export names them ``frame_000123``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"{path}: cannot read it: {exc}") from None
    except json.JSONDecodeError as exc:
        raise AnnotationError(f"{path}: not valid JSON (line {exc.lineno}): {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise AnnotationError(f"{path}: not a COCO file: it needs an 'images' list")
    categories = {}
    for i, cat in enumerate(data.get("categories", [])):
        try:
            categories[int(cat["id"])] = str(cat["name"])
        except (KeyError, TypeError, ValueError):
            raise AnnotationError(f"{path}: categories[{i}] needs an integer 'id' and a 'name'") from None
    frame_of: dict[int, int] = {}
    for i, image in enumerate(data["images"]):
        try:
            image_id = int(image["id"])
        except (KeyError, TypeError, ValueError):
            raise AnnotationError(f"{path}: images[{i}] needs an integer 'id'") from None
        if "frame_id" in image:
            frame_of[image_id] = int(image["frame_id"])
            continue
        match = TRAILING_NUMBER.search(Path(str(image.get("file_name", ""))).stem)
        if match is None:
            raise AnnotationError(
                f"{path}: images[{i}] (id {image_id}): no frame number: give it a 'frame_id' "
                "or a file name ending in the frame number (frame_000123.png)"
            )
        frame_of[image_id] = int(match.group(1))
    rows = []
    for i, ann in enumerate(data.get("annotations", [])):
        try:
            image_id, category, (x, y, w, h) = int(ann["image_id"]), int(ann["category_id"]), ann["bbox"]
            box = [float(x), float(y), float(x) + float(w), float(y) + float(h)]
        except (KeyError, TypeError, ValueError):
            raise AnnotationError(
                f"{path}: annotations[{i}] needs 'image_id', 'category_id' and 'bbox' [x, y, w, h]"
            ) from None
        if image_id not in frame_of:
            raise AnnotationError(f"{path}: annotations[{i}]: image_id {image_id} is not in 'images'")
        if category not in categories:
            raise AnnotationError(f"{path}: annotations[{i}]: category_id {category} is not in 'categories'")
        rows.append((frame_of[image_id], box, categories[category], bool(ann.get("iscrowd", 0))))
    return _build(set(frame_of.values()), rows, list(categories.values()))


def load_cvat(path: Path) -> FrameBoxes:
    """CVAT 1.1 XML: ``<track>`` boxes of a video task (interpolated between the frames listed,
    ended by ``outside="1"``; frame numbers are the video's) and ``<image>`` boxes of an image
    task (frame: the last number of the image's name, frame_000123.png, else its id)."""
    try:
        root = ET.parse(path).getroot()
    except OSError as exc:
        raise AnnotationError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except ET.ParseError as exc:
        raise AnnotationError(f"{path}: not valid XML (line {exc.position[0]}): {exc}") from None
    if root.tag != "annotations":
        raise AnnotationError(f"{path}: not a CVAT file: the root element is <{root.tag}>, not <annotations>")
    task = root.find("meta/task")
    if task is None:
        task = root.find("meta/job")  # job exports carry the same fields
    labels = [e.text or "" for e in root.iterfind("meta/*/labels/label/name")]
    rows: list[tuple[int, list[float], str, bool]] = []
    frames: set[int] = set()
    for image in root.iterfind("image"):
        number = TRAILING_NUMBER.search(Path(image.get("name", "")).stem)
        frame = int(number.group(1)) if number else _int(path, image, "id")
        frames.add(frame)
        rows += [(frame, _box(path, b), b.get("label", ""), False) for b in image.iterfind("box")]
    tracks = root.findall("track")
    if tracks:
        track_rows = [row for track in tracks for row in _track_rows(path, track)]
        covered = _task_frames(path, task, track_rows)
        rows += [row for row in track_rows if row[0] in covered]  # a task with a step skips frames
        frames |= covered
    return _build(frames, rows, labels)


def _track_rows(path: Path, track: ET.Element) -> list[tuple[int, list[float], str, bool]]:
    """Every frame of a track: listed boxes, and linear interpolation between two visible ones."""
    label = track.get("label", "")
    keys = sorted(
        ((_int(path, b, "frame"), _box(path, b), b.get("outside") == "1") for b in track.iterfind("box")),
        key=lambda k: k[0],
    )
    rows = []
    for (f0, b0, out0), (f1, b1, _) in itertools.pairwise(keys):
        if out0:
            continue
        a, b = np.array(b0), np.array(b1)
        rows += [(f, list(a + (b - a) * (f - f0) / (f1 - f0)), label, False) for f in range(f0, f1)]
    if keys and not keys[-1][2]:
        rows.append((keys[-1][0], keys[-1][1], label, False))
    return rows


def _task_frames(path: Path, task: ET.Element | None, rows: list) -> set[int]:
    """The frames a video task covers: start to stop frame at its step (``frame_filter`` step=N)."""
    if task is not None and task.findtext("stop_frame"):
        start = int(task.findtext("start_frame") or 0)
        stop = int(task.findtext("stop_frame") or 0)
        step_match = re.search(r"step\s*=\s*(\d+)", task.findtext("frame_filter") or "")
        step = int(step_match.group(1)) if step_match else 1
        return set(range(start, stop + 1, step))
    if task is not None and task.findtext("size"):
        return set(range(int(task.findtext("size") or 0)))
    if not rows:
        raise AnnotationError(f"{path}: tracks without boxes and no <meta><task> frame range")
    listed = [r[0] for r in rows]
    return set(range(min(listed), max(listed) + 1))


def _int(path: Path, element: ET.Element, key: str) -> int:
    try:
        return int(element.attrib[key])
    except (KeyError, ValueError):
        raise AnnotationError(f"{path}: <{element.tag}> needs an integer {key!r}") from None


def _box(path: Path, element: ET.Element) -> list[float]:
    try:
        return [float(element.attrib[k]) for k in ("xtl", "ytl", "xbr", "ybr")]
    except (KeyError, ValueError):
        raise AnnotationError(f"{path}: <box> needs numbers xtl, ytl, xbr and ybr") from None


def load_boxes(path: Path, kind: str) -> FrameBoxes:
    """Read an annotation file of the given kind (``coco`` or ``cvat``)."""
    return load_cvat(path) if kind == "cvat" else load_coco(path)
