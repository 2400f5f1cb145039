"""One thread per camera: decode its source and hand frames due at its detect fps to the pipeline.

PyAV releases the GIL while it reads and decodes, so readers of many cameras decode in
parallel with each other and with the detector. Three ways to read, chosen by config:

- a file, as fast as possible: every due frame, in order, none dropped (evaluation);
- a file with ``realtime``: paced by its own clock, like a camera (demos, soak tests);
- a live URL: the newest frame only, reopened with backoff when it fails or stalls.

Paced and live readers keep no backlog: an untaken frame is replaced by the newer one,
and a decoder that falls behind the live edge (a reader short of CPU reads its socket late,
and the stream waits in buffers meanwhile) decodes only keyframes until it catches up. Of
those, a keyframe already more than ``stream.max_lag`` behind is dropped unseen (demuxed, not
decoded), which is also how a keyframes-only camera catches up: its lag stays bounded and
its frame rate falls instead. How far behind a packet is comes from its PTS and the wall
anchor of the stream clock (vision/ingest/clock.py), an ingest concern; frames keep stream time.
"""

from __future__ import annotations

import logging
import threading
import time

import av
import numpy as np

from vision.config import CameraConfig
from vision.events.clips import downscale, kept, thinning_gap
from vision.ingest.backoff import Backoff
from vision.ingest.clock import StreamClock
from vision.ingest.decoder import SourceError, VideoDecoder
from vision.ingest.handoff import FrameQueue, LatestFrame
from vision.ingest.health import CameraHealth, CameraState, HealthMonitor
from vision.ingest.pictures import luma_plane, quarter_turns
from vision.ingest.sampler import Sampler
from vision.ingest.vectors import VectorMotion
from vision.scene.motion import bgr_picture, luma_picture
from vision.secrets import redact_text
from vision.types import Frame

log = logging.getLogger(__name__)


class CameraReader:
    """Reads one camera on its own thread; the pipeline calls :meth:`take` and :meth:`health`."""

    def __init__(
        self,
        camera_id: str,
        camera: CameraConfig,
        notify: threading.Event | None = None,
        cameras: int = 1,
        clip_width: int | None = None,
        clip_fps: float | None = None,
    ) -> None:
        """``notify`` is set whenever a frame is ready, so one consumer can wait on many cameras;
        ``cameras``: how many this process reads (more than its cores: one decoder thread each);
        ``clip_width``: the width of the clips' downscaled copy of each frame (None: no clips);
        ``clip_fps``: the clips' frame rate, so that a reader handing over every frame copies only those
        the ring keeps (None: a copy of every frame)."""
        self.camera_id = camera_id
        self.camera = camera
        self.cameras = cameras
        self.clip_width = clip_width
        self.is_file = camera.source.is_file
        self.realtime = camera.live  # paced or live: newest frame only, never a backlog
        # a frame replaced before analysis leaves the ring thinning other frames than the reader's: then
        # every frame gets its copy, else one the ring skipped would have to be shrunk on the analysis lane
        self._clip_gap = None if clip_fps is None or self.realtime else thinning_gap(clip_fps)
        self._copied: float | None = None  # pts of the last frame copied for the ring
        self.clock = StreamClock(live=not self.is_file)
        self.monitor = HealthMonitor(
            camera_id, str(camera.source), None if self.is_file else camera.stream.stall_timeout
        )
        self._handoff: LatestFrame | FrameQueue = (
            LatestFrame(notify) if self.realtime else FrameQueue(notify=notify)
        )
        self._sampler = Sampler(camera.detect_fps)
        gate = camera.motion_gate
        self._gated = gate.enabled  # the reader builds the gate's picture, off the inference thread
        self._vectors = gate.enabled and gate.vectors  # the gate reads the codec's motion vectors
        self._backoff = Backoff(camera.stream.reconnect_initial, camera.stream.reconnect_max)
        self._stop = threading.Event()
        self._logged: str | None = None  # the last failure logged at warning level
        self._resume_at: float | None = None  # a realtime file: seconds into its content to start at
        self._position: float | None = None  # seconds into the file's content of the last frame handed over
        self._lag_after_analysis = False  # a pipeline reports when it has stored a frame's results
        self._thread = threading.Thread(target=self._run, name=f"camera-{camera_id}", daemon=True)

    # --- consumer side -------------------------------------------------------------------------

    def start(self) -> CameraReader:
        self._thread.start()
        return self

    def resume(self, seconds: float) -> None:
        """A looping file read in real time (a stand-in for a camera) starts ``seconds`` into its
        content (wrapped around its length) instead of at its beginning, as a camera that kept
        filming would; call before :meth:`start`. A file played once always starts at its beginning."""
        if self.is_file and self.realtime and self.camera.loop:
            self._resume_at = max(0.0, seconds)

    def position(self) -> float | None:
        """A looping file read in real time: seconds into its content of the newest frame handed over."""
        return self._position if self.is_file and self.realtime and self.camera.loop else None

    def stop(self) -> None:
        """Ask the thread to end; a read blocked on a silent network ends within its timeout."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        """:meth:`stop` was called: take nothing more, even if the thread has not noticed yet."""
        return self._stop.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True if it ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def take(self, timeout: float | None = 0.0) -> Frame | None:
        """The next frame for the detector (the newest one for live readers), or None if none yet."""
        frame = self._handoff.take(timeout)
        if frame is not None:
            now = time.monotonic()
            measure = self.realtime and not self._lag_after_analysis
            self.monitor.frame_out(now, self.clock.lag(frame.pts, now) if measure else None)
        return frame

    def analysed(self, stream_pts: float) -> None:
        """What the pipeline found in the frame at ``stream_pts`` is stored: from now on health's lag
        is how far behind the live edge that moment is, inference and storing included (not only
        how late the frame was when taken)."""
        self._lag_after_analysis = True
        if self.realtime:
            self.monitor.set_lag(self.clock.lag(stream_pts, time.monotonic()))

    def discard(self) -> None:
        """Drop a frame still waiting (taken before the camera went dark): it must not follow UNKNOWN."""
        if self._handoff.take(0.0) is not None:
            self.monitor.count(dropped=1)

    @property
    def done(self) -> bool:
        """The source has ended (or failed for good) and every frame has been taken."""
        return self._handoff.done

    @property
    def state(self) -> CameraState:
        return self.monitor.state

    def health(self) -> CameraHealth:
        return self.monitor.snapshot()

    def stream_time(self) -> float | None:
        """The camera's stream time now, running on with the wall clock while no frame comes."""
        return self.clock.now(time.monotonic())

    def wall_time(self, pts: float) -> float | None:
        """Unix time of a live frame's stream time ``pts``; None for files read as fast as possible."""
        return self.clock.wall_time(pts) if self.realtime else None

    # --- reader thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            if self.is_file:
                self._read_file()
            else:
                self._read_live()
        finally:
            self._handoff.close()

    def _read_file(self) -> None:
        """Play the file once (or forever with ``loop``); a file that fails will not heal: stop."""
        while not self._stop.is_set():
            try:
                with VideoDecoder(
                    self.camera_id,
                    self.camera.source,
                    self.camera.decode,
                    vectors=self._vectors,
                    cameras=self.cameras,
                ) as decoder:
                    start, self._resume_at = self._resume_at, None
                    if start:
                        length = decoder.duration()
                        start = start % length if length else start
                        decoder.seek(start)
                    self._pump(decoder, start or 0.0)
            except SourceError as exc:
                self.monitor.set_state(CameraState.OFFLINE, str(exc))
                log.error("%s", exc)
                return
            if not self.camera.loop:
                break
            self.clock.new_segment()
        self.monitor.set_state(CameraState.ENDED)

    def _read_live(self) -> None:
        """Open, read until the stream fails or stalls, reopen after a backoff; until stopped."""
        while not self._stop.is_set():
            delivered, error = self._session()
            if self._stop.is_set():
                return
            if delivered:
                self._backoff.reset()
            self.monitor.set_state(CameraState.STALLED if delivered else CameraState.OFFLINE, error)
            delay = self._backoff.next()
            # the same failure again and again (a camera down for hours) is logged once, then at debug
            level = logging.DEBUG if error == self._logged else logging.WARNING
            log.log(level, "%s; reopening in %.1f s", error, delay)
            self._logged = error
            if self._stop.wait(delay):
                return
            self.monitor.count(reconnects=1)
            self.clock.new_segment()

    def _session(self) -> tuple[bool, str]:
        """One connection: whether it delivered frames, and why it ended (redacted)."""
        before = self.monitor.frames_in
        stream = self.camera.stream
        try:
            with VideoDecoder(
                self.camera_id,
                self.camera.source,
                self.camera.decode,
                stream,
                self.monitor.alive,
                self._vectors,
                self.cameras,
                self._dropped,
            ) as decoder:
                self._pump(decoder)
            error = f"camera {self.camera_id}: {self.camera.source}: the stream ended"
        except SourceError as exc:
            error = str(exc)
        except Exception as exc:  # a library surprise must not end a live camera: retry like a failure
            detail = redact_text(str(exc), self.camera.source)
            error = f"camera {self.camera_id}: {self.camera.source}: {type(exc).__name__}: {detail}"
        return self.monitor.frames_in > before, error

    def _dropped(self) -> bool:
        """A packet was dropped as behind the live edge: counted at once (a camera behind for good
        hands over no frame that would carry the count); False once the reader is stopped, which it
        would otherwise not see until a frame came."""
        self.monitor.skipped()
        return not self._stop.is_set()

    def _behind(self, pts: float, now: float) -> float | None:
        """Seconds behind the live edge of a packet with ``pts`` read at monotonic ``now``; None: unknown."""
        stamped = self.clock.peek(pts, now)
        return None if stamped is None else self.clock.lag(stamped, now)

    def _small(self, image: np.ndarray, pts: float) -> np.ndarray | None:
        """The clips' downscaled copy of a frame handed over (vision/events/clips.py), made as its BGR
        pixels are written, while they are in the cache: the analysis lane, reading the whole frame
        again later, paid more for it. None for a frame the ring will skip (every frame reaches it)."""
        if self.clip_width is None:
            return None
        if self._clip_gap is not None:
            if not kept(self._copied, pts, self._clip_gap):
                return None
            self._copied = pts
        return downscale(image, self.clip_width)

    def _picture(self, decoder: VideoDecoder, av_frame: av.VideoFrame, image: np.ndarray) -> np.ndarray:
        """The motion gate's grey picture of a frame handed over: from its luma plane (already grey),
        else from its BGR ``image``."""
        width = self.camera.motion_gate.width
        luma = luma_plane(av_frame)
        if luma is None:
            return bgr_picture(image, width)
        return luma_picture(*luma, quarter_turns(av_frame.rotation), width)

    def _pump(self, decoder: VideoDecoder, start: float = 0.0) -> None:
        """Decode until the source ends or the reader is stopped, handing over the due frames (of a file
        resumed at ``start`` seconds into its content, those from there on)."""
        if self.realtime:
            decoder.follow_live_edge(self._behind, self.camera.stream.max_lag)
        # what moved between two frames handed over (a keyframes-only decoder exports no vectors)
        motion = VectorMotion() if self._vectors and not self.camera.decode.keyframes_only else None
        for av_frame, pts in decoder.frames():
            handed = self._hand_over(decoder, av_frame, pts, motion, start)
            del av_frame  # not held while the next packet is awaited (see VideoDecoder.frames)
            if not handed:
                return

    def _hand_over(
        self,
        decoder: VideoDecoder,
        av_frame: av.VideoFrame,
        pts: float | None,
        motion: VectorMotion | None,
        start: float,
    ) -> bool:
        """One decoded frame: stamped, counted, and handed over if due; False once the reader must stop."""
        position = None if pts is None or not self.is_file else decoder.content_time(pts)
        if position is not None and position < start - 1e-3:
            return True  # decoded from the keyframe before the resume point: not shown
        if motion is not None:
            motion.add(av_frame, quarter_turns(av_frame.rotation))
        now = time.monotonic()
        stamped = self.clock.stamp(pts, now)
        if self.realtime:
            if self.is_file and self._stop.wait(max(0.0, self.clock.due(stamped, now) - now)):
                return False
            now = time.monotonic()
            self.clock.arrived(stamped, now)
        self.monitor.frame_in(stamped, self.clock.wall_time(stamped) if self.realtime else None, now)
        if self._stop.is_set():
            return False
        if not self._sampler.due(stamped):
            return True
        moved = motion.take(stamped) if motion is not None else None
        image = decoder.image(av_frame)
        small = self._small(image, stamped)  # first: the pixels just written are still in the cache
        picture = self._picture(decoder, av_frame, image) if self._gated else None
        frame = Frame(self.camera_id, stamped, image, now, moved, picture, small)
        self._position = position
        if isinstance(self._handoff, LatestFrame):
            if self._handoff.put(frame):
                self.monitor.count(dropped=1)
        elif not self._handoff.put(frame, self._stop):
            return False
        return True
