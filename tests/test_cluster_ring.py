"""The hash ring that assigns cameras to shards, when replicas grow, and the cluster section of the config
(no Ray cluster needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vision.cluster.inference import busy_shares, grows
from vision.cluster.ring import HashRing, shard_names
from vision.config import ConfigError, parse_config

from .conftest import cli

CAMERAS = [f"cam-{i:05d}" for i in range(10_000)]


def test_the_assignment_depends_only_on_camera_ids_and_shards() -> None:
    ring = HashRing(shard_names(8))
    again = HashRing(reversed(shard_names(8)))  # built in another order, another process
    assert all(ring.owner(c) == again.owner(c) for c in CAMERAS)
    assignment = ring.assign(CAMERAS)
    assert sorted(c for cameras in assignment.values() for c in cameras) == CAMERAS
    sizes = sorted(len(v) for v in assignment.values())
    assert sizes[0] > 0.6 * len(CAMERAS) / 8 and sizes[-1] < 1.4 * len(CAMERAS) / 8, sizes


@pytest.mark.parametrize("shards", [1, 2, 4, 9, 31])
def test_adding_a_shard_moves_about_one_nth_of_the_cameras_and_only_to_it(shards: int) -> None:
    before, after = HashRing(shard_names(shards)), HashRing(shard_names(shards + 1))
    new = shard_names(shards + 1)[-1]
    moved = [c for c in CAMERAS if before.owner(c) != after.owner(c)]
    assert all(after.owner(c) == new for c in moved)  # nothing moves between the old shards
    share = len(moved) / len(CAMERAS)
    assert 0.5 / (shards + 1) < share < 1.5 / (shards + 1), share


def test_removing_a_shard_moves_only_its_own_cameras() -> None:
    before, after = HashRing(shard_names(5)), HashRing(shard_names(4))
    moved = [c for c in CAMERAS if before.owner(c) != after.owner(c)]
    assert moved and all(before.owner(c) == "shard-4" for c in moved)


def test_a_ring_needs_a_shard() -> None:
    with pytest.raises(ValueError, match="at least one shard"):
        HashRing([])


def test_the_cluster_section_needs_postgresql_and_a_replica_range(tmp_path: Path) -> None:
    text = "cameras:\n  a:\n    url: a.mp4\ncluster:\n  shards: 2\n"
    with pytest.raises(ConfigError, match=r"cluster: needs storage\.url"):
        parse_config(text)
    text += "  min_replicas: 3\n  max_replicas: 2\nstorage:\n  url: postgresql://u@127.0.0.1:5432/db\n"
    with pytest.raises(ConfigError, match=r"max_replicas \(2\) must be at least min_replicas \(3\)"):
        parse_config(text)
    config = tmp_path / "single.yaml"
    config.write_text("cameras:\n  a:\n    url: a.mp4\n")
    done = cli("cluster", "status", config, timeout=60)
    assert done.returncode == 2 and "no cluster section" in done.stderr, done.stderr


def test_replicas_grow_only_while_every_one_is_busy_and_below_the_maximum() -> None:
    before = {"replica-0": 10.0, "replica-1": 4.0}
    busy = [{"name": "replica-0", "busy_seconds": 10.95}, {"name": "replica-1", "busy_seconds": 4.92}]
    shares = busy_shares(before, busy, 1.0)
    assert shares == pytest.approx([0.95, 0.92])
    assert grows(shares, 2, 3)
    assert not grows(shares, 2, 2)  # at max_replicas
    assert not grows(shares[:1], 2, 3)  # one did not answer
    idle = busy_shares(before, [busy[0], {"name": "replica-1", "busy_seconds": 4.5}], 1.0)
    assert not grows(idle, 2, 3)
    restarted = busy_shares({}, busy, 1.0)  # counts from now: no share yet
    assert restarted == [0.0, 0.0] and not grows(restarted, 2, 3)
