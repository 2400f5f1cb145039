"""``check``'s look at the cameras: each one's detection stream opened and its first frame read, all at
once, so that a plan can be sized to it and a camera that cannot be read is named before deployment.

A file is always read (its first frame). A live camera is connected to only when asked (``check
--probe``), with its own stream settings (transport, timeouts), as the reader will: a wrong password, a
closed port or a silent stream shows as the reader's error. Each probe runs on a daemon thread named
like a reader's, since an open that never answers cannot be interrupted (vision/ingest/abandoned.py
ends the process without waiting for it), and is given up after its camera's open and read timeouts.
"""

from __future__ import annotations

import threading
import time

from vision.config import CameraConfig
from vision.ingest.decoder import SourceError, frame_size, read_timeout

GRACE = 5.0  # seconds past a live camera's open and read timeouts before its probe is given up
FILE_LIMIT = 30.0  # seconds for a file's first frame (a file on a dead network share blocks)


def probe(cameras: dict[str, CameraConfig]) -> dict[str, tuple[int, int] | str]:
    """Per camera, the width and height of its detection stream's frames as the pipeline gets them
    (upright, at decode.width), or the reason it cannot be read."""
    found: dict[str, tuple[int, int] | str] = {}

    def look(camera_id: str, camera: CameraConfig) -> None:
        stream = None if camera.source.is_file else camera.stream
        try:
            found[camera_id] = frame_size(camera_id, camera.source, camera.decode, stream)
        except SourceError as exc:
            found[camera_id] = str(exc)

    started = time.monotonic()
    threads = {}
    for camera_id, camera in cameras.items():
        threads[camera_id] = threading.Thread(
            target=look, args=(camera_id, camera), name=f"camera-probe-{camera_id}", daemon=True
        )
        threads[camera_id].start()
    result: dict[str, tuple[int, int] | str] = {}  # apart from found: a probe given up may still answer
    for camera_id, thread in threads.items():
        camera = cameras[camera_id]
        limit = (
            FILE_LIMIT
            if camera.source.is_file
            else camera.stream.open_timeout + read_timeout(camera.stream) + GRACE
        )
        thread.join(max(0.0, started + limit - time.monotonic()))
        late = f"camera {camera_id}: {camera.source}: no frame in {limit:g} s"
        result[camera_id] = found.get(camera_id, late)
    return result
