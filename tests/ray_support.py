"""A local Ray cluster for the tests: a head and a second worker node on this machine, one CPU each.

Both nodes are started with ``ray start`` (as an operator would on two machines), their
workers import this tree (PYTHONPATH), and :meth:`RayCluster.stop` always ends them with
``ray stop``. Every command is bounded in time.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from .conftest import ROOT

COMMAND_S = 120  # `ray start` of one node (it waits until the node has registered)
STOP_S = 60


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
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}

    def _ray(self, *args: str, timeout: float = COMMAND_S) -> None:
        done = subprocess.run(["ray", *args], capture_output=True, text=True, timeout=timeout, env=self.env)
        if done.returncode != 0:
            raise RuntimeError(f"ray {args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")

    def start(self) -> RayCluster:
        common = ["--num-cpus", "1", "--object-store-memory", str(200 * 2**20), "--disable-usage-stats"]
        try:
            self._ray(
                "start", "--head", "--port", str(self.port), "--node-ip-address", "127.0.0.1",
                "--include-dashboard=false", "--temp-dir", str(self.temp), *common,
            )  # fmt: skip
            self._ray("start", "--address", self.address, "--node-ip-address", "127.0.0.1", *common)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        subprocess.run(
            ["ray", "stop", "--force", "--grace-period", "5"],
            capture_output=True,
            timeout=STOP_S,
            env=self.env,
        )
        shutil.rmtree(self.temp, ignore_errors=True)
