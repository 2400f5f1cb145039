"""Read a video file with PyAV, yielding BGR frames stamped with the stream's own clock.

Timestamps are the frame PTS in seconds, forced monotonic, so that replaying a file
gives the same times (and so the same events) on every run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import av

from vision.config import DecodeConfig
from vision.secrets import SecretUrl, redact_text
from vision.types import Frame

log = logging.getLogger(__name__)
MAX_CONSECUTIVE_CORRUPT = 250  # packets; past this the file is unreadable, not damaged


class SourceError(Exception):
    """A camera's video cannot be opened or read; the message is safe to print (no password)."""


def _safe(url: SecretUrl, exc: BaseException) -> str:
    return redact_text(str(exc), url)


class FileSource:
    """Decodes one file once, front to back, as fast as possible."""

    def __init__(self, camera_id: str, url: SecretUrl, decode: DecodeConfig) -> None:
        self.camera_id = camera_id
        self.url = url
        self.decode = decode
        self.corrupt_packets = 0

    def frames(self) -> Iterator[Frame]:
        """Every decoded frame (every keyframe with keyframes_only); raises SourceError if unreadable."""
        try:
            container = av.open(self.url.get_secret_value(), mode="r", timeout=10)
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(
                f"camera {self.camera_id}: cannot open {self.url}: {_safe(self.url, exc)}"
            ) from None
        with container:
            if not container.streams.video:
                raise SourceError(f"camera {self.camera_id}: {self.url} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = self.decode.threads
            if self.decode.keyframes_only:
                stream.codec_context.skip_frame = "NONKEY"
            size = self._output_size(stream.codec_context.width, stream.codec_context.height)
            time_base = float(stream.time_base) if stream.time_base else 0.0
            rate = float(stream.average_rate or 25)
            last = -1.0
            index = 0
            bad = 0
            try:
                for packet in container.demux(stream):
                    try:
                        decoded = packet.decode()
                    except av.InvalidDataError:
                        bad += 1  # a corrupt packet: skip it, the next keyframe recovers the picture
                        self.corrupt_packets += 1
                        if bad > MAX_CONSECUTIVE_CORRUPT:
                            raise
                        continue
                    bad = 0
                    for frame in decoded:
                        pts = frame.pts * time_base if frame.pts is not None and time_base else index / rate
                        pts = max(pts, last + 1e-3) if last >= 0 else max(pts, 0.0)
                        last = pts
                        index += 1
                        image = frame.to_ndarray(format="bgr24", width=size[0], height=size[1])
                        yield Frame(self.camera_id, pts, image)
            except (av.FFmpegError, OSError) as exc:
                raise SourceError(
                    f"camera {self.camera_id}: {self.url} is corrupt or unreadable after "
                    f"{index} frames (t={max(last, 0):.2f}s): {_safe(self.url, exc)}"
                ) from None
            if self.corrupt_packets:
                log.warning(
                    "camera %s: %s had %d corrupt packets, skipped",
                    self.camera_id,
                    self.url,
                    self.corrupt_packets,
                )

    def _output_size(self, width: int, height: int) -> tuple[int, int]:
        """Scale in the decoder's converter so no full-size copy is made when a smaller one is enough."""
        if not self.decode.width or not width:
            return width, height
        out_w = self.decode.width - self.decode.width % 2
        return out_w, max(2, round(height * out_w / width / 2) * 2)
