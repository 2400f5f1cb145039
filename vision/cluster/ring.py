"""Which shard runs which camera: a consistent-hash ring with virtual nodes.

Each shard owns ``virtual_nodes`` points on a 64-bit ring; a camera belongs to the shard
of the first point at or after its own hash. The answer depends only on the camera id
and the shard names, so every process (the control plane, each shard, a restarted
shard) computes the same assignment without asking anyone, and adding a shard moves
only the cameras that fall on its new points: about 1/N of them, not all.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable


def _point(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


def shard_names(count: int) -> list[str]:
    """The shards of a cluster of ``count``: ``shard-0`` ... (also their Ray actor names)."""
    return [f"shard-{i}" for i in range(count)]


class HashRing:
    """Shard names placed on a ring of 64-bit hashes."""

    def __init__(self, shards: Iterable[str], virtual_nodes: int = 64) -> None:
        points = sorted((_point(f"{shard}#{v}"), shard) for shard in shards for v in range(virtual_nodes))
        if not points:
            raise ValueError("a hash ring needs at least one shard")
        self._hashes = [h for h, _ in points]
        self._shards = [s for _, s in points]

    def owner(self, camera_id: str) -> str:
        """The shard that runs ``camera_id``."""
        i = bisect.bisect_left(self._hashes, _point(camera_id))
        return self._shards[i % len(self._shards)]

    def assign(self, camera_ids: Iterable[str]) -> dict[str, list[str]]:
        """Cameras per shard (every shard listed, in ring order of first appearance, cameras sorted)."""
        result: dict[str, list[str]] = {shard: [] for shard in dict.fromkeys(self._shards)}
        for camera_id in sorted(camera_ids):
            result[self.owner(camera_id)].append(camera_id)
        return result
