"""Transitions of cameras with a main stream, held until its picture is in, so no thread waits for it.

A camera with ``detect_url`` keeps the main stream's frame as the evidence of a transition,
and fetching one (opening an RTSP stream, waiting for its keyframe) takes seconds. Instead
of making the pipeline wait, the transition is held here with everything its commit needs
(its frame, the unit's state after it) until the picture is in or ``stream.snapshot_timeout``
has passed. Only the camera's commits wait, not its analysis: it goes on taking frames, and
the transitions it finds meanwhile queue behind the held one (each with its own request to
the main stream), so its commits stay in order. It writes no checkpoint while any is held,
so a restart never finds a state ahead of its transitions. The camera's lane releases them
to the store writer, like every other commit.
"""

from __future__ import annotations

import threading
import time
from collections import deque
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

    def due(self, now: float) -> bool:
        return self.future.done() or now >= self.deadline


class EvidenceGate:
    """Held transitions, in order per camera: the first is committed once its picture is in (or late),
    and those behind it only after it."""

    def __init__(self) -> None:
        self._held: dict[str, deque[_Held]] = {}  # a camera with nothing held has no entry
        self._lock = threading.Lock()  # the lanes hold for their own cameras; the dict is shared

    def hold(self, camera_id: str, main: MainStream, stream_pts: float, record: Record) -> None:
        """Ask ``main`` for the picture of the transition at ``stream_pts``; ``record`` commits them once
        it is in (or the wait is over) and every transition of the camera held before has committed."""
        deadline = time.monotonic() + main.camera.stream.snapshot_timeout
        held = _Held(main, main.request(stream_pts), deadline, record)
        with self._lock:
            self._held.setdefault(camera_id, deque()).append(held)

    def waiting(self, camera_id: str) -> bool:
        """The camera has transitions held: it writes no checkpoint meanwhile."""
        return camera_id in self._held

    def release(self, cameras: Collection[str], wait: bool = False) -> None:
        """Commit the held transitions of ``cameras``, each camera's in order, while the first is due (its
        picture is in or its time is up); with ``wait``: all of theirs, waiting out their time (before
        anything else of a camera is stored). Called by each camera's own lane, which alone holds for it."""
        if not self._held:  # the usual case, once per frame: nothing held anywhere
            return
        with self._lock:
            held_for = [camera_id for camera_id in self._held if camera_id in cameras]
        for camera_id in held_for:
            while (held := self._next(camera_id, wait)) is not None:
                held.record(held.main.evidence(held.future, held.deadline - time.monotonic()))

    def _next(self, camera_id: str, wait: bool) -> _Held | None:
        """The camera's first held transition if it is due (any, with ``wait``), taken off its queue."""
        with self._lock:
            queued = self._held.get(camera_id)
            if not queued or not (wait or queued[0].due(time.monotonic())):
                return None
            held = queued.popleft()
            if not queued:
                del self._held[camera_id]
            return held
