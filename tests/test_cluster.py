"""Cameras sharded over a real two-node Ray cluster (`ray start` head + worker on this machine), their
store in a real PostgreSQL, tickets at the real receiver.

Failures while the crowd ticket is open, each ending with the ticket closed once and every transition
at the receiver once, the plaza a live RTSP camera on loopback (rtsp-server-perl fed by ffmpeg, the clip
looped: what a restart misses of the stream is gone): a shard's process SIGKILLed (Ray restarts it, it
restores the ticket, and the ticket closes when the live scene clears); the worker
node lost with both shards and the detector replica on it (Ray starts them on the head); the head lost
(the cluster and `run` started again). Detector replicas stopped (shrinking) and SIGKILLed under calls
lose no call. `serve` on the cluster with the shared detector: the API lists every shard's cameras, a
zone edit reaches the owning shard, /healthz, /metrics and `cluster status` cover every shard and the
replica, and a killed shard's camera is in error until Ray has restarted it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest

from vision.cluster.ring import HashRing, shard_names
from vision.config import ClusterConfig, DetectorConfig
from vision.secrets import SecretUrl
from vision.store.postgres import PostgresStore

from .api_support import AS_ADMIN, AS_READER, serve
from .conftest import ROOT, SAMPLE, cli, need, package
from .dispatch_support import SECRET, Receiver, wait_for
from .ingest_servers import NEEDS, PerlRtsp
from .pg_support import PASSWORD, PostgresServer
from .ray_support import RayCluster, missing

LAWN = ROOT / "sample_videos" / "litter.mp4"
CROWD = "crowd: {enter_count: 7, exit_count: 5, window: 2.0, min_duration: 2.0, close_after: 3.0}"
RESTORED = "restored 1 open event(s) from the store"  # the plaza shard's log line once it carries the ticket
CROSSING = "[[0.0, 0.33], [0.55, 0.33], [0.95, 0.25], [1.0, 0.45], [1.0, 0.85], [0.55, 0.62], [0.0, 0.5]]"


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[RayCluster]:
    need(missing())
    cluster = RayCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    server = Receiver(tmp_path / "receiver.sqlite").start()
    yield server
    server.stop()


def plaza_from_6s(folder: Path, encode: bool = False) -> Path:
    """The plaza clip from its keyframe at 6 s: the crowd on the crossing from 6 s to 29 s instead of
    12 s to 35 s, so the test waits less, and calm from 29 s to its end at 34 s. Copied, or with
    ``encode`` as a camera's main stream is (H.264 without B-frames, a keyframe every second)."""
    need(None if shutil.which("ffmpeg") else "the ffmpeg command is not installed (apt-get install ffmpeg)")
    clip = folder / ("plaza-6s-live.mp4" if encode else "plaza-6s.mp4")
    codec = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-bf", "0", "-g", "10"]
    source = ["ffmpeg", "-v", "error", "-ss", "6", "-i", str(SAMPLE), "-an"]
    command = [*source, *(codec if encode else ["-c", "copy"]), str(clip)]
    subprocess.run(command, check=True, timeout=60)
    return clip


@pytest.fixture(scope="module")
def live_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return plaza_from_6s(tmp_path_factory.mktemp("live"), encode=True)


@pytest.fixture
def plaza_camera(live_clip: Path) -> Iterator[str]:
    """The plaza as a live RTSP camera on 127.0.0.1 (UDP), the clip looped by its publisher from now on;
    its URL."""
    need(None if shutil.which("rtsp-server-perl") else f"rtsp-server-perl is not installed: {NEEDS}")
    server = PerlRtsp()
    try:
        server.start().publish("plaza", video=live_clip, copy=True)
        yield server.url("plaza")
    finally:
        server.close()


def cluster_config(
    tmp_path: Path, address: str, store_url: str, cluster: str, rest: str = "", live: str | None = None
) -> Path:
    """The plaza clip from 6 s (a crowd on the crossing), or the ``live`` RTSP camera showing it, and the
    litter clip (keyframes only: cheap), clips looping in real time like cameras, on two shards; the
    store in PostgreSQL with its password from the environment."""
    plaza = (
        f"{live}\n    stream: {{transport: udp}}"
        if live
        else f"{plaza_from_6s(tmp_path)}\n    realtime: true\n    loop: true"
    )
    text = f"""cameras:
  plaza:
    url: {plaza}
    detect_fps: 5
    zones:
      crossing:
        polygon: {CROSSING}
        rules:
          {CROWD}
  lawn:
    url: {LAWN}
    realtime: true
    loop: true
    detect_fps: 1
    decode: {{keyframes_only: true}}
detector:
  min_score: 0.4
  classes: [person, bicycle, motorcycle, bottle, cup]
events: {{close_after: 10, update_interval: 10, restart_grace: 3}}
storage:
  data_dir: {tmp_path / "data"}
  url: {store_url}
cluster:
  address: {address}
  shards: 2
{cluster}{rest}"""
    path = tmp_path / "cluster.yaml"
    path.write_text(text)
    return path


def test_two_shards_place_plaza_and_lawn_apart() -> None:
    """What the tests below rely on: the two cameras land on different shards."""
    assignment = HashRing(shard_names(2)).assign(["plaza", "lawn"])
    assert sorted(map(len, assignment.values())) == [1, 1], assignment


def test_run_on_the_cluster_ends_with_its_files(
    tmp_path: Path, ray_cluster: RayCluster, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files read as fast as possible (keyframes only: quick): each shard ends with its camera's file, and
    `run` prints the summary of both shards."""
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    url = postgres.url(postgres.database(), "${PGPASSWORD}")
    config = cluster_config(tmp_path, ray_cluster.address, url, "  shard_cpus: 1\n")
    text = config.read_text().replace("    realtime: true\n    loop: true\n", "")
    config.write_text(
        text.replace("    detect_fps: 5\n", "    detect_fps: 5\n    decode: {keyframes_only: true}\n")
    )
    done = cli("run", config, "--jsonl", "--stats-every", "1", timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(line) for line in done.stdout.splitlines()]
    summary, stats = records[-1], records[:-1]
    assert summary["kind"] == "summary" and set(summary["cameras"]) == {"plaza", "lawn"}, summary
    assert summary["cameras"]["plaza"]["frames_detected"] >= 15  # a keyframe every 2 s of 34 s
    assert summary["cameras"]["lawn"]["frames_detected"] > 0
    # a stats line merged from both shards every second, and one for the tail: every frame counted once
    # (a shard still starting does not answer: its camera is in error in that line, and its frames count
    # in the next line it answers)
    assert len(stats) >= 2 and {r["kind"] for r in stats} == {"stats"}, stats
    ring = HashRing(shard_names(2))
    for camera in ("plaza", "lawn"):
        lines = [r["cameras"][camera] for r in stats]
        assert {line["shard"] for line in lines} == {ring.owner(camera)}, lines
        analysed = sum(line.get("frames_analysed", 0) for line in lines)
        assert analysed == summary["cameras"][camera]["frames_detected"], (camera, lines)
    assert sum(r["detector_calls"] for r in stats) > 0
    assert all(set(r["shards"]) == set(shard_names(2)) for r in stats)
    assert None not in stats[-1]["shards"].values(), stats[-1]  # the tail: every shard answers
    assert PASSWORD not in done.stdout + done.stderr


@dataclass
class Ticketing:
    """A cluster config whose crowd ticket goes to the real receiver, its database, and how to run it."""

    config: Path
    database: str
    postgres: PostgresServer
    receiver: Receiver

    @contextmanager
    def running(self, log: Path) -> Iterator[subprocess.Popen[bytes]]:
        """`street-vision run CONFIG` in the background, its output in ``log``; killed if still running."""
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with log.open("ab") as out:
            command = [sys.executable, "-m", "vision.cli", "run", str(self.config)]
            run = subprocess.Popen(command, stdout=out, stderr=out, cwd=ROOT, env=env)
        try:
            yield run
        finally:
            if run.poll() is None:
                run.kill()
                run.wait(10)

    def status(self) -> dict[str, Any]:
        done = cli("cluster", "status", self.config, "--json", timeout=60)
        assert done.returncode in (0, 1), done.stderr[-3000:]
        return json.loads(done.stdout)

    def tickets(self, state: str) -> list[tuple[str, str, str]]:
        return [t for t in self.receiver.tickets() if t[2] == state]

    def opened(self) -> None:
        wait_for(lambda: self.tickets("open"), "the crowd ticket", 90.0)

    def closed(self, run: subprocess.Popen[bytes], log: Path) -> None:
        """Wait for the ticket to close, then stop `run` (SIGTERM): it ends cleanly."""
        wait_for(
            lambda: [t for t in self.receiver.tickets() if t[2] == "closed"], "the ticket to close", 90.0
        )
        assert run.poll() is None, log.read_text()[-3000:]
        run.send_signal(signal.SIGTERM)
        assert run.wait(60) == 0, log.read_text()[-3000:]

    def delivered(self) -> bool:
        store = PostgresStore(SecretUrl(self.postgres.url(self.database)), run=False)
        try:
            return store.outbox_counts().pending == 0
        finally:
            store.close()

    def check_once(self, *logs: Path) -> None:
        """One crowd event, resolved; each of its transitions at the receiver once, in order, applied once;
        no secret in any log."""
        text = "".join(log.read_text() for log in logs)
        assert PASSWORD not in text and SECRET not in text
        store = PostgresStore(SecretUrl(self.postgres.url(self.database)), run=False)
        try:
            events = store.sql.execute("SELECT type, state, close_reason FROM events").fetchall()
            kinds = [r[0] for r in store.sql.execute("SELECT kind FROM transitions ORDER BY seq")]
            counts = store.outbox_counts()
        finally:
            store.close()
        assert events == [("crowd", "resolved", "resolved")]
        assert (
            kinds[0] == "open" and kinds[-1] == "close" and kinds.count("open") == kinds.count("close") == 1
        )
        assert counts.delivered == len(kinds) and counts.pending == 0
        tickets, history = self.receiver.tickets(), self.receiver.history()
        assert len(tickets) == 1 and tickets[0][2] == "closed", (tickets, history)
        assert [h[3] for h in history] == kinds  # each transition once, in order: none lost, none twice
        assert all(h[4] == 0 for h in history), history  # no message applied again


@pytest.fixture
def ticketing(
    tmp_path: Path,
    ray_cluster: RayCluster,
    postgres: PostgresServer,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    plaza_camera: str,
) -> Ticketing:
    """The crowd ticket's config on the live plaza camera with the test's cluster section
    (``@pytest.mark.parametrize`` of ``section``, indirect)."""
    monkeypatch.setenv("PGPASSWORD", PASSWORD)  # the processes' environment: the config refers to them
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    database = postgres.database()
    hook = (
        f"dispatch:\n  webhook_url: {receiver.url}\n  secret: ${{HOOK_SECRET}}\n"
        "  backoff_initial: 0.05\n  backoff_max: 0.2\n  timeout: 2\n"
    )
    url = postgres.url(database, "${PGPASSWORD}")
    config = cluster_config(tmp_path, ray_cluster.address, url, request.param, hook, plaza_camera)
    return Ticketing(config, database, postgres, receiver)


@pytest.mark.parametrize("ticketing", ["  shard_cpus: 1\n"], indirect=True)
def test_a_shard_killed_while_its_ticket_is_open_restarts_and_closes_it_once(
    tmp_path: Path, ticketing: Ticketing
) -> None:
    """The plaza shard's process SIGKILLed while the crowd ticket is open. The live camera goes on
    meanwhile: what it shows while Ray restarts the shard is never seen (the restarted shard reads the
    newest frames), the restored ticket is paused over that gap, and it closes once the crowd has left
    the crossing (the clip's calm end, before its loop brings the crowd back)."""
    log = tmp_path / "run.log"
    with ticketing.running(log) as run:
        ticketing.opened()
        shards = {s["shard"]: s for s in ticketing.status()["shards"]}
        assert len({s["node"] for s in shards.values()}) == 2, shards  # one shard per node (1 CPU each)
        owner = next(s for s in shards.values() if "plaza" in s["cameras"])
        assert owner["cameras"]["plaza"]["state"] == "live"
        os.kill(owner["pid"], signal.SIGKILL)  # the shard's worker process, as an OOM kill would

        wait_for(lambda: RESTORED in log.read_text(), "the restore", 60.0)
        ticketing.closed(run, log)
    ticketing.check_once(log)


def test_serve_on_the_cluster_with_the_shared_detector(
    tmp_path: Path, ray_cluster: RayCluster, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    shared = "  shard_cpus: 0.5\n  detector: shared\n  replica_cpus: 0.5\n  batch_wait: 0.02\n"
    url = postgres.url(postgres.database(), "${PGPASSWORD}")
    config = cluster_config(tmp_path, ray_cluster.address, url, shared)
    owner = HashRing(shard_names(2)).owner("lawn")
    with serve(config) as served:
        api = httpx.Client(base_url=served.url, timeout=20)
        wait_for(
            lambda: set(api.get("/healthz").json()["cameras"].values()) == {"live"}, "both cameras live", 60
        )
        cameras = api.get("/api/cameras", headers=AS_READER).json()
        assert {c["id"] for c in cameras} == {"plaza", "lawn"}, cameras

        zone = {"name": "verge", "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]]}
        zone["rules"] = {"litter": {"min_duration": 5}}
        created = api.post("/api/cameras/lawn/zones", headers=AS_ADMIN, json=zone)
        assert created.status_code == 201, created.text
        assert "verge" in api.get("/api/cameras/lawn", headers=AS_READER).json()["active_zones"]

        def replica_frames() -> float:
            metrics = api.get("/metrics", headers=AS_READER).text
            lines = [line for line in metrics.splitlines() if line.startswith("street_vision_replica_frames")]
            return float(lines[0].split()[-1]) if lines else 0.0

        wait_for(lambda: replica_frames() > 10, "frames detected by the replica", 30)
        metrics = api.get("/metrics", headers=AS_READER).text
        for shard in shard_names(2):
            assert f'street_vision_shard_up{{shard="{shard}"}} 1.0' in metrics, metrics
        assert "street_vision_replicas 1.0" in metrics
        assert f'street_vision_camera_lag_seconds{{camera="lawn",shard="{owner}"}}' in metrics

        for name in ("street_vision_replica_up", "street_vision_shard_started_timestamp_seconds"):
            assert f"{name}{{" in metrics, metrics

        def healthz_with_batches() -> dict[str, Any] | None:
            healthz = api.get("/healthz").json()
            return healthz if healthz["replicas"]["replica-0"]["batches"] > 0 else None

        # /healthz's lines of shards and replicas are up to FRESH_S (0.5 s) old, /metrics asks afresh: a
        # replica's first batches can be in the one before the other
        healthz = wait_for(healthz_with_batches, "the replica's batches in /healthz", 5)
        assert set(healthz["shards"]) == set(shard_names(2)), healthz
        assert all(s["alive"] and s["node"] for s in healthz["shards"].values()), healthz
        assert "lawn" in healthz["shards"][owner]["cameras"], healthz
        replica = healthz["replicas"]["replica-0"]
        assert replica["alive"] and replica["batches"] > 0 and replica["frames_per_batch"] >= 1, healthz

        status = cli("cluster", "status", config, timeout=60)
        assert status.returncode == 0, status.stderr[-3000:]
        assert "shard-0: running" in status.stdout and "shard-1: running" in status.stdout, status.stdout
        assert "  plaza: live" in status.stdout and "  lawn: live" in status.stdout, status.stdout
        found = re.search(r"^replica-0: node \S+ \(\S+\) pid (\d+) ", status.stdout, re.MULTILINE)
        assert found is not None, status.stdout

        os.kill(int(found[1]), signal.SIGKILL)  # the replica: Ray restarts it and sends its calls again

        def replica_back() -> bool:
            again = api.get("/healthz").json()["replicas"]["replica-0"]
            return again["alive"] and again["started"] > replica["started"] and again["batches"] > 0

        wait_for(replica_back, "the replica restarted and at work", 60)
        metrics = api.get("/metrics", headers=AS_READER).text
        for camera in ("plaza", "lawn"):  # the shards kept going: no frame of theirs failed
            assert f'street_vision_camera_errors_total{{camera="{camera}"}} 0.0' in metrics, metrics

        victim = HashRing(shard_names(2)).owner("plaza")
        pid = re.search(rf"^{victim}: running node \S+ \(\S+\) pid (\d+)$", status.stdout, re.MULTILINE)
        assert pid is not None, status.stdout
        started = api.get("/healthz").json()["shards"][victim]["started"]
        os.kill(int(pid[1]), signal.SIGKILL)

        def down() -> dict[str, Any] | None:
            """Seen down (its camera in error), or already restarted: Ray can bring a shard back
            between two looks, and then only its start time tells."""
            healthz = api.get("/healthz").json()
            shard = healthz["shards"][victim]
            silent = healthz["cameras"]["plaza"] == "error" and not shard["alive"]
            return healthz if silent or (shard["alive"] and shard["started"] > started) else None

        healthz = wait_for(down, "plaza's shard down or restarted", 30)
        assert healthz["cameras"]["lawn"] == "live" and healthz["shards"][owner]["alive"]  # the other goes on
        wait_for(lambda: api.get("/healthz").json()["cameras"]["plaza"] == "live", "plaza back", 60)
        served.process.send_signal(signal.SIGTERM)
        served.process.wait(timeout=60)
    output = served.log.read_text()
    assert served.process.returncode == 0, output[-3000:]
    assert PASSWORD not in output


def test_replicas_stopped_or_killed_under_calls_lose_none(ray_cluster: RayCluster) -> None:
    """This test's process is the control plane and a shard at once: four threads keep sending a real
    frame to two replicas (each call waits 0.2 s for a batch), while the last replica is stopped as the
    replicas shrink and the first one's process is SIGKILLed. Every call answers, with the boxes the
    model finds in that frame."""
    ray = package("ray")
    from vision.cluster.inference import ReplicaEngine, live_replicas
    from vision.cluster.scaling import Scaler

    with av.open(str(SAMPLE)) as container:
        image = next(container.decode(video=0)).to_ndarray(format="rgb24")
    settings = ClusterConfig(min_replicas=1, max_replicas=2, replica_cpus=0, batch_wait=0.2)
    ray.init(address=ray_cluster.address, namespace="replica-test", logging_level=logging.WARNING,
             log_to_driver=False, configure_logging=False)  # fmt: skip
    scaler = Scaler(settings, DetectorConfig(threads=1))
    try:
        engine = ReplicaEngine(settings.max_replicas)
        expected = engine.infer([image])[0]
        assert len(expected.xyxy) > 0  # people on the plaza
        scaler.grow()
        wait_for(lambda: len(live_replicas(2)) == 2, "the second replica", 60)
        stop, answers, failures = threading.Event(), [], []

        def call() -> None:
            while not stop.is_set():
                try:
                    answers.append(engine.infer([image])[0])
                except Exception as exc:  # the test fails on any
                    failures.append(exc)

        callers = [threading.Thread(target=call, daemon=True) for _ in range(4)]
        for caller in callers:
            caller.start()
        last = scaler.replicas[-1]
        wait_for(lambda: ray.get(last.report.remote())["frames"] >= 4, "the second replica at work", 60)
        scaler.shrink()  # as the scaler does after an idle spell: calls in flight on it go elsewhere
        wait_for(lambda: engine.resent > 0, "a call sent again", 30)
        before = ray.get(scaler.replicas[0].report.remote())
        counted = len(answers)
        os.kill(before["pid"], signal.SIGKILL)  # Ray restarts it and sends the calls in flight again

        def restarted() -> bool:
            report = ray.get(scaler.replicas[0].report.remote(), timeout=60)
            return report["started"] > before["started"] and report["frames"] > 0

        wait_for(restarted, "the first replica restarted and at work", 90)
        wait_for(lambda: len(answers) > counted + 8, "calls answered after the restart", 60)
        stop.set()
        for caller in callers:
            caller.join(90)
        assert not failures, failures[:3]
        assert len(live_replicas(2)) == 1 and len(scaler.replicas) == 1
        for found in answers:
            assert np.allclose(found.xyxy, expected.xyxy, atol=0.5)
            assert (found.class_id == expected.class_id).all()
    finally:
        for replica in scaler.replicas:
            ray.kill(replica, no_restart=True)
        ray.shutdown()


SHARED_ON_ONE_NODE = "  shard_cpus: 0.25\n  detector: shared\n  replica_cpus: 0.5\n  batch_wait: 0.02\n"


@pytest.mark.parametrize("ticketing", [SHARED_ON_ONE_NODE], indirect=True)
def test_a_node_lost_while_its_shard_has_a_ticket_open(
    tmp_path: Path, ray_cluster: RayCluster, ticketing: Ticketing
) -> None:
    """Both shards and the detector replica on the worker node (the head's CPU held meanwhile); the node
    is lost (its raylet SIGKILLed) while the crowd ticket is open. Once Ray declares the node dead it
    starts the shards and the replica again on the head, the plaza shard restores the ticket from
    PostgreSQL, and the ticket closes once at the receiver."""
    log = tmp_path / "run.log"
    head = next(node for node, (_, is_head) in ray_cluster.raylets().items() if is_head)
    try:
        with ticketing.running(log) as run:
            with ray_cluster.hold_head():
                ticketing.opened()
                report = ticketing.status()
                nodes = {s["node"] for s in report["shards"]} | {r["node"] for r in report["replicas"]}
                assert len(nodes) == 1 and head not in nodes and len(report["replicas"]) == 1, report
                ray_cluster.lose_node(nodes.pop())
            # Ray declares the node dead first (its health checks), then starts the shards again: ~60 s
            # of the bound on a quiet machine (main's code too), so a loaded CI run gets more
            wait_for(lambda: RESTORED in log.read_text(), "the restore", 150.0)

            def moved() -> bool:
                report = ticketing.status()
                placed = [*report["shards"], *report["replicas"]]
                return len(placed) == 3 and all(p.get("node") == head for p in placed)

            wait_for(moved, "the shards and the replica running on the head", 60.0)
            ticketing.closed(run, log)
    finally:
        ray_cluster.add_worker()  # the next tests' second machine
    ticketing.check_once(log)


@pytest.mark.parametrize("ticketing", ["  shard_cpus: 1\n"], indirect=True)
def test_the_head_lost_the_next_run_carries_the_ticket_on(
    tmp_path: Path, ray_cluster: RayCluster, ticketing: Ticketing
) -> None:
    """Ray without GCS fault tolerance loses the whole cluster with its head. Simulated: the control plane
    SIGKILLed with the head machine, every Ray process stopped; the operator starts the cluster and `run`
    again, and the shards carry the open ticket on from PostgreSQL to its one close."""
    first, second = tmp_path / "run-1.log", tmp_path / "run-2.log"
    with ticketing.running(first) as run:
        ticketing.opened()
        wait_for(ticketing.delivered, "the outbox delivered", 30.0)  # a send cut off would be sent again
        run.kill()
        run.wait(10)
    ray_cluster.stop()
    ray_cluster.start()
    with ticketing.running(second) as run:
        wait_for(lambda: RESTORED in second.read_text(), "the restore", 90.0)
        ticketing.closed(run, second)
    ticketing.check_once(first, second)
