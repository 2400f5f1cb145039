"""A camera whose analysis fails: how the pipeline restarts it, and when /healthz calls that a failure."""

from __future__ import annotations

from pydantic import Field

from vision.config.base import StrictModel


class HealthConfig(StrictModel):
    """A camera whose analysis fails: how it is restarted, and when /healthz calls that a failure."""

    restart_initial: float = Field(
        1.0,
        gt=0,
        description="Seconds (stream time) a camera rests after its analysis failed, its frames dropped, "
        "before a fresh analysis starts; doubles with each failure in a row (jittered).",
    )
    restart_max: float = Field(
        60.0,
        gt=0,
        description="Longest rest, seconds (before jitter). A camera that works this long without "
        "failing starts over at restart_initial.",
    )
    error_grace: float = Field(
        60.0,
        gt=0,
        description="/healthz answers 503 once a camera has been failing (in error, restarts included) "
        "for longer than this many seconds (wall time).",
    )
