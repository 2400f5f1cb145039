"""COCO and CVAT annotation files, hand-written, read into frame-indexed boxes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vision.evaluate.annotations import AnnotationError, load_coco, load_cvat

COCO = {
    "images": [
        {"id": 1, "file_name": "frame_000010.PNG", "width": 768, "height": 576},  # CVAT's COCO export names
        {"id": 2, "file_name": "shot.jpg", "frame_id": 12},
        {"id": 3, "file_name": "frame_000014.png"},  # annotated, nothing on it
    ],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 40], "iscrowd": 0},
        {"id": 2, "image_id": 2, "category_id": 2, "bbox": [0, 0, 5, 5], "iscrowd": 1},
        {"id": 3, "image_id": 2, "category_id": 1, "bbox": [1.5, 2, 3, 4]},
    ],
    "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "bicycle"}, {"id": 3, "name": "car"}],
}

CVAT_VIDEO = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <size>6</size>
      <mode>interpolation</mode>
      <start_frame>0</start_frame>
      <stop_frame>10</stop_frame>
      <frame_filter>step=2</frame_filter>
      <labels>
        <label><name>person</name></label>
        <label><name>bicycle</name></label>
      </labels>
    </task>
  </meta>
  <track id="0" label="person" source="manual">
    <box frame="0" outside="0" occluded="0" keyframe="1" xtl="0.00" ytl="0" xbr="10.00" ybr="20.00"/>
    <box frame="4" outside="0" occluded="0" keyframe="1" xtl="8.00" ytl="0" xbr="18.00" ybr="20.00"/>
    <box frame="6" outside="1" occluded="0" keyframe="1" xtl="8.00" ytl="0" xbr="18.00" ybr="20.00"/>
  </track>
  <track id="1" label="bicycle" source="manual">
    <box frame="8" outside="0" occluded="1" keyframe="1" xtl="100" ytl="50" xbr="200" ybr="120" z_order="0"/>
  </track>
</annotations>
"""

CVAT_IMAGES = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><mode>annotation</mode></task></meta>
  <image id="0" name="frame_000030.png" width="768" height="576">
    <box label="person" occluded="0" source="manual" xtl="1" ytl="2" xbr="3" ybr="4" z_order="0"/>
  </image>
  <image id="7" name="empty" width="768" height="576"></image>
</annotations>
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_coco(tmp_path: Path) -> None:
    boxes = load_coco(write(tmp_path, "a.json", json.dumps(COCO)))
    assert boxes.frames.tolist() == [10, 12, 14]
    assert boxes.frame.tolist() == [10, 12, 12]
    np.testing.assert_allclose(boxes.xyxy[0], [10, 20, 40, 60])  # [x, y, w, h] -> corners
    np.testing.assert_allclose(boxes.xyxy[2], [1.5, 2, 4.5, 6])
    assert boxes.label.tolist() == ["person", "bicycle", "person"]
    assert boxes.ignore.tolist() == [False, True, False]
    assert boxes.labels == ("person", "bicycle", "car")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["images"].append({"id": 9, "file_name": "still.jpg"}),
            "images[3] (id 9): no frame number",
        ),
        (
            lambda d: d["annotations"].append({"image_id": 5, "category_id": 1, "bbox": [0, 0, 1, 1]}),
            "image_id 5",
        ),
        (
            lambda d: d["annotations"].append({"image_id": 1, "category_id": 4, "bbox": [0, 0, 1, 1]}),
            "category_id 4",
        ),
        (lambda d: d["annotations"].append({"image_id": 1, "category_id": 1}), "annotations[3] needs"),
        (lambda d: d.pop("images"), "not a COCO file"),
    ],
)
def test_coco_errors_name_the_element(tmp_path: Path, change, message: str) -> None:
    data = json.loads(json.dumps(COCO))
    change(data)
    path = write(tmp_path, "bad.json", json.dumps(data))
    with pytest.raises(AnnotationError, match=r"bad\.json") as err:
        load_coco(path)
    assert message in str(err.value)


def test_coco_not_json(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match=r"not valid JSON \(line 2\)"):
        load_coco(write(tmp_path, "x.json", '{"images": [\n oops]}'))


def test_cvat_video_tracks(tmp_path: Path) -> None:
    boxes = load_cvat(write(tmp_path, "v.xml", CVAT_VIDEO))
    assert boxes.frames.tolist() == [0, 2, 4, 6, 8, 10]  # the task's frames: 0 to 10, step 2
    # the person: interpolated on frame 2, visible to frame 4, outside from 6; the bicycle on 8
    assert boxes.frame.tolist() == [0, 2, 4, 8]
    np.testing.assert_allclose(boxes.xyxy[1], [4, 0, 14, 20])
    np.testing.assert_allclose(boxes.xyxy[3], [100, 50, 200, 120])
    assert boxes.label.tolist() == ["person", "person", "person", "bicycle"]
    assert boxes.labels == ("person", "bicycle") and not boxes.ignore.any()


def test_cvat_images(tmp_path: Path) -> None:
    boxes = load_cvat(write(tmp_path, "i.xml", CVAT_IMAGES))
    assert boxes.frames.tolist() == [7, 30]  # the frame number in the name, else the id
    assert boxes.frame.tolist() == [30] and boxes.label.tolist() == ["person"]


def test_cvat_errors(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match=r"x\.xml: not valid XML \(line 2\)"):
        load_cvat(write(tmp_path, "x.xml", "<annotations>\n<track></annotations>"))
    with pytest.raises(AnnotationError, match="the root element is <coco>"):
        load_cvat(write(tmp_path, "y.xml", "<coco/>"))
    bad = CVAT_VIDEO.replace('xbr="200"', 'xbr="wide"')
    with pytest.raises(AnnotationError, match=r"z\.xml: <box> needs numbers"):
        load_cvat(write(tmp_path, "z.xml", bad))
