"""``street-vision cluster status CONFIG``, and ``street-vision run CONFIG`` with a ``cluster:`` section."""

from __future__ import annotations

import argparse
import json
import signal
from typing import Any

from vision.config import Config, ConfigError, load_config
from vision.jsonl import CLOSED_PIPE, JsonLines


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("cluster", help="the Ray cluster of a config with a cluster section")
    cluster = p.add_subparsers(dest="cluster_command", required=True)
    s = cluster.add_parser(
        "status", help="print the shards, their cameras and lag, and the detector replicas"
    )
    s.add_argument("config")
    s.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    s.set_defaults(func=cmd_status)


def _clustered(config: Config, where: str) -> Config:
    if config.cluster is None:
        raise ConfigError([f"{where}: no cluster section: this config runs in one process"])
    return config


def cmd_status(args: argparse.Namespace) -> int:
    from vision.cluster.control import status

    config = _clustered(load_config(args.config), args.config)
    report = status(config)
    if args.json:
        print(json.dumps(report))
    else:
        print(describe(report))
    return 0 if all(s["running"] for s in report["shards"]) else 1


def describe(report: dict[str, Any]) -> str:
    """The status as lines: a shard per line with its cameras (state, lag), then a replica per line."""
    lines = [f"nodes: {report['nodes']}"]
    for shard in report["shards"]:
        where = f"node {shard['node'][:8]} ({shard['address']}) pid {shard['pid']}" if "node" in shard else ""
        state = "running" if shard["running"] else f"not running: {shard['failure']}"
        lines.append(f"{shard['shard']}: {state} {where}".rstrip())
        for camera_id, camera in shard["cameras"].items():
            lag = "" if camera is None or camera["lag"] is None else f", lag {camera['lag']:.2f} s"
            lines.append(f"  {camera_id}: {camera['state'] if camera else 'not running'}{lag}")
        if shard.get("inference", {}).get("calls"):
            calls = shard["inference"]
            lines.append(
                f"  inference: {calls['calls']} calls, {calls['frames']} frames, "
                f"{1000 * calls['seconds'] / calls['calls']:.1f} ms per call"
            )
    for replica in report["replicas"]:
        mean = replica["frames"] / replica["batches"] if replica["batches"] else 0.0
        lines.append(
            f"{replica['name']}: node {replica['node'][:8]} ({replica['address']}) pid {replica['pid']} "
            f"{replica['batches']} "
            f"batches, {replica['frames']} frames ({mean:.1f} per batch), {replica['queued']} queued, "
            f"busy {replica['busy_seconds']:.1f} s"
        )
    if not report["replicas"]:
        lines.append("replicas: none (each shard runs its own detector)")
    return "\n".join(lines)


def run(args: argparse.Namespace, config: Config) -> int:
    """``run`` on the cluster: start the shards, wait until their files end (or Ctrl-C, SIGTERM,
    ``--max-seconds``), deliver the outbox, print the summary; with ``--jsonl``, a stats line merged
    from the shards every ``--stats-every`` seconds before it."""
    from vision.cluster.control import ClusterRuntime
    from vision.dispatch import commands as dispatch_commands
    from vision.stats import StatsTicker

    runtime = ClusterRuntime.build(config, args.config)
    emit = JsonLines(runtime.pipeline.stop)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: runtime.pipeline.stop())
    if runtime.dispatcher:
        runtime.dispatcher.start()
    ticker = None
    if args.jsonl and args.stats_every > 0:
        ticker = StatsTicker(runtime.pipeline.stats_record, args.stats_every, emit).start()
    try:
        summary = runtime.pipeline.run(max_seconds=args.max_seconds)
        if ticker:
            ticker.stop()  # the shards have ended, and answer for their tail
        delivery = runtime.dispatcher.drain(args.drain_seconds) if runtime.dispatcher else None
    finally:
        runtime.close()
    record = summary.to_record()
    if delivery is not None:
        record["outbox"] = delivery.to_record()
        dispatch_commands.report_leftovers(delivery)
    if args.jsonl:
        emit({"kind": "summary", **record})
    else:
        print(_summary_line(record), flush=True)
    failed = [k for k, v in record["cameras"].items() if v["error"]]
    if emit.closed:
        return CLOSED_PIPE
    return 1 if not record["cameras"] or (failed and len(failed) == len(record["cameras"])) else 0


def _summary_line(record: dict[str, Any]) -> str:
    cameras = ", ".join(f"{k}: {v['frames_detected']} frames" for k, v in record["cameras"].items())
    return f"{cameras}; transitions: {record['transitions'] or 'none'}; still open: {record['open_events']}"
