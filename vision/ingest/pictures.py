"""Decoded frames as the pipeline's pictures: BGR, upright, at the configured width; and the luma plane.

Apart from the decoder (vision/ingest/decoder.py), which reads packets and their timestamps: the same
conversion serves the detection stream, the main stream's evidence pictures (vision/ingest/mainstream.py)
and the tools that mine footage (vision/tuning/).
"""

from __future__ import annotations

import av
import numpy as np
from av.video.reformatter import VideoReformatter

FULL_RANGE = 2  # AVColorRange's JPEG: luma 0-255 (else 16-235)


def quarter_turns(rotation: float) -> int:
    """Counter-clockwise quarter turns (0-3) that make a frame upright, from its display matrix angle.

    PyAV gives the matrix's counter-clockwise angle; cameras only write multiples of 90 degrees,
    and anything in between is rounded to the nearest quarter turn (no resampling of skew).
    """
    return round(rotation / 90) % 4


def luma_plane(frame: av.VideoFrame) -> tuple[np.ndarray, bool] | None:
    """The frame's luma plane as decoded (not turned upright, not scaled; a view, no copy) and
    whether it is limited range (16-235), for the motion gate's grey picture; None for pixel
    formats without an 8-bit luma plane of their own (RGB, 10-bit)."""
    fmt = frame.format
    component = fmt.components[0]
    if not fmt.name.startswith(("yuv", "nv")) or component.bits != 8 or component.plane != 0:
        return None
    plane = frame.planes[0]
    pixels = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
    full = fmt.name.startswith("yuvj") or frame.color_range == FULL_RANGE
    return pixels, not full


class Pictures:
    """One stream's frames as BGR arrays, upright, ``width`` pixels wide (None: as decoded)."""

    def __init__(self, width: int | None) -> None:
        self.width = width
        self._sizes: dict[tuple[int, int, int], tuple[int, int]] = {}  # (w, h, turns) -> decoded size
        # one for every frame (see image): a frame's own to_ndarray makes a new one, and swscale sets
        # up its conversion again, for each frame
        self._reformatter = VideoReformatter()

    def image(self, frame: av.VideoFrame) -> np.ndarray:
        """BGR pixels upright (the display matrix applied) at the configured width.

        A phone records portrait video as landscape pixels plus a display matrix; the rules and
        the detector must see it as people do. The scaling is done in the same pass as the colour
        conversion, with area averaging: for shrinking it is cheaper than swscale's default
        bilinear filter (about 1.0 against 1.4 ms for 1080p to 640) and does not alias fine detail
        away. ``width`` is the width of the upright picture.
        """
        turns = quarter_turns(frame.rotation)
        key = (frame.width, frame.height, turns)
        size = self._sizes.get(key)
        if size is None:
            upright = (frame.height, frame.width) if turns % 2 else (frame.width, frame.height)
            out_w, out_h = self._output_size(*upright)
            size = self._sizes[key] = (out_h, out_w) if turns % 2 else (out_w, out_h)
        # threads=1: PyAV's default (0) makes swscale start and end a pool of threads for every frame,
        # hundreds a second with many cameras, for the same pixels
        if (frame.width, frame.height) == size:
            bgr = self._reformatter.reformat(frame, format="bgr24", threads=1)
        else:
            bgr = self._reformatter.reformat(
                frame, format="bgr24", width=size[0], height=size[1], interpolation="AREA", threads=1
            )
        pixels = bgr.to_ndarray()
        return np.ascontiguousarray(np.rot90(pixels, turns)) if turns else pixels

    def _output_size(self, width: int, height: int) -> tuple[int, int]:
        if not self.width or not width:
            return width, height
        out_w = self.width - self.width % 2
        return out_w, max(2, round(height * out_w / width / 2) * 2)
