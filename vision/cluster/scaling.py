"""How many detector replicas run: one more while all are busy, one fewer after a long idle spell.

The control plane looks at the replicas' busy seconds about every second (:meth:`Scaler.tick`).
The rule has hysteresis, so that a load near a threshold does not start and stop replicas
in turn:

- **grow** (up to ``max_replicas``) as soon as every replica was busy at least
  ``BUSY_TO_GROW`` (90%) of the last interval;
- **shrink** (down to ``min_replicas``) only when the work of the last intervals would keep
  one replica fewer at most ``BUSY_TO_SHRINK`` (50%) busy, and that has held without a break
  for ``cluster.scale_down_after`` seconds; the spell starts again after each change, so going
  from 4 replicas to 1 takes three spells.

A replica that did not answer, or that is new or restarted (no figure to compare with yet),
stops both: nothing changes on a partial picture. The stopped replica is always the last one
(``replica-<n-1>``), so the names stay ``replica-0`` ... and the shards find them by name; a
call in flight on it fails at the shard, which sends it again to a live replica
(:class:`~vision.cluster.inference.ReplicaEngine`), so no frame is lost.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import ray

from vision.cluster.inference import start_replica
from vision.config import ClusterConfig, DetectorConfig

log = logging.getLogger("vision.cluster")
BUSY_TO_GROW = 0.9  # share of the last interval every replica spent inferring before one more starts
BUSY_TO_SHRINK = 0.5  # busy share one replica fewer would have had, at most, to stop one


def busy_shares(
    before: dict[tuple[str, float], float], reports: list[dict[str, Any]], interval: float
) -> list[float | None]:
    """Each replica's share of ``interval`` spent inferring, from its busy seconds then (``before``, by
    name and start time) and now; None for a replica not seen before (new, or restarted by Ray)."""
    if interval <= 0:
        return [None for _ in reports]
    shares: list[float | None] = []
    for report in reports:
        then = before.get((report["name"], report["started"]))
        shares.append(None if then is None else (report["busy_seconds"] - then) / interval)
    return shares


def change(shares: list[float | None], replicas: int, least: int, most: int) -> int:
    """What the last interval asks for: +1 (every replica busy BUSY_TO_GROW of it, fewer than ``most``),
    -1 (their work would keep one fewer at most BUSY_TO_SHRINK busy, more than ``least``), else 0.
    Only when all ``replicas`` answered with a figure."""
    known = [s for s in shares if s is not None]
    if replicas == 0 or len(known) != replicas:
        return 0
    if replicas < most and min(known) >= BUSY_TO_GROW:
        return 1
    if replicas > least and sum(known) / (replicas - 1) <= BUSY_TO_SHRINK:
        return -1
    return 0


class Hysteresis:
    """Turns each interval's :func:`change` into a decision: grow at once, shrink only after the wish has
    held for ``after`` seconds without a break (monotonic time)."""

    def __init__(self, least: int, most: int, after: float) -> None:
        self.least, self.most, self.after = least, most, after
        self.idle_since: float | None = None  # since when one fewer would have done, without a break

    def decide(self, shares: list[float | None], replicas: int, now: float) -> int:
        wish = change(shares, replicas, self.least, self.most)
        if wish >= 0:
            self.idle_since = None
            return wish
        if self.idle_since is None:
            self.idle_since = now
        if now - self.idle_since < self.after:
            return 0
        self.idle_since = None  # the next one needs a spell of its own
        return -1


class Scaler:
    """The replicas of one control plane: ``min_replicas`` at start, then as :class:`Hysteresis` says."""

    def __init__(self, cluster: ClusterConfig, detector: DetectorConfig) -> None:
        self.cluster, self.detector = cluster, detector
        self.rule = Hysteresis(cluster.min_replicas, cluster.max_replicas, cluster.scale_down_after)
        self.replicas = [start_replica(i, cluster, detector) for i in range(cluster.min_replicas)]
        self._busy: dict[tuple[str, float], float] = {}
        self._at = time.monotonic()

    def tick(self, reports: list[dict[str, Any]]) -> None:
        """With the replicas' reports of now: one more, one fewer, or as many."""
        now = time.monotonic()
        interval, self._at = now - self._at, now
        shares = busy_shares(self._busy, reports, interval)
        self._busy = {(r["name"], r["started"]): r["busy_seconds"] for r in reports}
        decision = self.rule.decide(shares, len(self.replicas), now)
        if decision > 0:
            self.grow()
        elif decision < 0:
            self.shrink()

    def grow(self) -> None:
        """Start ``replica-<n>``; if its name is still held by one just stopped, the next tick tries again."""
        index = len(self.replicas)
        try:
            self.replicas.append(start_replica(index, self.cluster, self.detector))
        except ValueError as exc:
            log.info("replica-%d not started yet: %s", index, exc)
            return
        log.info("replicas: %d (all were busy)", len(self.replicas))

    def shrink(self) -> None:
        """Stop the last replica for good; the shards send its calls in flight to the others."""
        ray.kill(self.replicas.pop(), no_restart=True)
        log.info("replicas: %d (they were mostly idle)", len(self.replicas))
