"""``run --jsonl``'s standard output: one JSON record a line, whole lines only, from several threads.

Its reader may quit before the run ends (``| head``, a log shipper that dies). Printing then raised
BrokenPipeError in whichever thread printed: the store writer's (the camera unit failed and
restarted), an analysis lane's (the lane died) or the stats ticker's. Now the first closed pipe stops
the run as SIGTERM does (the round finished, transitions committed, the outbox drained), later lines
are dropped, and the command ends with 141, a process ended by SIGPIPE, as ``cat`` or ``yes`` would.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
CLOSED_PIPE = 141  # 128 + SIGPIPE: the exit status of a process its closed pipe ended


def quiet_stdout() -> None:
    """Standard output onto /dev/null, so that no later print (the interpreter's own flush at exit
    among them) meets the closed pipe again."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, sys.stdout.fileno())
    os.close(null)


class JsonLines:
    """Prints records as JSON lines; ``on_closed()`` is called once, from the thread that found the
    pipe closed, outside the lock (it stops the pipeline, which may print its last lines)."""

    def __init__(self, on_closed: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._on_closed = on_closed
        self.closed = False

    def __call__(self, record: dict[str, Any]) -> None:
        with self._lock:
            if self.closed:
                return
            try:
                print(json.dumps(record), flush=True)
                return
            except BrokenPipeError:
                self.closed = True
                quiet_stdout()
        log.warning("standard output was closed (its reader quit): stopping the run, as on SIGTERM")
        self._on_closed()
