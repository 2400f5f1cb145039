"""The hash ring that assigns cameras to shards, when replicas grow and shrink, the cluster section of the
config, and docs/scaling.md's sizing against the benchmark's figures (no Ray cluster needed)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from vision.cluster.ring import HashRing, shard_names
from vision.cluster.scaling import Hysteresis, busy_shares, change
from vision.config import ConfigError, parse_config

from .conftest import ROOT, cli

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
    before = {("replica-0", 1.0): 10.0, ("replica-1", 2.0): 4.0}
    busy = [
        {"name": "replica-0", "started": 1.0, "busy_seconds": 10.95},
        {"name": "replica-1", "started": 2.0, "busy_seconds": 4.92},
    ]
    shares = busy_shares(before, busy, 1.0)
    assert shares == pytest.approx([0.95, 0.92])
    assert change(shares, 2, 1, 3) == 1
    assert change(shares, 2, 1, 2) == 0  # at max_replicas
    assert change(shares[:1], 2, 1, 3) == 0  # one did not answer
    idle = busy_shares(before, [busy[0], {**busy[1], "busy_seconds": 4.5}], 1.0)
    assert change(idle, 2, 1, 3) == 0  # one of them had time to spare: neither more nor fewer
    restarted = busy_shares(before, [busy[0], {**busy[1], "started": 9.0, "busy_seconds": 0.1}], 1.0)
    assert restarted == [pytest.approx(0.95), None] and change(restarted, 2, 1, 3) == 0  # no figure yet
    assert busy_shares({}, busy, 1.0) == [None, None]


def test_replicas_shrink_when_one_fewer_would_be_half_busy_and_never_below_the_minimum() -> None:
    assert change([0.2, 0.25, 0.05], 3, 1, 4) == -1  # 0.5 of work: two would be 25% busy
    assert change([0.3, 0.3], 2, 1, 4) == 0  # one alone would be 60% busy
    assert change([0.25, 0.25], 2, 1, 4) == -1  # exactly 50%
    assert change([0.0, 0.0], 2, 2, 4) == 0  # at min_replicas
    assert change([0.0, None], 2, 1, 4) == 0  # one restarted: no figure to judge by
    assert change([0.0], 2, 1, 4) == 0  # one did not answer


def test_a_shrink_waits_for_an_unbroken_idle_spell_and_a_grow_does_not() -> None:
    rule = Hysteresis(least=1, most=4, after=30.0)
    idle, half, busy = [0.1, 0.1, 0.1], [0.4, 0.4, 0.4], [0.95, 0.92, 0.99]
    assert rule.decide(busy, 3, 0.0) == 1  # at once
    assert [rule.decide(idle, 3, t) for t in (1.0, 10.0, 30.0)] == [0, 0, 0]  # 29 s idle: not yet
    assert rule.decide(half, 3, 31.0) == 0  # two would be 60% busy: the spell is broken
    assert [rule.decide(idle, 3, t) for t in (32.0, 61.0, 62.0)] == [0, 0, -1]  # 30 s unbroken
    assert rule.decide(idle[:2], 2, 63.0) == 0  # the next one needs a spell of its own
    assert rule.decide(idle[:2], 2, 93.0) == -1
    assert rule.decide(idle[:1], 1, 200.0) == 0  # min_replicas
    assert rule.decide([0.0, 0.0], 2, 300.0) == 0 and rule.decide([0.95, 0.95], 2, 301.0) == 1
    assert rule.decide([0.0, 0.0, 0.0], 3, 331.0) == 0  # the grow broke the spell: it starts again
    assert Hysteresis(1, 4, 0.0).decide(idle, 3, 5.0) == -1  # scale_down_after 0: at the first idle look


def test_the_sizing_in_scaling_md_is_computed_from_the_benchmark() -> None:
    """docs/scaling.md's costs and sizing table are benchmarks/cluster.json's figures: rerunning the
    benchmark fails this until the doc says what it measured."""
    modes = json.loads((ROOT / "benchmarks" / "cluster.json").read_text())["modes"]
    text = (ROOT / "docs" / "scaling.md").read_text()
    labels = {
        "single": "single process",
        "cluster-local": "cluster, detector local (2 shards)",
        "cluster-shared": "cluster, detector shared (2 shards + 1 replica)",
    }
    for mode, label in labels.items():
        figures = modes[mode]
        row = f"| {label} | {figures['cpu_ms_per_camera_second']} | {figures['cameras_per_core']} |"
        assert row in text, row
    cost = modes["cluster-local"]["cpu_ms_per_camera_second"]
    assert f"cameras per core = 0.7 x 1000 / {cost} = **{700 / cost:.1f}**" in text
    for cameras in (100, 1_000, 10_000):
        cores = math.ceil(cameras * cost / 1000 / 0.7)
        row = (
            f"| {cameras:,} | {cameras:,} x {cost} ms / 1000 / 0.7 = {cores:,} | {math.ceil(cores / 16)} | "
            f"{math.ceil(cores / 2):,} | {math.ceil(cameras / 256)} |"
        )
        assert row in text, row
    shared = modes["cluster-shared"]
    shards = shared["cpu_ms_per_camera_second"] - 5 * shared["replica_cpu_ms_per_frame"]
    assert f"the shards themselves {shards:.1f} ms per camera-second" in text
    assert f"0.7 x 1000 / {round(shards)} = {700 / round(shards):.1f} cameras" in text
