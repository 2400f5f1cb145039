"""Evidence for a ticket: a clean and an annotated JPEG of the frame of each event transition.

Written to local disk in the pipeline's thread before the transition is committed, so
the payload can name files that exist; nothing here touches the network. Files are
written under a temporary name and renamed, so a crash never leaves half a JPEG.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vision.types import Detections, Frame, Transition

ZONE_COLOR = (0, 215, 255)  # BGR amber
BOX_COLOR = (40, 40, 230)  # BGR red
JPEG_QUALITY = 90


@dataclass(frozen=True, slots=True)
class SnapshotPaths:
    """Where one transition's pictures are, relative to the data folder (as sent in payloads)."""

    clean: str
    annotated: str

    def to_record(self) -> dict[str, str]:
        return {"clean": self.clean, "annotated": self.annotated}


class SnapshotWriter:
    """Writes ``snapshots/<event id>/<pts>-<transition>[-annotated].jpg`` under the data folder."""

    def __init__(self, data_dir: Path, names: dict[int, str]) -> None:
        self.data_dir = data_dir
        self.names = names

    def write(self, transition: Transition, frame: Frame, zone_pixels: np.ndarray) -> SnapshotPaths:
        """Store the frame as it was and with the zone and the transition's boxes drawn on it."""
        folder = Path("snapshots") / transition.event["event_id"]
        (self.data_dir / folder).mkdir(parents=True, exist_ok=True)
        stem = f"{transition.pts:010.3f}-{transition.kind}"
        paths = SnapshotPaths(str(folder / f"{stem}.jpg"), str(folder / f"{stem}-annotated.jpg"))
        self._save(paths.clean, frame.image)
        self._save(paths.annotated, annotate(frame.image, zone_pixels, transition.boxes, self.names))
        return paths

    def _save(self, relative: str, image: np.ndarray) -> None:
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise ValueError(f"cannot encode a {image.shape} image as JPEG for {relative}")
        target = self.data_dir / relative
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(jpeg.tobytes())
        os.replace(partial, target)


def annotate(
    image: np.ndarray, zone_pixels: np.ndarray, boxes: Detections, names: dict[int, str]
) -> np.ndarray:
    """A copy of ``image`` with the zone outlined and each box framed and labelled."""
    out = image.copy()
    thickness = max(1, round(image.shape[1] / 400))
    cv2.polylines(out, [np.round(zone_pixels).astype(np.int32)], True, ZONE_COLOR, thickness, cv2.LINE_AA)
    for (x1, y1, x2, y2), score, class_id in zip(
        np.round(boxes.xyxy).astype(np.int32), boxes.score, boxes.class_id, strict=True
    ):
        cv2.rectangle(out, (int(x1), int(y1)), (int(x2), int(y2)), BOX_COLOR, thickness, cv2.LINE_AA)
        label = f"{names.get(int(class_id), str(int(class_id)))} {score:.2f}"
        cv2.putText(
            out,
            label,
            (int(x1), max(10, int(y1) - 3)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            BOX_COLOR,
            1,
            cv2.LINE_AA,
        )
    return out
