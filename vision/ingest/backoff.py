"""Exponential backoff with jitter for reopening a failing stream.

Doubling keeps a dead camera from costing anything; the cap bounds how long a camera
that comes back stays unseen; the jitter (a random part of up to half the delay) keeps
many cameras behind one broken switch from retrying in lockstep.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays ``initial, 2*initial, 4*initial, ... <= cap``, each scaled by a random 0.5..1."""

    def __init__(self, initial: float, cap: float, rng: random.Random | None = None) -> None:
        self.initial = initial
        self.cap = cap
        self.failures = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        """The delay before the next attempt, after one more failure."""
        base = min(self.cap, self.initial * 2.0 ** min(self.failures, 64))
        self.failures += 1
        return base * self._rng.uniform(0.5, 1.0)

    def reset(self) -> None:
        """A stream that delivered frames starts over at the initial delay."""
        self.failures = 0
