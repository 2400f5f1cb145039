"""Turn BGR frames into the tensor a model card describes, and map boxes back.

Resizing dominates preprocessing, so it is one cv2.resize per frame; colour order,
layout and dtype conversions are views or one vectorized pass over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vision.detect.card import InputSpec


@dataclass(frozen=True, slots=True)
class Geometry:
    """How a source frame was placed into the network input: x_in = x_src * scale + pad."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    width: int
    height: int


def place(image: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, Geometry]:
    """Resize one HxWx3 uint8 frame into an input-sized canvas (stretch or letterbox)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 image, got shape {image.shape} dtype {image.dtype}")
    h, w = image.shape[:2]
    if spec.resize == "stretch":
        out = cv2.resize(image, (spec.width, spec.height), interpolation=cv2.INTER_LINEAR)
        return out, Geometry(spec.width / w, spec.height / h, 0.0, 0.0, w, h)
    r = min(spec.width / w, spec.height / h)
    nw, nh = round(w * r), round(h * r)
    left = round((spec.width - nw) / 2 - 0.1)
    top = round((spec.height - nh) / 2 - 0.1)
    out = np.full((spec.height, spec.width, 3), 114, np.uint8)
    out[top : top + nh, left : left + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return out, Geometry(r, r, float(left), float(top), w, h)


def to_tensor(images: list[np.ndarray], spec: InputSpec) -> np.ndarray:
    """Stack placed BGR images into the card's layout, colour order, dtype and normalization."""
    batch = np.stack(images)  # N,H,W,3 BGR
    if spec.color == "rgb":
        batch = batch[..., ::-1]
    if spec.layout == "nchw":
        batch = batch.transpose(0, 3, 1, 2)
    if spec.dtype == "uint8":
        return np.ascontiguousarray(batch)
    tensor = batch.astype(np.float32)
    if spec.mean:
        tensor -= spec.mean
    if spec.scale != 1.0:
        tensor *= spec.scale
    return np.ascontiguousarray(tensor)


def to_source(xyxy: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Map [N, 4] boxes from network-input pixels back to source pixels, clipped to the frame."""
    out = np.empty_like(xyxy, dtype=np.float32)
    out[:, [0, 2]] = (xyxy[:, [0, 2]] - geometry.pad_x) / geometry.scale_x
    out[:, [1, 3]] = (xyxy[:, [1, 3]] - geometry.pad_y) / geometry.scale_y
    np.clip(out, 0, [geometry.width, geometry.height, geometry.width, geometry.height], out=out)
    return out
