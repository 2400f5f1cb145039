"""A camera's main stream, opened only when a transition needs its pictures (cameras with ``detect_url``).

Detection reads the cheap substream; the evidence of a ticket should be sharp. Decoding the
main stream all the time would cost what the substream saves, so it is opened on demand by
its own thread: a live stream gives its first keyframe (the scene a moment after the
transition), a file the frame at the transition's own time. The pipeline does not wait for it
(vision/events/evidence.py holds the transition meanwhile), and gives up after
``stream.snapshot_timeout``: a main stream that is slow, down or refusing gives no frame in
time, and the detection frame is used instead (the payload says so). A fetch that outlives
its wait finishes on this thread and is dropped; requests that came meanwhile share the next
fetch of a live stream.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import numpy as np

from vision.config import CameraConfig, DecodeConfig
from vision.ingest.decoder import SourceError, VideoDecoder
from vision.secrets import redact_text

log = logging.getLogger(__name__)
SEEK_SLACK = 1e-3  # seconds: a file's frame at the transition's time, within rounding


@dataclass(frozen=True, slots=True)
class Evidence:
    """The picture for a transition's snapshots: the main stream's, or None to use the detection frame
    (``note`` says why)."""

    image: np.ndarray | None
    note: str | None = None

    @property
    def source(self) -> str:
        return "main" if self.image is not None else "detect"


class MainStream:
    """Fetches single frames of one camera's ``url`` on its own thread."""

    def __init__(self, camera_id: str, camera: CameraConfig) -> None:
        self.camera_id = camera_id
        self.camera = camera
        # requests; None: closed, the thread ends once those before it are served
        self._requests: queue.Queue[tuple[float, Future[np.ndarray]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._logged: str | None = None  # the last fallback reason logged at warning level

    def request(self, stream_pts: float, notify: threading.Event | None = None) -> Future[np.ndarray]:
        """Ask for the main stream's frame for the transition at ``stream_pts`` (seconds of the camera's
        stream: the frame at that time in a file, the newest one live); ``notify`` is set when it is in."""
        future: Future[np.ndarray] = Future()
        if notify is not None:
            future.add_done_callback(lambda _: notify.set())
        self._requests.put((stream_pts, future))
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"main-{self.camera_id}", daemon=True)
                self._thread.start()
        return future

    def close(self) -> None:
        """End the thread once the requests made so far are served: at once if it is idle, else after
        their fetch (bounded by the stream's timeouts)."""
        self._requests.put(None)

    def join(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for the thread to end after :meth:`close`; whether it has
        (or never started)."""
        with self._lock:
            thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def evidence(self, future: Future[np.ndarray], wait: float) -> Evidence:
        """The requested frame, waiting at most ``wait`` seconds more; else why there is none."""
        try:
            return Evidence(future.result(max(0.0, wait)))
        except FutureTimeout:
            future.cancel()
            note = f"the main stream gave no frame in {self.camera.stream.snapshot_timeout:g} s"
        except SourceError as exc:
            note = str(exc)  # names the camera and the redacted URL
        level = logging.DEBUG if note == self._logged else logging.WARNING
        log.log(level, "camera %s: snapshots from the detection frame: %s", self.camera_id, note)
        self._logged = note
        return Evidence(None, note)

    def _run(self) -> None:
        closed = False
        while not closed and (request := self._requests.get()) is not None:
            waiting = [request]
            if not self.camera.url.is_file:  # one fetch of a live stream serves every request waiting
                while not self._requests.empty():
                    more = self._requests.get_nowait()
                    closed |= more is None  # the requests before it are served first
                    if more is not None:
                        waiting.append(more)
            waiting = [(p, f) for p, f in waiting if f.set_running_or_notify_cancel()]
            if not waiting:
                continue
            try:
                image = self._fetch(waiting[0][0])
            except Exception as exc:  # a library surprise must reach the waiter as a fallback, redacted
                error = exc if isinstance(exc, SourceError) else SourceError(self._describe(exc))
                for _, f in waiting:
                    f.set_exception(error)
                continue
            for _, f in waiting:
                f.set_result(image)

    def _describe(self, exc: Exception) -> str:
        detail = redact_text(f"{type(exc).__name__}: {exc}", self.camera.url)
        return f"camera {self.camera_id}: {self.camera.url}: {detail}"

    def _fetch(self, stream_pts: float) -> np.ndarray:
        """One frame of the main stream at its full size."""
        is_file = self.camera.url.is_file
        decode = DecodeConfig(threads=self.camera.decode.threads, keyframes_only=not is_file)
        stream = None if is_file else self.camera.stream
        with VideoDecoder(self.camera_id, self.camera.url, decode, stream) as decoder:
            target = 0.0
            if is_file:
                length = decoder.duration()
                target = stream_pts % length if self.camera.loop and length else stream_pts
                decoder.seek(target)
            for av_frame, pts in decoder.frames():
                if is_file and pts is not None and decoder.content_time(pts) < target - SEEK_SLACK:
                    continue  # decoded from the keyframe before the transition's time
                return decoder.image(av_frame)
        raise SourceError(f"camera {self.camera_id}: {self.camera.url} gave no frame")
