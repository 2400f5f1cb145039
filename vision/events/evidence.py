"""Transitions of cameras with a main stream, held until its picture is in, so no thread waits for it.

A camera with ``detect_url`` keeps the main stream's frame as the evidence of a transition,
and fetching one (opening an RTSP stream, waiting for its keyframe) takes seconds. Instead
of making the pipeline wait, the transition is held here with everything its commit needs
(its frame, the unit's state after it), and that camera alone pauses: it takes no new frame
and writes no checkpoint until the picture is in or ``stream.snapshot_timeout`` has passed,
so its commits stay in order and a restart never finds a state ahead of its transitions.
The other cameras go on. The lane of the camera hands them to the store writer, like every other commit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from vision.ingest.mainstream import Evidence, MainStream

Record = Callable[[Evidence | None], None]  # commits the held transitions with their pictures


@dataclass(frozen=True, slots=True)
class _Held:
    main: MainStream
    future: Future[np.ndarray]
    deadline: float  # monotonic
    record: Record


class EvidenceGate:
    """Held transitions, one batch per camera at most (a camera with one held takes no frame)."""

    def __init__(self, notify: threading.Event) -> None:
        self._notify = notify  # wakes the pipeline when a picture comes in
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()  # held by analysis lanes, looked at by the inference thread

    def hold(self, camera_id: str, main: MainStream, stream_pts: float, record: Record) -> None:
        """Ask ``main`` for the picture of the transition at ``stream_pts``; ``record`` commits them once
        it is in (or the wait is over)."""
        deadline = time.monotonic() + main.camera.stream.snapshot_timeout
        held = _Held(main, main.request(stream_pts, self._notify), deadline, record)
        with self._lock:
            self._held[camera_id] = held

    def waiting(self, camera_id: str) -> bool:
        """The camera has transitions held: it takes no frame and writes no checkpoint meanwhile."""
        return camera_id in self._held

    def release(self, cameras: Collection[str], wait: bool = False) -> None:
        """Commit the held transitions of ``cameras`` whose picture is in or whose time is up (with
        ``wait``: all of theirs, waiting out their time: before anything else of a camera is stored).
        Called by each camera's own lane, which alone holds for it."""
        if not self._held:  # the usual case, once per frame: nothing held anywhere
            return
        now = time.monotonic()
        with self._lock:
            due = [
                self._held.pop(held_id)
                for held_id, held in list(self._held.items())
                if held_id in cameras and (wait or held.future.done() or now >= held.deadline)
            ]
        for held in due:
            held.record(held.main.evidence(held.future, held.deadline - time.monotonic()))
