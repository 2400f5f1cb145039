"""Hand frames from a camera's reader thread to the pipeline: every frame, or only the newest.

Files read for evaluation must lose nothing, so their reader waits when the pipeline is
behind (:class:`FrameQueue`). A live camera must never build a backlog, so its reader
replaces an untaken frame with the newer one and counts the drop (:class:`LatestFrame`):
however slow the pipeline, the frame it gets next is the newest one.
"""

from __future__ import annotations

import threading
from collections import deque

from vision.types import Frame

POLL = 0.1  # seconds between checks of the stop flag while a reader waits for room


class _Handoff:
    """Shared parts: a condition, a closed flag, and an event that wakes the pipeline on any frame."""

    def __init__(self, notify: threading.Event | None) -> None:
        self._cond = threading.Condition()
        self._frames: deque[Frame] = deque()
        self._closed = False
        self._notify = notify

    def _added(self) -> None:
        self._cond.notify_all()
        if self._notify is not None:
            self._notify.set()

    def take(self, timeout: float | None = 0.0) -> Frame | None:
        """The next frame, waiting up to ``timeout`` seconds (None: until one comes or the end)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._frames or self._closed, timeout):
                return None
            frame = self._frames.popleft() if self._frames else None
            self._cond.notify_all()
            return frame

    def close(self) -> None:
        """No more frames will come; waiting takers wake up."""
        with self._cond:
            self._closed = True
            self._added()

    @property
    def done(self) -> bool:
        """Closed and emptied: nothing more to take."""
        with self._cond:
            return self._closed and not self._frames


class FrameQueue(_Handoff):
    """Every frame in order; :meth:`put` waits while ``capacity`` frames are untaken."""

    def __init__(self, capacity: int = 4, notify: threading.Event | None = None) -> None:
        super().__init__(notify)
        self.capacity = capacity

    def put(self, frame: Frame, stop: threading.Event) -> bool:
        """Add a frame; False if ``stop`` was set while waiting for room (the frame is not added)."""
        with self._cond:
            while len(self._frames) >= self.capacity:
                if stop.is_set():
                    return False
                self._cond.wait(POLL)
            self._frames.append(frame)
            self._added()
            return True


class LatestFrame(_Handoff):
    """Only the newest frame; :meth:`put` never waits."""

    def put(self, frame: Frame) -> bool:
        """Add a frame; True if it replaced one the pipeline had not taken (a dropped frame)."""
        with self._cond:
            dropped = bool(self._frames)
            self._frames.clear()
            self._frames.append(frame)
            self._added()
            return dropped
