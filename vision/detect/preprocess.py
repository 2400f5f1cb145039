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
    width: int  # source frame
    height: int
    input_width: int  # network input (the canvas the frame was placed on)
    input_height: int


def check_image(image: np.ndarray) -> None:
    """A frame the detector can take: HxWx3 uint8 (BGR), at least 2x2 pixels."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or min(image.shape[:2]) < 2:
        raise ValueError(
            f"expected an HxWx3 uint8 image of at least 2x2 pixels, got shape {image.shape} "
            f"dtype {image.dtype}"
        )


def place(image: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, Geometry]:
    """Resize one HxWx3 uint8 frame into an input-sized canvas (stretch or letterbox).

    The letterbox reproduces Ultralytics' LetterBox (rounded sides, centre padding split
    with the same -0.1/+0.1 rounding, border 114, rect mode padding to a multiple of
    the stride) so that a YOLO export sees exactly the pixels it sees under Ultralytics.
    """
    check_image(image)
    h, w = image.shape[:2]
    if spec.resize == "stretch":
        out = cv2.resize(image, (spec.width, spec.height), interpolation=cv2.INTER_LINEAR)
        return out, Geometry(spec.width / w, spec.height / h, 0.0, 0.0, w, h, spec.width, spec.height)
    r = min(spec.width / w, spec.height / h)
    nw, nh = max(round(w * r), 1), max(round(h * r), 1)
    dw, dh = spec.width - nw, spec.height - nh
    if spec.rect:
        dw, dh = dw % spec.stride, dh % spec.stride
    left, top = round(dw / 2 - 0.1), round(dh / 2 - 0.1)
    resized = image if (nw, nh) == (w, h) else cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    # one call writes the border and copies the picture in: no filled canvas written over
    pad = (spec.pad_value,) * 3
    out = cv2.copyMakeBorder(resized, top, dh - top, left, dw - left, cv2.BORDER_CONSTANT, value=pad)
    return out, Geometry(nw / w, nh / h, float(left), float(top), w, h, nw + dw, nh + dh)


def to_tensor(images: list[np.ndarray], spec: InputSpec) -> np.ndarray:
    """Stack placed BGR images (all one size) into the card's layout, colour order, dtype and normalization.

    Float inputs are written one channel plane at a time straight into the output
    (a strided read, one subtract, one scale): about 5x faster than transposing and
    converting the whole batch, which matters at 640x640 where this is a per-frame cost.
    """
    channels = (2, 1, 0) if spec.color == "rgb" else (0, 1, 2)
    nchw = spec.layout == "nchw"
    if spec.dtype == "uint8":  # cv2's channel swap: 30x numpy's fancy index over the batch
        if spec.color == "rgb":  # swapped straight into the batch: no image swapped, then stacked
            batch = np.empty((len(images), *images[0].shape), np.uint8)
            for i, image in enumerate(images):
                cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=batch[i])
        else:
            batch = np.stack(images)
        return np.ascontiguousarray(batch.transpose(0, 3, 1, 2)) if nchw else batch
    h, w = images[0].shape[:2]
    out = np.empty((len(images), 3, h, w) if nchw else (len(images), h, w, 3), np.float32)
    mean = np.float32(spec.mean)
    # x / 255 and x * (1 / 255) differ in the last bit, and a dynamically quantized model
    # amplifies that into pixels of box movement: divide when the scale is 1 / integer,
    # exactly as Ultralytics (and most exporters' reference code) does.
    divisor = round(1 / spec.scale) if spec.scale > 0 else 0
    exact = divisor > 0 and abs(divisor * spec.scale - 1) < 1e-9
    for i, image in enumerate(images):
        planes = cv2.split(image)  # contiguous B, G, R: numpy's casts vectorize on contiguous input
        for c, src in enumerate(channels):
            plane = out[i, c] if nchw else out[i, :, :, c]
            if exact and not spec.mean:
                np.divide(planes[src], np.float32(divisor), out=plane, dtype=np.float32)
                continue
            np.subtract(planes[src], mean, out=plane, dtype=np.float32)
            if exact:
                np.divide(plane, np.float32(divisor), out=plane)
            else:
                np.multiply(plane, np.float32(spec.scale), out=plane)
    return out


def to_source(xyxy: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Map [N, 4] boxes from network-input pixels back to source pixels, clipped to the frame.

    Whole rows at once in the boxes' own precision (as a Python float operand would be), and
    maximum/minimum rather than np.clip, whose wrapper costs more than the arithmetic on a few boxes.
    """
    g = geometry
    dtype = np.result_type(xyxy.dtype, np.float32)
    pad = np.array([g.pad_x, g.pad_y, g.pad_x, g.pad_y], dtype)
    scale = np.array([g.scale_x, g.scale_y, g.scale_x, g.scale_y], dtype)
    out = ((xyxy - pad) / scale).astype(np.float32, copy=False)
    np.maximum(out, 0, out=out)
    return np.minimum(out, np.array([g.width, g.height, g.width, g.height], np.float32), out=out)
