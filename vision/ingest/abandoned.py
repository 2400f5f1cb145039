"""Ending a process whose camera threads are stuck in FFmpeg.

A reader or main-stream thread opening a stream that never answers sits in FFmpeg's open, and
FFmpeg calls PyAV's open-timeout callback there, which takes the GIL. The pipeline abandons such
a thread at its end (a daemon thread: an open cannot be interrupted, and it must not hold up the
exit). If the interpreter is finalized while the thread is still there, the callback's next call
takes the GIL of an interpreter that is gone and the process dies of SIGSEGV at exit, after its
work is done (tests/test_substreams.py's hung main stream: 1 run in 4 to 15 under load; the core's
crashing thread in ``new_threadstate (interp=0x0)`` under ``av.container.core.interrupt_cb``). So
a command that leaves such threads behind ends its process without finalizing, once everything it
owns is closed and its output flushed.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)
PREFIXES = ("camera-", "main-")  # the names of the readers' and main streams' threads


def abandoned() -> list[str]:
    """The camera threads still alive (stuck in a stream's open or read), by name."""
    return sorted(
        t.name for t in threading.enumerate() if t.daemon and t.name.startswith(PREFIXES) and t.is_alive()
    )


def leave(code: int) -> int:
    """``code`` when no camera thread is left; else the process ends here with it, without finalizing
    (its logs and standard streams flushed first)."""
    stuck = abandoned()
    if not stuck:
        return code
    log.info("ending without waiting for %s: still in a stream's open or read", ", ".join(stuck))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
