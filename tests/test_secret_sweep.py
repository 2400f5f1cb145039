"""The bar: random secrets planted in the environment of a real `street-vision serve` and a real
`street-vision receiver`, referenced by the config; every API route (read from the OpenAPI schema,
so a new route is swept too) and the receiver driven with hostile input, including requests that
try to make the service expand ``${VAR}``; then every answer and every log line of both processes
is searched for the secrets. Nothing may turn up."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from .api_support import ADMIN, AS_ADMIN, READ, free_port, serve, terminate
from .conftest import ROOT, SAMPLE
from .dispatch_support import wait_for

TICKET_WAIT_S = 90  # the planted webhook must really deliver: a crowd ticket opens within seconds


def planted() -> dict[str, str]:
    """Fresh values each run, so a leak cannot hide behind a fixed string a test expects."""
    return {
        "SV_SWEEP_CAM_PW": f"campw-{secrets.token_hex(8)}",
        "SV_SWEEP_HOOK": f"hook-{secrets.token_hex(8)}",
        "SV_SWEEP_TOKEN": f"tok-{secrets.token_hex(8)}",
        "SV_SWEEP_UNRELATED": f"unrelated-{secrets.token_hex(8)}",  # referenced by no file
    }


def sweep_config(folder: Path, receiver_port: int) -> Path:
    text = f"""# sweep config
cameras:
  plaza:
    url: {SAMPLE}
    realtime: true
    loop: true
    detect_fps: 5
    zones:
      all:
        polygon: [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
        rules:
          crowd: {{enter_count: 1, min_duration: 0}}
  gate:
    url: rtsp://viewer:${{SV_SWEEP_CAM_PW}}@127.0.0.1:9/stream?token=${{SV_SWEEP_TOKEN}}&user=viewer
    detect_url: rtsp://viewer:${{SV_SWEEP_CAM_PW}}@127.0.0.1:9/sub?token=${{SV_SWEEP_TOKEN}}
    enabled: false
detector: {{classes: [person, bicycle]}}
dispatch:
  webhook_url: http://127.0.0.1:{receiver_port}/webhook?access_token=${{SV_SWEEP_TOKEN}}
  secret: ${{SV_SWEEP_HOOK}}
  timeout: 2
storage:
  data_dir: {folder / "data"}
"""
    path = folder / "sweep.yaml"
    path.write_text(text)
    return path


@contextmanager
def receiver_process(folder: Path, port: int, secret: str, env: dict[str, str]) -> Iterator[Path]:
    log = folder / "receiver.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vision.cli",
                "receiver",
                "--port",
                str(port),
                "--db",
                str(folder / "r.db"),
            ],
            cwd=ROOT,
            env={**os.environ, **env, "STREET_VISION_WEBHOOK_SECRET": secret},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/health"), "the receiver to answer", 60)
        yield log
    finally:
        terminate(process)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def hostile_zones(names: list[str]) -> list[str]:
    """Zone bodies as raw JSON text: ${VAR} in every string field, NaN, wrong types, crowd levels."""
    bodies = []
    square = [[0, 0], [1, 0], [1, 1], [0, 1]]
    for name in names:
        ref = f"${{{name}}}"
        for rules in (
            {"litter": {"exclude_classes": [ref]}},
            {"crowd": {"classes": [ref], "enter_count": ref}},
            {"fishing": {"classes": [ref]}},
            {"bike_parking": {"allowed_zones": [ref]}},
        ):
            bodies.append(json.dumps({"name": "sweep", "polygon": square, "rules": rules, "anchor": ref}))
        bodies.append(json.dumps({"name": ref, "polygon": [[ref, 0], [1, 0], [1, 1]]}))
    bodies.append(
        '{"name": "nan", "polygon": [[0, 0], [1, NaN], [1, 1]], "rules": {"crowd": {"window": Infinity}}}'
    )
    bodies.append(json.dumps({"name": "levels", "polygon": square, "rules": {"crowd": {"enter_count": 15}}}))
    bodies.append(json.dumps({"event_id": "${SV_SWEEP_TOKEN}"}))
    return bodies


def drive_api(url: str, names: list[str]) -> list[str]:
    """Every operation of the schema, with each hostile path value, query and body."""
    api = httpx.Client(base_url=url, timeout=10)
    schema = api.get("/openapi.json").json()
    refs = [f"${{{n}}}" for n in names]
    path_values = ["plaza", "gate", "all", "crossing", *refs, "..%2F..%2Fsweep.yaml"]
    texts = []
    for template, operations in schema["paths"].items():
        for method, operation in operations.items():
            params = [p for p in operation.get("parameters", []) if p["in"] == "path"]
            query = {p["name"]: refs[0] for p in operation.get("parameters", []) if p["in"] == "query"}
            query["token"] = refs[-1]
            bodies = hostile_zones(names) if "requestBody" in operation else [None]
            for value in path_values if params else [""]:
                path = template
                for p in params:
                    path = path.replace("{" + p["name"] + "}", value)
                for body in bodies:
                    for headers in (AS_ADMIN, {"Authorization": f"Bearer {refs[0]}"}):
                        answer = api.request(
                            method.upper(),
                            path,
                            params=query,
                            content=body,
                            headers={**headers, "content-type": "application/json"},
                        )
                        assert answer.status_code < 500, (method, path, body, answer.text)
                        texts.append(answer.text + json.dumps(dict(answer.headers)))
    return texts


def drive_receiver(url: str, names: list[str]) -> list[str]:
    receiver = httpx.Client(base_url=url, timeout=10)
    refs = [f"${{{n}}}" for n in names]
    now = str(int(time.time()))
    requests = [
        ({"X-Street-Vision-Timestamp": now, "X-Street-Vision-Signature": "v1=é".encode("latin-1")}, b"{}"),
        ({"X-Street-Vision-Timestamp": now, "X-Street-Vision-Signature": "v1=" + "0" * 64}, b"x" * 2_000_000),
        ({"X-Street-Vision-Timestamp": refs[0], "X-Street-Vision-Signature": refs[1]}, refs[2].encode()),
        ({}, json.dumps({"idempotency_key": refs[3]}).encode()),
    ]
    texts = []
    for headers, content in requests:
        answer = receiver.post("/webhook", headers={"Idempotency-Key": "e.1", **headers}, content=content)
        assert 400 <= answer.status_code < 500, answer.text
        texts.append(answer.text)
    for path in ("/tickets", *(f"/tickets/{r}" for r in refs), "/openapi.json", "/health"):
        answer = receiver.get(path, params={"token": refs[0]})
        assert answer.status_code < 500
        texts.append(answer.text)
    return texts


def test_no_planted_secret_in_any_answer_or_log_line(tmp_path: Path) -> None:
    env = planted()
    receiver_port = free_port()
    config = sweep_config(tmp_path, receiver_port)
    receiver_url = f"http://127.0.0.1:{receiver_port}"
    with receiver_process(tmp_path, receiver_port, env["SV_SWEEP_HOOK"], env) as receiver_log:
        with serve(config, env) as served:
            tickets = wait_for(
                lambda: httpx.get(f"{receiver_url}/tickets", timeout=5).json(),
                "a ticket delivered with the planted secret",
                TICKET_WAIT_S,
            )
            assert tickets[0]["type"] == "crowd"
            texts = drive_api(served.url, list(env))
            texts += drive_receiver(receiver_url, list(env))
            served.process.send_signal(signal.SIGTERM)
            served.process.wait(timeout=30)
        assert served.process.returncode == 0
    logs = served.log.read_text() + receiver_log.read_text()
    assert "GET /api/events?" in logs and "token=***" in logs  # the access logs were written, redacted
    written = config.read_text()
    assert "${SV_SWEEP_CAM_PW}" in written and "${SV_SWEEP_HOOK}" in written
    for name, value in {**env, "STREET_VISION_API_TOKEN": READ, "STREET_VISION_ADMIN_TOKEN": ADMIN}.items():
        for text in (*texts, logs, written):
            assert value not in text, f"{name} leaked"
