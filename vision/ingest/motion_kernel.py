"""Block motion from a frame's exported motion vectors (vision/ingest/vectors.py), compiled with Numba.

At 2 detections a second a reader decodes every frame, and each P-frame's vectors become a grid of
blocks: the numpy version was ten array calls, 65-180 microseconds a frame on the street clips, all of
it with the GIL held, in every reader thread (benchmarks/vector_motion.md; in py-spy ``--gil`` profiles
of 8 street cameras the vectors' module was where the GIL was held longest, benchmarks/gil_held.md).
Here it is one loop over the vectors with the numpy version's arithmetic: float32 areas and movements,
float64 sums in the vectors' order (as ``np.bincount`` adds them), so each block's value is the same
(tests/test_motion_gate.py holds the numpy version to compare with). It keeps the GIL (no ``nogil``):
a call is microseconds, less than handing the GIL to another thread and waiting for it back costs.

Compiled (or read from Numba's cache) when first imported: vision/kernels.py's ``load_kernels``, as a
pipeline is set up, before frames flow.
"""

from __future__ import annotations

import math

import numpy as np
from numba import float32, from_dtype, intp, njit, types, void

from vision.ingest.vectors import VECTORS

# a frame's vectors as PyAV exports them, read only (the buffer is the frame's side data); a writable
# array of the same records is taken too. One record array, not its fields: each argument costs the
# call microseconds of checking, the GIL held
SIGNATURE = void(
    types.Array(from_dtype(VECTORS), 1, "C", readonly=True), intp, intp, intp, float32, float32[:, ::1]
)


@njit(SIGNATURE, cache=True)
def block_grid(
    vectors: np.ndarray, width: int, height: int, block: int, covered: np.float32, out: np.ndarray
) -> None:
    """Into ``out`` (rows x cols blocks of ``block`` pixels): each block's pixels moved, the area-weighted
    mean of the vectors that land in it; infinite where they cover less than ``covered`` of its area."""
    rows, cols = out.shape
    cover = np.zeros(rows * cols, np.float64)
    moved = np.zeros(rows * cols, np.float64)
    for i in range(vectors.shape[0]):
        v = vectors[i]
        x = min(max(intp(v.dst_x), 0), width - 1) // block
        y = min(max(intp(v.dst_y), 0), height - 1) // block
        k = y * cols + x
        area = np.float32(v.w) * np.float32(v.h)
        length = np.float32(math.hypot(float(v.motion_x), float(v.motion_y)))
        pixels = length / np.float32(max(v.motion_scale, 1))
        cover[k] += area
        moved[k] += area * pixels
    least = float(covered) * block * block
    for k in range(rows * cols):
        value = moved[k] / max(cover[k], 1.0)
        out[k // cols, k % cols] = np.float32(np.inf) if cover[k] < least else np.float32(value)
