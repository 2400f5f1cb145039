"""Open one video URL with PyAV and turn its packets into frames, as cheaply as the camera allows.

Shared by every source (files read fast, files paced as live cameras, RTSP and HTTP
streams): the open options, the decoder settings, the corrupt-packet policy and the
error messages live here once. Errors are :class:`SourceError` with the password
already redacted, so callers can log or return them as they are.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from types import TracebackType

import av
import numpy as np

from vision.config import KEYFRAME_REST, DecodeConfig, StreamConfig
from vision.detect.threads import cores
from vision.ingest.pictures import Pictures
from vision.ingest.vectors import export_vectors
from vision.secrets import SecretUrl, redact_text

log = logging.getLogger(__name__)
MAX_CONSECUTIVE_CORRUPT = 250  # packets; past this the video is unreadable, not damaged
FILE_TIMEOUT = 10.0  # seconds; a local file that blocks this long is on a dead network share
LIVE_ANALYZE_US = "1000000"  # probe a live stream 1 s, not 5: opens and reconnects 3x faster
UNTIMED_FORMATS = frozenset({"mpjpeg", "mjpeg", "jpeg_pipe"})  # MJPEG carries no timestamps
SEGMENTED_FORMATS = frozenset({"hls"})  # delivered a segment at a time: see follow_live_edge
WAITED = 0.01  # seconds: a read that took this long waited for the network (the socket was drained)
# seconds: a live keyframes-only stream's heartbeat (a non-key packet skipped) is beaten at most this often
# (at most a tenth of stall_timeout): the watchdog needs a sign of life well within stall_timeout, not
# the 49 of a 2 s GOP at 25 fps; a file's (no watchdog) is beaten for every packet it skips
HEARTBEAT_EVERY = 0.1


def decoder_threads(configured: int | None, cameras: int) -> int:
    """Threads for one decoder of a process that reads ``cameras`` cameras: as configured; unset, 1
    when the cameras outnumber the cores (frame threads cost CPU in all, benchmarks/ingest.md, and so
    many readers keep every core busy between them), else 0: FFmpeg's choice, one per core."""
    if configured is not None:
        return configured
    return 1 if cameras > cores() else 0


def read_timeout(stream: StreamConfig) -> float:
    """Seconds FFmpeg waits for a live stream's data before a read fails.

    One socket timeout bounds every read, those of the open too: at ``stall_timeout`` alone a server
    slow to answer (a loaded camera, or a hundred cameras opening at once) failed opens that
    ``open_timeout`` allows. So it is the larger of the two; a stall after the open is still seen at
    ``stall_timeout``, by the health watchdog (vision/ingest/health.py) and by
    :meth:`VideoDecoder.frames` at any packet that is no sign of life."""
    return max(stream.open_timeout, stream.stall_timeout)


class SourceError(Exception):
    """A camera's video cannot be opened or read; the message is safe to print (no password)."""


class VideoDecoder:
    """One video stream of one camera, opened once; iterate :meth:`frames` for frames and their PTS."""

    def __init__(
        self,
        camera_id: str,
        url: SecretUrl,
        decode: DecodeConfig,
        stream: StreamConfig | None = None,
        heartbeat: Callable[[float], None] | None = None,
        vectors: bool = False,
        cameras: int = 1,
        dropped: Callable[[], bool] | None = None,
    ) -> None:
        """``stream`` is None for files; for live URLs it sets the transport and the timeouts.
        ``vectors``: ask the decoder for the frames' motion vectors (vision/ingest/vectors.py).
        ``cameras``: how many cameras this process reads (the default of ``decode.threads``).

        ``heartbeat(monotonic time)`` is called for a video packet skipped on purpose (on a live stream
        at most every :data:`HEARTBEAT_EVERY`), so a keyframes-only camera with keyframes further apart
        than the stall timeout is not stalled;
        not for one dropped as behind the live edge (:meth:`follow_live_edge`): that proves the
        stream flows, not that its picture is current. ``dropped()`` is called for each of those, as it
        is dropped, so a camera whose every packet is behind shows its count without a frame to carry it;
        its False ends :meth:`frames` (the reader was stopped: no frame would come back to it to say so).
        """
        self.camera_id = camera_id
        self.url = url
        self.decode = decode
        self.threads = decoder_threads(decode.threads, cameras)
        self.stream_config = stream
        self.corrupt_packets = 0
        self._catching_up = False  # reading fell behind the live edge: keyframes only, for now
        self._behind: Callable[[float, float], float | None] | None = None
        self._max_lag = 0.0
        self.heartbeat = heartbeat
        self.dropped = dropped
        self.interval = stream.rest(decode.keyframes_only) if stream is not None else 0.0  # see _rest
        self.rests = 0  # times the reader rested at the live edge (read_interval)
        self._longest = self.interval  # a keyframes-only reader's longest rest, see follow_live_edge
        self._key: float | None = None  # PTS (s) of the last keyframe a keyframes-only reader read
        self._gop: float | None = None  # and the seconds between it and the one before
        self.vectors = vectors
        self._container: av.container.InputContainer | None = None
        self._stream: av.VideoStream | None = None
        self.pictures = Pictures(decode.width)

    def _error(self, what: str, exc: BaseException, waited: float = 0.0) -> SourceError:
        """``waited``: seconds the failed call took. An RTSP server that accepts the connection and never
        answers ends the open at FFmpeg's socket timeout as "Invalid data found when processing input"."""
        detail = redact_text(getattr(exc, "strerror", None) or str(exc), self.url)
        stream = self.stream_config
        if stream is not None and isinstance(exc, av.ExitError):  # PyAV's open timeout ended the open
            detail = f"no answer in {stream.open_timeout:g} s"
        elif stream is not None and isinstance(exc, TimeoutError):  # FFmpeg's socket timeout
            detail = f"no data for {read_timeout(stream):g} s"
        elif stream is not None and waited >= read_timeout(stream) * 0.95:  # the same, worded otherwise
            detail = f"no answer in {read_timeout(stream):g} s ({detail})"
        return SourceError(f"camera {self.camera_id}: {what} {self.url}: {detail}")

    def open(self) -> VideoDecoder:
        """Connect and read the headers; raises SourceError naming the camera and the (redacted) URL."""
        options: dict[str, str] = {}
        timeout: float | tuple[float, float] = FILE_TIMEOUT
        if self.stream_config is not None:
            # PyAV's read timeout is a callback that takes the GIL each time FFmpeg checks it while
            # waiting for packets (PyAV issue #1112): with 100 cameras' readers that cost more CPU than
            # the reading. FFmpeg's own timeouts do it without Python: RTSP's socket timeout (TCP and
            # UDP), and for HTTP (MJPEG, HLS and its segments) every read's rw_timeout. PyAV's
            # callback bounds the open only (open_timeout), where its cost is paid once.
            timeout = (self.stream_config.open_timeout, None)
            read_us = str(round(read_timeout(self.stream_config) * 1e6))
            options["analyzeduration"] = LIVE_ANALYZE_US
            if self.url.get_secret_value().lower().startswith("rtsp"):
                options["rtsp_transport"] = self.stream_config.transport
                options["timeout"] = read_us
            else:
                options["rw_timeout"] = read_us
        began = time.monotonic()
        try:
            container = av.open(self.url.get_secret_value(), mode="r", options=options, timeout=timeout)
        except (av.FFmpegError, OSError) as exc:
            raise self._error("cannot open", exc, time.monotonic() - began) from None
        if not container.streams.video:
            container.close()
            raise SourceError(f"camera {self.camera_id}: {self.url} has no video stream")
        stream = container.streams.video[0]
        # Frame threads hold each picture back until the next packets arrive: a frame late at 25 fps,
        # but a whole GOP (seconds) when only keyframes are decoded. Slices have no such delay. Nor do
        # they mix up exported motion vectors: with frame threads a frame sometimes carries vectors
        # that do not cover it (a still clip's frame showed 30% of its blocks moving at 8 threads, and
        # at 2 under a loaded machine; tests/test_motion_gate.py).
        slices = self.decode.keyframes_only or self.vectors
        stream.thread_type = "SLICE" if slices else "AUTO"
        stream.codec_context.thread_count = self.threads
        if self.decode.keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"
        elif self.vectors:
            export_vectors(stream)
        self._container, self._stream = container, stream
        return self

    def content_time(self, pts: float) -> float:
        """Seconds into the file's content (its first frame at 0) of a decoded frame's ``pts``."""
        stream = self._stream
        assert stream is not None, "open() first"
        start = stream.start_time * stream.time_base if stream.start_time and stream.time_base else 0
        return pts - float(start)

    def duration(self) -> float | None:
        """The file's length in seconds, where its header says."""
        if self._container is None or not self._container.duration:
            return None
        return self._container.duration / av.time_base

    def seek(self, seconds: float) -> None:
        """Jump to the keyframe at or before ``seconds`` into the content (frames before the target
        still come out of :meth:`frames`: drop them by :meth:`content_time`)."""
        stream = self._stream
        assert self._container is not None and stream is not None, "open() first"
        if not stream.time_base:
            return
        start = stream.start_time or 0
        self._container.seek(start + int(seconds / float(stream.time_base)), stream=stream, backward=True)

    @property
    def timed(self) -> bool:
        """False for formats whose frames carry no real timestamps (MJPEG over HTTP)."""
        return self._container is not None and self._container.format.name not in UNTIMED_FORMATS

    def frames(self) -> Iterator[tuple[av.VideoFrame, float | None]]:
        """Decoded frames with their PTS in seconds (None: untimed, stamp by arrival) until the end.

        Non-key packets are dropped before the decoder when only keyframes are wanted or the
        reader is catching up (:meth:`follow_live_edge`), which saves their parsing as well as
        their decoding; so are keyframes too far behind the live edge. Such a packet still proves
        the stream alive: it resets the stall watchdog, and beats ``heartbeat`` unless it was
        behind (a stream gone silent hands over the packets FFmpeg held when its read first times
        out, late: they made a stalled camera look live for a moment; tests/test_ingest_timeouts.py).

        Every packet of every stream is read (a camera sending only audio must stall), one loop with
        no generator between it and the demuxer: a keyframes-only camera's reader goes round it 49
        times for each frame it decodes, so what it does for a non-key packet is kept to a few lines.
        A live stream followed at its live edge with a ``read_interval`` is read in bursts (:meth:`_rest`).
        """
        container, stream = self._container, self._stream
        assert container is not None and stream is not None, "open() first"
        timed, video = self.timed, stream.index
        time_base = float(stream.time_base) if stream.time_base and timed else 0.0
        rate = float(stream.average_rate or 25)
        index, bad = 0, 0
        stall = self.stream_config.stall_timeout if self.stream_config is not None else None
        keyframes_only, beat = self.decode.keyframes_only, self.heartbeat
        every = min(HEARTBEAT_EVERY, stall / 10) if stall is not None else 0.0  # see HEARTBEAT_EVERY
        interval = self.interval if self._behind is not None and time_base else 0.0
        monotonic = time.monotonic
        now = alive = monotonic()  # now: when the last packet was read, or what came after it was done
        beaten = alive - every  # the first packet skipped beats
        waited: tuple[float, float] | None = None  # PTS (s) and read time of a packet that waited
        packets = container.demux()
        try:
            while True:
                if waited is not None:
                    self._rest(*waited)
                    waited, now = None, monotonic()
                before = now  # a skipped packet takes microseconds: no clock read of its own
                packet = next(packets, None)
                if packet is None:
                    return
                now = monotonic()
                if packet.stream_index != video:
                    self._watch(stall, alive, now)
                    continue
                if interval and now - before > WAITED and packet.pts is not None:
                    waited = (packet.pts * time_base, now)
                size = packet.size
                if keyframes_only and size and not packet.is_keyframe:  # skipped on purpose, not behind
                    alive = now
                    if beat is not None and now - beaten >= every:
                        beaten = now
                        beat(now)
                    continue
                if keyframes_only and interval and size and packet.pts is not None:
                    self._keyframe(packet.pts * time_base)
                if size and self._unseen(packet, time_base, now):
                    alive = now
                    if self.dropped is not None and not self.dropped():
                        return
                    continue
                try:
                    decoded = stream.decode(packet)
                    if not decoded and size and keyframes_only:
                        decoded = self._drain(stream)
                except av.EOFError:
                    return  # the video was flushed while other streams (a longer audio track) run on
                except av.InvalidDataError:
                    bad += 1  # a corrupt packet: skip it, the next keyframe recovers the picture
                    self.corrupt_packets += 1
                    if bad > MAX_CONSECUTIVE_CORRUPT:
                        raise
                    self._watch(stall, alive, now)
                    continue
                bad = 0
                if decoded:
                    alive = now = monotonic()
                else:
                    self._watch(stall, alive, now)
                    now = monotonic()  # decoding is no waiting for the network
                for frame in decoded:
                    if not timed:
                        pts = None
                    elif frame.pts is not None and time_base:
                        pts = frame.pts * time_base
                    else:
                        pts = index / rate
                    index += 1
                    yield frame, pts
                if decoded:
                    now = monotonic()  # nor is what the caller did with the frames
                    # nothing here holds a frame while the next packet is awaited: a frame is freed as
                    # soon as its caller drops it (benchmarks/rss_readers.md)
                    decoded = []
                    del frame
        except (av.FFmpegError, OSError) as exc:
            raise self._error(f"read failed after {index} frames of", exc) from None

    def _rest(self, pts: float, at: float) -> None:
        """After a read that had to wait for the network (the socket was drained) and gave a video
        packet of ``pts`` at monotonic ``at``: rest if that packet is at the live edge, so that what
        comes meanwhile is read at once. Each packet waited for is a wake-up of this thread and a turn
        at the GIL; a rest saves them all but one (benchmarks/readers.md). Behind the live edge it
        never rests (a backlog is read at full speed). Asked once the packet's own frames are handed
        over, as the clock they stamped says where the live edge is.

        It rests ``interval`` seconds; a keyframes-only reader that has seen two keyframes more than
        ``interval`` apart rests until the next one is due at the live edge (the last one's PTS plus
        that GOP), at most ``_longest``: it wakes a few times a GOP, not every ``interval``, and reads
        the keyframe as it comes, up to ``interval`` after it was due; one later than that (a longer
        GOP) is waited for ``interval`` at a time, as without."""
        lag = self._behind(pts, at) if self._behind is not None else None
        if lag is None or lag >= self.interval:
            return
        rest = self.interval
        if self._key is not None and self._gop is not None and self._gop > self.interval:
            due = self._key + self._gop - pts - lag  # seconds until the next keyframe is at the live edge
            if due > 0:
                rest = min(due, self._longest)
            elif due > -self.interval:
                return  # a little late (the network's jitter): read it as it comes
        self.rests += 1
        time.sleep(rest)

    def _keyframe(self, pts: float) -> None:
        """A keyframes-only reader read a keyframe of ``pts`` seconds: the next one is due a GOP (this
        one's PTS less the last one's) later; PTS that did not advance (a new run) leave it unknown."""
        gop = pts - self._key if self._key is not None and pts > self._key else None
        self._key, self._gop = pts, gop

    @staticmethod
    def _drain(stream: av.VideoStream) -> list[av.VideoFrame]:
        """The keyframe just fed, out now: a stream with B-frames makes the decoder hold pictures back
        for reordering, which for a keyframes-only decoder means until the next keyframes come (two
        GOPs late with two B-frames). Keyframes need no reordering: drain the decoder, then reset it
        for the next one."""
        try:
            frames = stream.codec_context.decode(None)
        except av.EOFError:
            frames = []
        stream.codec_context.flush_buffers()
        return frames

    def _watch(self, stall: float | None, alive: float, now: float) -> None:
        """The stall watchdog, asked at a packet that is no sign of life (another stream's, a video
        packet that gave no frame): raises if the last sign of life is more than ``stall`` seconds
        old. A packet that is one never raises, however late the reader got to it: a reader short
        of CPU for longer than ``stall`` finds the stream waiting in its socket, which is no stall
        (it catches up by :meth:`follow_live_edge`; reopening would lose seconds of frames more)."""
        if stall is not None and now - alive > stall:
            raise SourceError(f"camera {self.camera_id}: {self.url}: no frame for {stall:g} s")

    def follow_live_edge(self, behind: Callable[[float, float], float | None], max_lag: float) -> None:
        """Keep a live stream's reading within ``max_lag`` seconds of its live edge.

        ``behind(pts, now)`` says how far behind the live edge a packet of ``pts`` (seconds) read at
        monotonic ``now`` is (None: not known yet). Judged on packets as they are read, not on frames
        as they are decoded: a decoder with frame threads holds a keyframe back until the next packets
        are in, which is a whole GOP while only keyframes are fed, and would look behind for ever.

        Past ``max_lag`` the decoder catches up: it skips to the next keyframe, and drops unseen any
        keyframe itself more than ``max_lag`` behind (the backlog that piled up in buffers while the
        reader was short of CPU: decoding it, in order, would keep the reader behind); back within
        half of it at a keyframe, it decodes every frame again. A keyframes-only stream drops its
        late keyframes the same way, so its lag stays bounded and its frame rate falls instead.

        A segmented stream (HLS) is not followed: its segments come whole, when the camera has
        written them, so a segment's first frames are a segment old when they come (2 s segments
        looked 1.9 s behind, and every one was dropped: the camera stayed live on the packets' beats
        with no frame; tests/test_ingest_hls.py). That is the source's pace, not a reader behind.
        """
        if self._container is not None and self._container.format.name in SEGMENTED_FORMATS:
            return
        self._behind, self._max_lag = behind, max_lag
        if self.decode.keyframes_only and self.stream_config is not None:
            # half of max_lag: a keyframe sooner than its GOP said is still read well within it, never
            # dropped as late; a quarter of stall_timeout: the heartbeat, as read_interval's default
            longest = min(KEYFRAME_REST, max_lag / 2, self.stream_config.stall_timeout / 4)
            self._longest = max(self.interval, longest)

    def _unseen(self, packet: av.Packet, time_base: float, now: float) -> bool:
        """Whether to drop a video packet before the decoder to catch up with the live edge (counted by
        the caller, through ``dropped``);
        a keyframes-only decoder's non-key packets never come here (:meth:`frames` drops them)."""
        key = packet.is_keyframe
        lag = None
        if self._behind is not None and packet.pts is not None and time_base:
            lag = self._behind(packet.pts * time_base, now)  # untimed (MJPEG): not known
        if lag is not None and not self.decode.keyframes_only:
            if lag > self._max_lag:
                self._catching_up = True
            elif key and lag < self._max_lag / 2:
                self._catching_up = False
        if key:
            if lag is None or lag <= self._max_lag:
                return False
        elif not self._catching_up:
            return False
        return True

    def image(self, frame: av.VideoFrame) -> np.ndarray:
        """The frame's BGR pixels upright at ``decode.width`` (vision/ingest/pictures.py)."""
        return self.pictures.image(frame)

    def close(self) -> None:
        if self._container is None:
            return
        self._container.close()
        self._container = self._stream = None
        if self.corrupt_packets:
            log.warning(
                "camera %s: %s had %d corrupt packets, skipped",
                self.camera_id,
                self.url,
                self.corrupt_packets,
            )

    def __enter__(self) -> VideoDecoder:
        return self.open()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def frame_size(
    camera_id: str, url: SecretUrl, decode: DecodeConfig, stream: StreamConfig | None = None
) -> tuple[int, int]:
    """Width and height of a video's frames as the pipeline gets them (upright, at decode.width): its
    first frame decoded (``stream``: a live one's settings, None for a file). Raises SourceError if it
    cannot be read."""
    with VideoDecoder(camera_id, url, decode, stream) as decoder:
        for frame, _ in decoder.frames():
            height, width = decoder.image(frame).shape[:2]
            return width, height
    raise SourceError(f"camera {camera_id}: {url} has no video frame")
