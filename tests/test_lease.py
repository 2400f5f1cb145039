"""One service per camera: a second run or serve with a camera another runs on the same store is refused
before it starts, naming the first; services with cameras of their own share a store; a lease goes with
its process, SIGKILL included (vision/store/lease.py). Two runs of one config on one store each carried
on the same crowd ticket: one closed it, the other updated it and closed it again."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from vision.config import ConfigError, StorageConfig
from vision.store.lease import hold

from .conftest import ROOT, SAMPLE, cli


def test_a_camera_held_is_refused_until_its_holder_lets_go(storage: StorageConfig) -> None:
    first = hold(storage, ["plaza", "quay"])
    other = hold(storage, ["bridge"])  # a service with cameras of its own shares the store
    with pytest.raises(ConfigError) as info:
        hold(storage, ["market", "quay"])
    (problem,) = info.value.problems  # a line per camera refused
    assert problem.startswith("camera quay: run by another street-vision service on the store "), problem
    assert f"(pid {os.getpid()} on {socket.gethostname()} since " in problem, problem
    hold(storage, ["market"]).release()  # a refused service keeps none of its leases
    first.release()
    hold(storage, ["plaza", "quay"]).release()
    other.release()


def test_on_sqlite_one_dispatcher_at_a_time_delivers_the_outbox(storage: StorageConfig) -> None:
    """A service that delivers holds the SQLite outbox's lease beside its cameras'; PostgreSQL's
    dispatchers claim each message and share the outbox."""
    service = hold(storage, ["plaza"], outbox=True)
    try:
        if storage.url is None:
            with pytest.raises(ConfigError) as info:
                hold(storage, [], outbox=True)
            (problem,) = info.value.problems
            expected = f"the outbox of {storage.data_dir} is being delivered by another street-vision service"
            assert problem.startswith(expected), problem
            hold(storage, ["quay"]).release()  # a service that does not deliver
        else:
            hold(storage, [], outbox=True).release()
    finally:
        service.release()
    hold(storage, [], outbox=True).release()


def test_the_lease_goes_with_a_killed_process(storage: StorageConfig) -> None:
    url = storage.url.get_secret_value() if storage.url else None
    code = (
        "import time; from vision.config import StorageConfig; from vision.store.lease import hold\n"
        f"lease = hold(StorageConfig(data_dir={str(storage.data_dir)!r}, url={url!r}), ['plaza'])\n"
        "print('held', flush=True); time.sleep(120)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match=rf"camera plaza: .*\(pid {holder.pid} on "):
            hold(storage, ["plaza"])
    finally:
        holder.kill()
        holder.wait(timeout=30)
    deadline = time.monotonic() + 10  # PostgreSQL ends the session once it reads the closed socket
    while True:
        try:
            hold(storage, ["plaza"]).release()
            break
        except ConfigError:
            assert time.monotonic() < deadline, "the killed holder's lease was not freed in 10 s"
            time.sleep(0.1)


def test_a_second_run_of_a_camera_is_refused_and_the_first_goes_on(tmp_path) -> None:
    config = tmp_path / "plaza.yaml"
    config.write_text(
        f"cameras:\n  plaza:\n    url: {SAMPLE}\n    realtime: true\n"
        f"storage:\n  data_dir: {tmp_path / 'data'}\n"
    )
    first = subprocess.Popen(
        [sys.executable, "-m", "vision.cli", "run", str(config), "--jsonl", "--max-seconds", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        assert json.loads(first.stdout.readline())["kind"] == "health"  # running: the lease is held
        second = cli("run", config, "--jsonl", timeout=120)
        assert second.returncode == 2 and second.stdout == "", second.stderr
        assert "error: camera plaza: run by another street-vision service" in second.stderr, second.stderr
        assert f"(pid {first.pid} on {socket.gethostname()} since " in second.stderr, second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        rest, _ = first.communicate(timeout=60)
    assert first.returncode == 0 and json.loads(rest.splitlines()[-1])["kind"] == "summary"
    again = cli("run", config, "--max-seconds", "1", timeout=120)
    assert again.returncode == 0, again.stderr
