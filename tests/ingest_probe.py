"""Camera readers in a process of their own, for tests that stop that process (SIGSTOP) so that its
readers fall behind the live edge for real, with the stream piling up in their sockets meanwhile.

The child (``python3 -m tests.ingest_probe CONFIG``, CONFIG a JSON object of camera id -> camera
config) takes every frame its readers hand over and prints one JSON line per frame: the camera,
the frame's stream time, when it was taken (``time.monotonic()``: CLOCK_MONOTONIC, the same clock
in the test's process) and the reader's counters then (decoded, skipped, reconnects).
:class:`ReaderProcess` runs it from a test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

POLL = 0.05  # seconds the child waits for a frame before looking again


def main(config: str) -> None:
    from vision.config import CameraConfig
    from vision.ingest.reader import CameraReader

    notify = threading.Event()
    readers = [
        CameraReader(camera_id, CameraConfig.model_validate(settings), notify).start()
        for camera_id, settings in json.loads(config).items()
    ]
    while True:
        notify.wait(POLL)
        notify.clear()
        for reader in readers:
            while (frame := reader.take()) is not None:
                health = reader.health()
                line = {
                    "camera": reader.camera_id,
                    "pts": frame.pts,
                    "taken": time.monotonic(),
                    "decoded": health.frames_in,
                    "skipped": health.frames_skipped,
                    "reconnects": health.reconnects,
                }
                print(json.dumps(line), flush=True)


class ReaderProcess:
    """The child above, started with ``cameras`` (id -> config); its lines gathered as they come."""

    def __init__(self, cameras: dict[str, dict[str, Any]], root: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.ingest_probe", json.dumps(cameras)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=root,
            env=os.environ | {"PYTHONPATH": root},
            start_new_session=True,
        )
        self.lines: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._gather, daemon=True)
        self._thread.start()

    def _gather(self) -> None:
        assert self.proc.stdout is not None
        for text in self.proc.stdout:
            with self._lock:
                self.lines.append(json.loads(text))

    def frames(self, camera: str) -> list[dict[str, Any]]:
        with self._lock:
            return [line for line in self.lines if line["camera"] == camera]

    def wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            assert self.proc.poll() is None, f"the reader process ended ({self.proc.returncode})"
            assert time.monotonic() < deadline, f"{what}: not after {timeout} s"
            time.sleep(POLL)

    def pause(self, seconds: float) -> float:
        """Stop the whole process for ``seconds`` (SIGSTOP, SIGCONT); when it was resumed (monotonic)."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(self.proc.pid, signal.SIGCONT)
        return time.monotonic()

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._thread.join(5)


if __name__ == "__main__":
    main(sys.argv[1])
