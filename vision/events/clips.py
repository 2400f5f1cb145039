"""Clips around transitions: a few seconds of frames before an event's open, reopen or close, and a few after.

Each camera keeps a small ring of its recent frames, downscaled to ``clips.width`` and thinned
to ``clips.fps``, so memory per camera is bounded (``before * fps`` small frames) and the
per-frame cost is one resize and an append. The reader makes that resize as it writes the
frame's pixels (``Frame.small``), while they are still in the cache, rather than the analysis
lane reading the whole frame again later; keeping whole frames until a clip takes them was
tried, and the memory they held cost the other stages as much as it saved
(benchmarks/ssd_batch.py part 2, before and after). At a transition the ring's frames of the
last ``before`` seconds start a clip, which takes the camera's next frames until ``after``
seconds of stream time have passed; the finished clip is encoded (H.264 MP4, which browsers
play) on one background thread with its own store handle, so encoding never holds up the
pipeline and costs nothing between transitions. The file is written under a temporary name
and renamed beside the event's snapshots (``snapshots/<event id>/<pts>-<transition>.mp4``),
so retention prunes it with them, and then recorded in the store's ``clips`` table.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from vision.config import ClipsConfig
from vision.store import EventStore
from vision.types import Frame, Transition

log = logging.getLogger(__name__)
KINDS = frozenset({"open", "reopen", "close"})  # the transitions that get a clip
CODEC = "libx264"
TIME_BASE = Fraction(1, 1000)  # milliseconds: frames keep their own (stream) timing
ENCODER_OPTIONS = {"preset": "superfast", "crf": "28"}  # less CPU per clip than veryfast, for larger files
SLACK = 0.75  # of 1/fps: the least time between two kept frames
STOP_WAIT = 30.0  # seconds the end of a run waits for the clips still being encoded

SmallFrame = tuple[float, np.ndarray]  # pts, downscaled BGR image


@dataclass(slots=True)
class _Clip:
    """A clip being gathered: the frames so far, and the stream time it ends at."""

    event_id: str
    kind: str
    pts: float
    until: float
    frames: list[SmallFrame] = field(default_factory=list)


def thinning_gap(fps: float) -> float:
    """The least time between two frames a ring at ``fps`` keeps: frames sampled at fps come a little
    early or late, and those are kept."""
    return SLACK / fps


def kept(last: float | None, pts: float, gap: float) -> bool:
    """Whether a ring whose last kept frame is at ``last`` (None: none yet) keeps a frame at ``pts``: one
    at least ``gap`` later, or any frame after the camera clock went back. The reader, handing over every
    frame of a file to the ring, asks the same to make the ring's copy of those frames only
    (vision/ingest/reader.py)."""
    return last is None or not 0 <= pts - last < gap


class FrameRing:
    """One camera's last ``seconds`` of frames, downscaled to ``width`` and at most ``fps`` a second."""

    def __init__(self, seconds: float, fps: float, width: int) -> None:
        self.seconds = seconds
        self.gap = thinning_gap(fps)
        self.width = width
        self.frames: deque[SmallFrame] = deque(maxlen=int(seconds / self.gap) + 2)

    def push(self, frame: Frame) -> SmallFrame | None:
        """Keep ``frame`` (downscaled) unless it follows the last kept one too closely for ``fps``; return it
        if kept."""
        last = self.frames[-1][0] if self.frames else None
        if not kept(last, frame.pts, self.gap):
            return None
        if last is not None and frame.pts < last:
            self.frames.clear()  # the camera clock went back (a restart): older frames are another stream
        image = frame.small if frame.small is not None else downscale(frame.image, self.width)
        small = (frame.pts, image)
        self.frames.append(small)
        while self.frames and self.frames[0][0] < frame.pts - self.seconds:
            self.frames.popleft()
        return small


class ClipRecorder:
    """Rings of every camera, the clips being gathered, and the thread that encodes finished ones."""

    def __init__(self, config: ClipsConfig, data_dir: Path, open_store: Callable[[], EventStore]) -> None:
        self.config = config
        self.data_dir = data_dir
        self.open_store = open_store  # called in the encoder's thread
        self.rings: dict[str, FrameRing] = {}
        self.gathering: dict[str, list[_Clip]] = {}
        self._queue: queue.Queue[_Clip | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()  # analysis lanes encode at once: one encoder thread
        self.written = 0  # clips encoded and recorded (for tests and logs)

    def feed(self, frame: Frame) -> None:
        """One analysed frame of a camera: into its ring and the clips it is gathering."""
        if not self.config.enabled:
            return
        ring = self.rings.get(frame.camera_id)
        if ring is None:
            config = self.config
            ring = self.rings[frame.camera_id] = FrameRing(config.before, config.fps, config.width)
        small = ring.push(frame)
        clips = self.gathering.get(frame.camera_id)
        if small is None or not clips:
            return
        for clip in clips:
            clip.frames.append(small)
        done = [c for c in clips if frame.pts >= c.until]
        for clip in done:
            clips.remove(clip)
            self._encode(clip)

    def mark(self, camera_id: str, transitions: list[Transition]) -> None:
        """Start a clip for each open, reopen and close, with the camera's frames of the last seconds."""
        ring = self.rings.get(camera_id)
        if not self.config.enabled or ring is None or not ring.frames:
            return
        for t in transitions:
            if t.kind not in KINDS:
                continue
            frames = [f for f in ring.frames if f[0] >= t.pts - self.config.before]
            clip = _Clip(t.event["event_id"], t.kind, t.pts, t.pts + self.config.after, frames)
            if self.config.after <= 0:
                self._encode(clip)
            else:
                self.gathering.setdefault(camera_id, []).append(clip)

    def close(self) -> None:
        """At the end of a run: encode the clips still gathering with what they have, and wait for them."""
        for clips in self.gathering.values():
            for clip in clips:
                self._encode(clip)
        self.gathering.clear()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(STOP_WAIT)
            self._thread = None

    def _encode(self, clip: _Clip) -> None:
        if not clip.frames:
            return
        with self._starting:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="clips", daemon=True)
                self._thread.start()
        self._queue.put(clip)

    def _run(self) -> None:
        store = self.open_store()
        try:
            while (clip := self._queue.get()) is not None:
                try:
                    self._write(store, clip)
                except (*store.sql.errors, OSError, av.FFmpegError, ValueError):  # a lost clip, not a camera
                    log.exception("clip of event %s (%s) not written", clip.event_id, clip.kind)
        finally:
            store.close()

    def _write(self, store: EventStore, clip: _Clip) -> None:
        relative = Path("snapshots") / clip.event_id / f"{clip.pts:010.3f}-{clip.kind}.mp4"
        target = self.data_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        encode_mp4(clip.frames, partial, self.config.fps)
        os.replace(partial, target)
        store.add_clip(
            {
                "event_id": clip.event_id,
                "kind": clip.kind,
                "pts": clip.pts,
                "file": str(relative),
                "start_pts": clip.frames[0][0],
                "end_pts": clip.frames[-1][0],
                "frames": len(clip.frames),
                "bytes": target.stat().st_size,
            }
        )
        self.written += 1


def downscale(image: np.ndarray, width: int) -> np.ndarray:
    """``image`` ``width`` pixels wide (never wider than it is), both sides even as H.264's 4:2:0 needs.

    Bilinear, not INTER_AREA: this runs on every frame of every camera, and INTER_AREA at a
    non-integer factor (768 -> 320) cost about ten times as much when measured (commit e883284's
    sampled profile), for a softer preview nobody asked for. The ring's CPU time per frame now is
    the "clips: frame ring" row of benchmarks/ssd_batch.md.
    """
    height, wide = image.shape[:2]
    width = min(width, wide)
    size = (width - width % 2, max(2, round(height * width / wide / 2) * 2))
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def encode_mp4(frames: list[SmallFrame], path: Path, fps: float) -> None:
    """H.264 in MP4 (moov first, so a browser starts playing at once), each frame at its own stream time
    (``fps``: the nominal rate, a hint for players)."""
    height, width = frames[0][1].shape[:2]
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream(CODEC, rate=max(1, round(fps)))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = TIME_BASE
        stream.codec_context.time_base = TIME_BASE
        stream.options = ENCODER_OPTIONS
        start, last = frames[0][0], -1
        for pts, image in frames:
            if image.shape[:2] != (height, width):
                image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
            ms = max(last + 1, round((pts - start) * 1000))  # strictly increasing, as the muxer needs
            video = av.VideoFrame.from_ndarray(image, format="bgr24")
            video.pts, video.time_base, last = ms, TIME_BASE, ms
            out.mux(stream.encode(video))
        out.mux(stream.encode(None))
