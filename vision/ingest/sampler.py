"""Pick frames at a camera's detect fps on the stream clock (never the wall clock)."""

from __future__ import annotations


class Sampler:
    """Says which frame timestamps to keep so that about ``fps`` frames per second pass."""

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self.next_due: float | None = None

    def due(self, pts: float) -> bool:
        """True if the frame at ``pts`` should go to the detector."""
        if self.next_due is not None and pts < self.next_due - 1e-6:
            return False
        behind = self.next_due is None or pts - self.next_due > self.period
        self.next_due = (pts if behind else self.next_due) + self.period
        return True
