"""A local Ray cluster for the tests: a head and a second worker node on this machine, one CPU each.

Both nodes are started with ``ray start`` (as an operator would on two machines), their
workers import this tree (PYTHONPATH), and :meth:`RayCluster.stop` always ends them with
``ray stop``. The failover tests lose the worker node (its raylet SIGKILLed, as a machine's
power loss would) and start another; Ray's GCS declares a node dead after 3 health checks
1 s apart missed here (Ray's defaults: 5 checks, 3 s apart). Every command is bounded in time.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .conftest import ROOT

COMMAND_S = 120  # `ray start` of one node (it waits until the node has registered)
STOP_S = 60
HEAD = "node:__internal_head__"  # the resource Ray gives the head node only
FAST_DEATH = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"}
HOLD = """import sys, time, ray
ray.init(address=sys.argv[1], namespace="hold", logging_level="ERROR", log_to_driver=False)

@ray.remote(num_cpus=1, resources={sys.argv[2]: 0.001})
class Hold:
    def ready(self):
        return True

holder = Hold.remote()
ray.get(holder.ready.remote())
print("held", flush=True)
time.sleep(3600)
"""


def missing() -> str | None:
    """Why no Ray cluster can be started here, or None."""
    if shutil.which("ray") is None:
        return "the ray command is not installed (pip install -e '.[cluster]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RayCluster:
    """Two Ray nodes on 127.0.0.1 with one CPU each; :attr:`address` is the head's."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0", **FAST_DEATH}
        self.workers = 0  # worker nodes started so far (each has its folder in ``temp``)
        self.common = ["--num-cpus", "1", "--object-store-memory", str(200 * 2**20), "--disable-usage-stats"]

    def _ray(self, *args: str, timeout: float = COMMAND_S) -> None:
        done = subprocess.run(["ray", *args], capture_output=True, text=True, timeout=timeout, env=self.env)
        if done.returncode != 0:
            raise RuntimeError(f"ray {args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")

    def start(self) -> RayCluster:
        self.temp.mkdir(exist_ok=True)  # again after a stop
        try:
            self._ray(
                "start", "--head", "--port", str(self.port), "--node-ip-address", "127.0.0.1",
                "--include-dashboard=false", "--temp-dir", str(self.temp), *self.common,
            )  # fmt: skip
            self.add_worker()
        except BaseException:
            self.stop()
            raise
        return self

    def add_worker(self) -> None:
        """One more worker node (the second machine), joining the head. Its own temporary folder, as on
        another machine: nodes sharing one would each forward every worker's log lines to the driver."""
        self.workers += 1
        node = ["--node-ip-address", "127.0.0.1", "--temp-dir", str(self.temp / f"w{self.workers}")]
        self._ray("start", "--address", self.address, *node, *self.common)

    def raylets(self) -> dict[str, tuple[int, bool]]:
        """This cluster's live nodes: node id -> (its raylet's pid, whether it is the head)."""
        found = {}
        for entry in Path("/proc").iterdir():
            try:
                args = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except (OSError, ValueError):
                continue
            if not args[0].endswith("/raylet") or not any(str(self.temp) in a for a in args):
                continue
            node = next(a.split("=", 1)[1] for a in args if a.startswith("--node_id="))
            found[node] = (int(entry.name), any(HEAD in a for a in args))
        return found

    def lose_node(self, node_id: str) -> None:
        """A worker node dies at once: its raylet SIGKILLed (its workers follow it within a second)."""
        pid, head = self.raylets()[node_id]
        assert not head, "the head node holds the GCS: losing it loses the cluster (see docs/scaling.md)"
        os.kill(pid, signal.SIGKILL)

    @contextmanager
    def hold_head(self) -> Iterator[None]:
        """The head's CPU taken by another driver's actor while the block runs, so that what starts in
        it lands on the worker node; released (that driver killed, its actor with it) at the end."""
        command = [sys.executable, "-c", HOLD, self.address, HEAD]
        holder = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=self.env)
        try:
            assert holder.stdout is not None
            ready, _, _ = select.select([holder.stdout], [], [], COMMAND_S)
            assert ready and holder.stdout.readline().strip() == b"held", "the head's CPU was not taken"
            yield
        finally:
            holder.kill()
            holder.wait(30)

    def stop(self) -> None:
        subprocess.run(
            ["ray", "stop", "--force", "--grace-period", "5"],
            capture_output=True,
            timeout=STOP_S,
            env=self.env,
        )
        shutil.rmtree(self.temp, ignore_errors=True)
