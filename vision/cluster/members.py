"""What the control plane says of its shards and replicas: a line each for ``/healthz``, and one
``run --jsonl`` stats record merged from the shards' own.

Plain functions of the actors' answers (a shard or replica that did not answer is None), so that
a silent member is listed as such rather than left out.
"""

from __future__ import annotations

from typing import Any

from vision.ingest.health import CameraState


def shard_lines(statuses: dict[str, Any], assignment: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """Per shard: whether it answers (its pipeline running), node, when it (last re)started, and its
    cameras with their lag in seconds (None: none measured yet, or the shard is silent)."""
    lines = {}
    for shard, cameras in assignment.items():
        status = statuses.get(shard)
        if status is None:
            lines[shard] = {"alive": False, "node": None, "started": None, "cameras": dict.fromkeys(cameras)}
            continue
        lines[shard] = {
            "alive": bool(status["running"]),
            "node": status["node"],
            "started": status["started"],
            "cameras": {k: v["lag"] for k, v in status["cameras"].items()},
        }
    return lines


def replica_lines(reports: dict[str, dict[str, Any] | None]) -> dict[str, dict[str, Any]]:
    """Per replica: whether it answers, node, when it (last re)started, and its batches since."""
    lines = {}
    for name, report in reports.items():
        if report is None:
            lines[name] = {"alive": False, "node": None, "started": None, "batches": 0, "frames": 0,
                           "frames_per_batch": None, "queued": 0, "busy_seconds": 0.0}  # fmt: skip
            continue
        batches = report["batches"]
        lines[name] = {
            "alive": True,
            "node": report["node"],
            "started": report["started"],
            "batches": batches,
            "frames": report["frames"],
            "frames_per_batch": round(report["frames"] / batches, 2) if batches else None,
            "queued": report["queued"],
            "busy_seconds": round(report["busy_seconds"], 3),
        }
    return lines


def merge_stats(answers: dict[str, Any], assignment: dict[str, list[str]], interval: float) -> dict[str, Any]:
    """One stats record of the cluster from each shard's (what its cameras did since it was last asked,
    vision/stats.py): the cameras of every shard, each naming its shard, and the detector calls summed;
    the cameras of a shard that did not answer are in ``error``. ``shards`` gives each shard's own
    interval and calls (None: silent)."""
    cameras: dict[str, Any] = {}
    shards: dict[str, Any] = {}
    calls = 0
    for shard, owned in assignment.items():
        record = answers.get(shard)
        if record is None:
            shards[shard] = None
            cameras.update({c: {"state": CameraState.ERROR.value, "shard": shard} for c in owned})
            continue
        shards[shard] = {"interval": record["interval"], "detector_calls": record["detector_calls"]}
        calls += record["detector_calls"]
        cameras.update({c: {**line, "shard": shard} for c, line in record["cameras"].items()})
    return {
        "kind": "stats",
        "interval": round(interval, 3),
        "detector_calls": calls,
        "cameras": cameras,
        "shards": shards,
    }
