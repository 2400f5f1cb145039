"""Analysis lanes: each a thread that takes its cameras' frames in order, and between two frames the
commands for them (zone edits, inbound reports) and the store writer's failures of their writes.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

from vision.pipeline.worker import CameraWorker
from vision.types import Detections, Frame

LANE_FRAMES = 64  # frames waiting for a lane at most: past it, inference waits (the cameras' backlog)


@dataclass
class Command:
    """A command for one camera (a zone edit, inbound reports), applied by its lane between two frames."""

    camera_id: str
    apply: Callable[[], None]
    done: threading.Event


@dataclass
class Failed:
    """The writer could not store a job of this camera's unit (of ``generation``) at camera time ``pts``."""

    camera_id: str
    generation: int
    pts: float
    error: Exception


END, WAKE = "end", "wake"  # markers in a lane's frame queue: no more frames; look at the control queue


class Lane:
    """One analysis thread and its cameras: their frames in order, commands and failures between them."""

    def __init__(self) -> None:
        self.frames: queue.Queue[tuple[CameraWorker, Frame, Detections] | str] = queue.Queue(LANE_FRAMES)
        self.control: queue.Queue[Command | Failed] = queue.Queue()  # unbounded: the writer puts here
        self.workers: list[CameraWorker] = []
        self.cameras: set[str] = set()  # the ids of its workers
        self.done = threading.Event()

    def tell(self, item: Command | Failed) -> None:
        """Queue a command or a failure, and wake the lane if it waits for frames (a busy one looks soon)."""
        self.control.put(item)
        with suppress(queue.Full):
            self.frames.put_nowait(WAKE)
