"""The operator service for tests: a config on the bundled clip played as a never-ending camera,
built in-process (runtime + app, pipeline in a thread) or run as `street-vision serve`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from hypothesis import HealthCheck, Phase, settings

from vision.api.app import create_app
from vision.api.auth import Tokens
from vision.api.metrics import Metrics
from vision.config import load_config
from vision.runtime import Runtime

from .conftest import ROOT, SAMPLE
from .dispatch_support import wait_for

READ = "read-token-0123456789abcdef"
ADMIN = "admin-token-0123456789abcdef"
CAMERA_PASSWORD = "cam-pass-XYZ-987"
HOOK_SECRET = "hook-secret-ABC-654"
ENV = {
    "STREET_VISION_API_TOKEN": READ,
    "STREET_VISION_ADMIN_TOKEN": ADMIN,
    "SV_TEST_VIDEO": str(SAMPLE),
    "SV_TEST_CAM_PASSWORD": CAMERA_PASSWORD,
    "SV_TEST_HOOK_SECRET": HOOK_SECRET,
}
SECRETS = (READ, ADMIN, CAMERA_PASSWORD, HOOK_SECRET)
AS_READER = {"Authorization": f"Bearer {READ}"}
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(folder: Path, webhook_port: int | None = None) -> Path:
    """The plaza clip in real time, looping; a disabled RTSP camera whose password is an ${ENV}
    reference; optionally a webhook to a port nobody listens on, so messages are dead-lettered."""
    text = f"""# test service config
cameras:
  plaza:
    url: ${{SV_TEST_VIDEO}}
    realtime: true
    loop: true
    detect_fps: 5
    zones:
      crossing:  # comments below the header are not kept by an edit
        polygon: [[0.0, 0.33], [0.55, 0.33], [0.95, 0.25], [1.0, 0.45], [1.0, 0.85], [0.0, 0.5]]
        rules:
          crowd: {{enter_count: 30, min_duration: 2}}
  gate:
    url: rtsp://viewer:${{SV_TEST_CAM_PASSWORD}}@127.0.0.1:9/stream?token=${{SV_TEST_CAM_PASSWORD}}
    enabled: false
detector:
  min_score: 0.4
  classes: [person, bicycle]
storage:
  data_dir: {folder / "data"}
"""
    if webhook_port is not None:
        text += f"""dispatch:
  webhook_url: http://127.0.0.1:{webhook_port}/hook
  secret: ${{SV_TEST_HOOK_SECRET}}
  timeout: 1
  max_attempts: 1
"""
    path = folder / "service.yaml"
    path.write_text(text)
    return path


def plaza_service(folder: Path, zones: str, rest: str, url: str) -> Path:
    """The plaza clip looping in real time with ``zones`` (YAML, indented for ``zones:``), the rest
    of the file (``rest``), and the webhook to ``url`` signed with the test's hook secret."""
    path = folder / "service.yaml"
    path.write_text(
        "cameras:\n  plaza:\n    url: ${SV_TEST_VIDEO}\n    realtime: true\n    loop: true\n"
        f"    detect_fps: 5\n    zones:\n{zones}{rest}"
        f"dispatch:\n  webhook_url: {url}\n  secret: ${{SV_TEST_HOOK_SECRET}}\n"
        f"  backoff_initial: 0.05\n  backoff_max: 0.2\nstorage:\n  data_dir: {folder / 'data'}\n"
    )
    return path


@dataclass
class InProcess:
    """Runtime and app of one config, the pipeline running in a thread."""

    config: Path
    runtime: Runtime
    app: object
    thread: threading.Thread


@contextmanager
def in_process(config: Path, **app_options: object) -> Iterator[InProcess]:
    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)  # the config's ${...} references, read again by every zone edit
    metrics = Metrics()
    runtime = Runtime.build(load_config(config), config, on_inference=metrics.observe_inference)
    thread = threading.Thread(target=runtime.pipeline.run, kwargs={"max_seconds": 600}, daemon=True)
    app = create_app(
        runtime, config, Tokens(READ, ADMIN), metrics, pipeline_alive=thread.is_alive, **app_options
    )  # type: ignore[arg-type]
    if runtime.dispatcher:
        runtime.dispatcher.start()
    thread.start()
    try:
        yield InProcess(config, runtime, app, thread)
    finally:
        runtime.pipeline.stop()
        thread.join(15)
        runtime.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class Served:
    """A `street-vision serve` process on 127.0.0.1."""

    process: subprocess.Popen[str]
    url: str
    config: Path
    log: Path  # its stdout and stderr (a file, so a chatty server never blocks on a full pipe)


@contextmanager
def serve(config: Path, env: dict[str, str] | None = None) -> Iterator[Served]:
    """``env`` is added to the process's environment (after ENV)."""
    port = free_port()
    log = config.with_suffix(".log")
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "vision.cli", "serve", str(config), "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, **ENV, **(env or {})},
            text=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}: {log.read_text()}")
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, "street-vision serve to answer /healthz", 60)
        yield Served(process, url, config, log)
    finally:
        terminate(process)


def terminate(process: subprocess.Popen[str]) -> None:
    """SIGTERM, and SIGKILL if it has not stopped within 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def fuzz_settings(examples: int) -> settings:
    """Hypothesis settings of the fuzz tests: deterministic (CI gets the same examples every run)."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
