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

from vision.kernels import load_kernels
from vision.types import Motion

BLOCK = 16  # pixels: the macroblock of H.264 and MPEG-4 (a codec with other blocks maps onto it)
COVERED = 0.5  # share of a block that vectors must cover, else it was coded afresh
EXPORT = {"flags2": "+export_mvs"}  # the decoder option that attaches the vectors to each frame
# FFmpeg's AVMotionVector, laid out as PyAV's MotionVectors.to_ndarray lays it out; made once here, not
# per frame as to_ndarray makes it (a structured dtype takes microseconds to build, the GIL held)
VECTORS = np.dtype(
    [
        ("source", "int32"),
        ("w", "uint8"),
        ("h", "uint8"),
        ("src_x", "int16"),
        ("src_y", "int16"),
        ("dst_x", "int16"),
        ("dst_y", "int16"),
        ("flags", "uint64"),
        ("motion_x", "int32"),
        ("motion_y", "int32"),
        ("motion_scale", "uint16"),
    ],
    align=True,
)


def export_vectors(stream: av.VideoStream) -> None:
    """Ask the stream's decoder for motion vectors (before its first packet)."""
    stream.codec_context.options = {**stream.codec_context.options, **EXPORT}


def block_motion(vectors: np.ndarray, width: int, height: int) -> np.ndarray:
    """One frame's exported vectors (:data:`VECTORS` records, as PyAV's ``to_ndarray`` gives them) as
    pixels moved per block: one compiled pass over them (vision/ingest/motion_kernel.py)."""
    from vision.ingest.motion_kernel import block_grid  # loaded as the pipeline is set up (vision/kernels.py)

    grid = np.empty((-(-height // BLOCK), -(-width // BLOCK)), np.float32)
    block_grid(vectors, width, height, BLOCK, np.float32(COVERED), grid)
    return grid


class VectorMotion:
    """Sums the block motion of every decoded frame until :meth:`take` hands it over with a frame."""

    def __init__(self) -> None:
        load_kernels()  # a pipeline has them already; elsewhere not compiled at a first frame either
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
        grid = block_motion(np.frombuffer(side, VECTORS), frame.width, frame.height)
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
