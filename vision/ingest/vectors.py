"""Motion from the codec's own motion vectors, added up between the frames a reader hands over.

An H.264 (or MPEG-4 ...) P or B frame is mostly blocks copied from another frame with
an offset: the motion vectors. FFmpeg exports them beside the decoded picture when asked
(``flags2=+export_mvs``), so knowing where something moved costs a few array operations per
frame instead of a look at the pixels. Each decoded frame's vectors become a grid of 16x16
blocks holding how many pixels each block moved (the area-weighted mean of its vectors); a
block no vector covers was coded afresh (intra), which is what appears or changes too much to
be copied, and counts as moved without limit. The reader decodes more frames than it hands
over (detect fps below the stream's), so the grids of all frames decoded since the last
frame handed over are summed into that frame's :class:`Motion`. A frame without vectors (a
keyframe: nothing to copy from; a codec that exports none) makes the sum unknown: None, and
the motion gate falls back to comparing pixels.
"""

from __future__ import annotations

import av
import numpy as np
from av.sidedata.sidedata import SideDataContainer
from av.video.frame import PictureType

from vision.types import Motion

BLOCK = 16  # pixels: the macroblock of H.264 and MPEG-4 (a codec with other blocks maps onto it)
COVERED = 0.5  # share of a block that vectors must cover, else it was coded afresh
EXPORT = {"flags2": "+export_mvs"}  # the decoder option that attaches the vectors to each frame


def export_vectors(stream: av.VideoStream) -> None:
    """Ask the stream's decoder for motion vectors (before its first packet)."""
    stream.codec_context.options = {**stream.codec_context.options, **EXPORT}


def block_motion(vectors: np.ndarray, width: int, height: int) -> np.ndarray:
    """One frame's exported vectors (PyAV's structured array) as pixels moved per block."""
    rows, cols = -(-height // BLOCK), -(-width // BLOCK)
    x = np.clip(vectors["dst_x"], 0, width - 1) // BLOCK
    y = np.clip(vectors["dst_y"], 0, height - 1) // BLOCK
    index = y.astype(np.intp) * cols + x
    area = vectors["w"].astype(np.float32) * vectors["h"]
    moved = np.hypot(vectors["motion_x"], vectors["motion_y"]).astype(np.float32) / np.maximum(
        vectors["motion_scale"], 1
    )
    cover = np.bincount(index, area, rows * cols)
    grid = np.bincount(index, area * moved, rows * cols) / np.maximum(cover, 1.0)
    grid[cover < COVERED * BLOCK * BLOCK] = np.inf
    return grid.astype(np.float32).reshape(rows, cols)


class VectorMotion:
    """Sums the block motion of every decoded frame until :meth:`take` hands it over with a frame."""

    def __init__(self) -> None:
        self._sum: np.ndarray | None = None
        self._known = False  # every frame since the last take had vectors
        self._since: float | None = None  # pts of the last frame handed over

    def add(self, frame: av.VideoFrame, turns: int) -> None:
        """One decoded frame (``turns``: the quarter turns that make it upright).

        The side data is read through a container of its own, not PyAV's ``frame.side_data``: that
        one is cached on the frame and points back at it, a reference cycle, so the frame and its
        decoded picture were freed by the cyclic collector, not when the reader dropped them. Those
        caught alive by two collections waited for a full one, which came rarely: 48 keyframes-only
        cameras at 0.5/s grew by 550 MB in 3 minutes (benchmarks/rss_keyframes.md), 12 cameras
        decoding every frame at 2/s by 137 MB in 130 s (benchmarks/rss_readers.md). An I-frame's is
        not read at all: it has no vectors."""
        if frame.pict_type == PictureType.I:
            self._known = False
            return
        side = SideDataContainer(frame).get("MOTION_VECTORS")  # holds the frame; the frame not it
        if side is None:
            self._known = False
            return
        grid = block_motion(side.to_ndarray(), frame.width, frame.height)
        if turns:
            grid = np.ascontiguousarray(np.rot90(grid, turns))
        if self._sum is None:
            self._sum = grid
        elif self._sum.shape == grid.shape:
            self._sum += grid
        else:  # the stream changed size: nothing to add up
            self._known = False

    def take(self, pts: float) -> Motion | None:
        """The motion since the last frame handed over, for the frame handed over now at ``pts``."""
        since, self._since = self._since, pts
        motion = None
        if since is not None and self._known and self._sum is not None:
            motion = Motion(since, self._sum)
        self._sum, self._known = None, True
        return motion
