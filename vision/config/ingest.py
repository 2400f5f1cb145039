"""How a camera's video is read: decoding (what it costs) and the live stream's connection, watchdog
and pace.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from vision.config.base import StrictModel


class DecodeConfig(StrictModel):
    """How a camera's video is decoded; cheaper decoding means more cameras per core."""

    threads: int | None = Field(
        None,
        ge=0,
        le=16,
        description="Decoder threads; 0 lets FFmpeg choose (one per core: less latency on an idle "
        "machine, up to a quarter more CPU in all); 1 is the cheapest. Unset: 1 when the process "
        "reads more cameras than it has cores (they use every core between them anyway), else 0.",
    )
    width: int | None = Field(
        None,
        ge=64,
        le=7680,
        description="Scale decoded frames to this width (height keeps the aspect ratio); None keeps "
        "the stream's size. Scaling happens in the colour conversion, done only for frames due at "
        "detect_fps, and costs about what converting at full size does: it saves the detector's "
        "resize and memory (a 1080p frame is 6 MB), not decoding, which is most of the cost.",
    )
    keyframes_only: bool = Field(
        False,
        description="Decode keyframes only: 7-9x less CPU (benchmarks/ingest.md), for cameras whose "
        "events are static (litter, parked bicycles); the frame rate drops to the keyframe rate "
        "(often one every 1-4 s), too slow for crowds or people passing.",
    )


KEYFRAMES_READ_INTERVAL = 0.2  # seconds: a keyframes_only reader's rest between bursts, by default


KEYFRAME_REST = 1.0  # seconds: the longest rest of a keyframes_only reader waiting for its next keyframe


class StreamConfig(StrictModel):
    """How a live stream (rtsp://, http(s)://) is opened, watched and reopened."""

    transport: Literal["tcp", "udp"] = Field(
        "tcp",
        description="RTSP transport: tcp (interleaved in the RTSP connection; passes firewalls and "
        "NAT, never loses a packet) or udp (lower latency; a lossy network tears pictures).",
    )
    open_timeout: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Seconds to connect and read the stream's headers before giving up. FFmpeg's read "
        "timeout (RTSP's socket timeout, HTTP's rw_timeout) bounds the open's reads too, so it is the "
        "larger of this and stall_timeout: a server slower to answer than stall_timeout still opens.",
    )
    stall_timeout: float = Field(
        5.0,
        gt=0,
        le=300,
        description="Watchdog: no new frame for this many seconds makes a live camera stalled (its "
        "zones become unknown); the stream is closed and reopened once its read gives up (FFmpeg's "
        "read timeout, the larger of this and open_timeout). "
        "Packets skipped on purpose (keyframes_only) count as signs of life, so sparse keyframes do "
        "not stall a camera. Longer than an HLS camera's segments, which come a segment at a time.",
    )
    reconnect_initial: float = Field(
        1.0, gt=0, le=3600, description="Seconds before the first retry of a stream that failed or stalled."
    )
    reconnect_max: float = Field(
        60.0,
        gt=0,
        le=86400,
        description="Cap of the reconnect delay, which doubles after each failed attempt (with jitter "
        "of up to half, so cameras behind one broken switch do not retry in lockstep).",
    )
    max_lag: float = Field(
        1.0,
        gt=0,
        le=60,
        description="When reading falls this many seconds behind the live edge (a reader short of CPU), "
        "only keyframes are decoded until it is back within half of it, and a keyframe itself this "
        "late is dropped unseen (keyframes_only cameras too): the lag stays bounded and the frame rate "
        "falls instead. The skipped frames are counted (frames_skipped). Not for HLS, whose "
        "segments come whole: a segment's first frames are a segment old when they come.",
    )
    snapshot_timeout: float = Field(
        3.0,
        gt=0,
        le=60,
        description="With detect_url: seconds a transition waits for a frame of the main stream (url) "
        "for its pictures (opening it and decoding its first keyframe); then the detection frame is "
        "used instead.",
    )
    read_interval: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Seconds a live reader rests once it has read all its stream sent (a read had to "
        "wait and the packet is at the live edge), so that what comes meanwhile is read in one burst, "
        "not one wake-up per packet: a static camera's 640x360 substream costs 14-33% less CPU at "
        "0.2 s (benchmarks/readers.md), for at most this much more lag. 0: read each packet as it comes. "
        f"Unset: {KEYFRAMES_READ_INTERVAL:g} for keyframes_only cameras (a frame per GOP: "
        f"{KEYFRAMES_READ_INTERVAL:g} s later is nothing; at most a quarter of stall_timeout), else 0. "
        "Less than half of stall_timeout. A keyframes_only reader that has read two keyframes rests "
        f"instead until the next one is due (their GOP later), at most {KEYFRAME_REST:g} s, half of "
        "max_lag and a quarter of stall_timeout at a time, and reads it as it comes: a few wake-ups a "
        "GOP, not one every read_interval (benchmarks/readers_keyrest.md).",
    )

    @model_validator(mode="after")
    def _backoff(self) -> StreamConfig:
        if self.reconnect_max < self.reconnect_initial:
            raise ValueError(
                f"reconnect_max ({self.reconnect_max}) must be at least reconnect_initial "
                f"({self.reconnect_initial})"
            )
        if self.read_interval is not None and self.read_interval >= self.stall_timeout / 2:
            raise ValueError(
                f"read_interval ({self.read_interval:g}) must be less than half of stall_timeout "
                f"({self.stall_timeout:g}): a reader resting longer looks stalled"
            )
        return self

    def rest(self, keyframes_only: bool) -> float:
        """Seconds a reader rests between bursts of reading (``read_interval`` or its default)."""
        if self.read_interval is not None:
            return self.read_interval
        return min(KEYFRAMES_READ_INTERVAL, self.stall_timeout / 4) if keyframes_only else 0.0
