"""A one-line progress bar on stderr, redrawn in place on a terminal and one line per video in a log."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30


class Progress:
    """Frames done of the current video; redraws at most ten times a second."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.name = ""
        self.total = 0
        self.done = 0
        self.started = 0.0
        self.drawn = 0.0

    def start(self, name: str, total: int) -> None:
        self.name, self.total, self.done = name, max(total, 1), 0
        self.started = self.drawn = time.perf_counter()
        self._draw()

    def step(self) -> None:
        self.done += 1
        now = time.perf_counter()
        if self.live and now - self.drawn >= 0.1:
            self.drawn = now
            self._draw()

    def finish(self, note: str = "") -> None:
        self.total = max(self.total, self.done)
        self._draw(end=True, note=note)

    def _draw(self, end: bool = False, note: str = "") -> None:
        if not (self.live or end):
            return
        filled = round(WIDTH * min(self.done / self.total, 1.0))
        elapsed = time.perf_counter() - self.started
        fps = self.done / elapsed if elapsed > 0 else 0.0
        line = (
            f"{self.name:<20.20} [{'#' * filled}{'-' * (WIDTH - filled)}] "
            f"{self.done}/{self.total} frames {fps:5.1f} fps {note}"
        ).rstrip()
        self.stream.write(("\r" if self.live else "") + line + ("\n" if end else ""))
        self.stream.flush()
