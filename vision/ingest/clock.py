"""One camera's stream clock: PTS seconds made monotonic, plus a wall-clock anchor for live streams.

The pipeline's time is the stream's own time, so timers mean the same on a replay as
live. Every stream starts at 0: a file whose PTS start at 10 s (a cut from a recorder, an
MPEG-TS) is stamped in seconds from its first frame, as a player shows it and as a person
annotates it, so ground truth written by eye lines up with the pipeline's clock. Between
frames a file keeps its own PTS steps, variable frame rate included.

PTS is not trustworthy on its own: it restarts at every reconnect, may jump or go
backwards at a glitch, and MJPEG has none. This clock turns it into one increasing
timeline per camera. Across a gap (reconnect, jump) it advances by the wall time that
passed, so a 30-second outage is 30 seconds of stream time too.

The wall anchor maps stream time to wall time for humans and measures lag: it is the
smallest ``arrival - stream time`` seen (the frame that came fastest defines the live
edge), allowed to creep up slowly so that a camera clock running slower than ours is
not mistaken for a growing backlog.
"""

from __future__ import annotations

import time

MIN_STEP = 1e-3  # seconds between two frames when the stream gives no usable step
DISCONTINUITY = 5.0  # live PTS jumping this much further than the wall clock is a glitch
ANCHOR_CREEP = 1e-3  # seconds per second: 1000 ppm, far above real clock drift, far below a backlog


class StreamClock:
    """Stamps one camera's frames from 0; ``live`` streams are also re-based on discontinuities."""

    def __init__(self, live: bool) -> None:
        self.live = live
        self.last: float | None = None  # the last stamped stream time
        self._last_arrival = 0.0
        self._shift = 0.0  # added to raw PTS
        self._new_segment = False
        self._offset: float | None = None  # monotonic seconds at stream time 0 (the live edge)
        self._offset_at = 0.0
        self._epoch = time.time() - time.monotonic()  # monotonic -> Unix time, for humans only

    def new_segment(self) -> None:
        """The next frame starts a new run of PTS (after a reconnect, or a file starting over)."""
        self._new_segment = True

    def stamp(self, pts: float | None, arrival: float) -> float:
        """Stream seconds for a frame with ``pts`` (None: untimed) decoded at monotonic ``arrival``."""
        raw = arrival if pts is None else pts
        last = self.last
        if last is None:
            self._shift = -raw
            stamped = 0.0
        else:
            stamped = raw + self._shift
            wall_step = arrival - self._last_arrival
            if self._new_segment or self._jumped(stamped, arrival):
                stamped = last + max(wall_step, MIN_STEP)
                self._shift = stamped - raw
            stamped = max(stamped, last + MIN_STEP)
        self._new_segment = False
        self.last, self._last_arrival = stamped, arrival
        return stamped

    def peek(self, pts: float, arrival: float) -> float | None:
        """The stream time :meth:`stamp` would give a frame with ``pts`` arriving at monotonic ``arrival``,
        without stamping it (a packet judged before it is decoded); None where the clock cannot tell
        yet: before the first frame, at a new segment, or at a jump that would re-base the clock."""
        if self.last is None or self._new_segment:
            return None
        stamped = pts + self._shift
        return None if self._jumped(stamped, arrival) else max(stamped, self.last + MIN_STEP)

    def _jumped(self, stamped: float, arrival: float) -> bool:
        """A live stream's PTS went backwards, or further ahead than the wall clock allows: a glitch."""
        assert self.last is not None
        wall_step = arrival - self._last_arrival
        return self.live and (stamped <= self.last or stamped - self.last > wall_step + DISCONTINUITY)

    def arrived(self, stamped: float, at: float) -> None:
        """The frame stamped ``stamped`` was available at monotonic ``at``: move the live edge if earlier.

        Separate from :meth:`stamp` because a paced file's frame arrives when it is released, not
        when it was decoded.
        """
        self._last_arrival = at
        edge = at - stamped
        if self._offset is None:
            self._offset, self._offset_at = edge, at
            return
        crept = self._offset + ANCHOR_CREEP * max(0.0, at - self._offset_at)
        self._offset, self._offset_at = min(crept, edge), at

    def due(self, stamped: float, now: float) -> float:
        """Monotonic instant at which a frame plays in real time (pacing a file like a camera)."""
        return now if self._offset is None else stamped + self._offset

    def lag(self, stamped: float, now: float) -> float:
        """Seconds between the live edge for ``stamped`` and monotonic ``now``."""
        return now - self.due(stamped, now)

    def now(self, mono: float) -> float | None:
        """Stream time at monotonic ``mono``: the last frame's time plus the wall time since it."""
        if self.last is None:
            return None
        return self.last + max(0.0, mono - self._last_arrival)

    def wall_time(self, stamped: float) -> float | None:
        """Unix time at which the camera showed ``stamped`` (for humans; never the pipeline's clock)."""
        return None if self._offset is None else stamped + self._offset + self._epoch
