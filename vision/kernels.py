"""The per-frame work's compiled kernels (Numba), loaded as a pipeline or a model is set up.

Importing one imports Numba (half a second) and, on a machine's first run, compiles it (seconds, the GIL
held, every thread of the process waiting). So they are loaded before frames flow: not by a command
that only reads a config, nor at a first frame, nor in an edit that adds a litter rule to a running
camera (its lane, and its shard's other cameras, would wait on the compile).
"""

from __future__ import annotations

import importlib

KERNELS = (
    "vision.scene.static_kernels",  # the litter look's passes
    "vision.ingest.motion_kernel",  # block motion from the codec's motion vectors
)


def load_kernels() -> None:
    """Import every compiled kernel module (a dictionary lookup each once they are loaded)."""
    for module in KERNELS:
        importlib.import_module(module)
