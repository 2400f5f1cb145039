"""Python's cyclic garbage collector, set for a long-running service (``street-vision run`` and ``serve``).

CPython's collector stops every thread (it holds the GIL) while it walks the objects it tracks. Most
of them are made at start-up and live as long as the process: the modules of numpy, OpenCV,
onnxruntime and the rest, the model's session, the config, one camera unit per camera. A full
collection walks them all again, each time, for nothing: at 100 cameras about 115k objects, a
pause of tens of milliseconds in which no reader, inference or analysis thread runs; frozen, it
walks about 10k (benchmarks/capacity_collector_service.md; _default.md without).
So once start-up is done they are collected once and frozen (``gc.freeze``: the collector no
longer walks them; they are never freed, which they would not be anyway). What the service makes
after that (frames' boxes, tracks, events) is collected as before. The collector never changes
what the pipeline computes, only when memory held in reference cycles is freed.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("vision")


def settle() -> int:
    """Collect what start-up left, then freeze what is left (the long-lived objects) out of the
    collector's walks; the number frozen. Call once, after the service is built: a frozen object is
    never freed by the collector (only by reference counting), so freeze once, in the process that
    runs the service, not per pipeline: a discarded one's cycles would stay for ever."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("collector: %d start-up objects frozen out of its walks", frozen)
    return frozen
