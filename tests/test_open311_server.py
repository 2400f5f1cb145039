"""The GeoReport v2 test server speaks the spec over real HTTP: its fields, its checks, its error form,
deferred ids (tokens), and the staff's close by `street-vision open311-server --close`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from vision.dispatch.signing import API_KEY_ENV

from .conftest import cli
from .open311_support import API_KEY, Open311Server

PLACE = {"lat": "52.5200066", "long": "13.4049540"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Open311Server]:
    running = Open311Server(tmp_path / "open311.sqlite").start()
    yield running
    running.stop()


def post(server: Open311Server, **fields: str) -> httpx.Response:
    return httpx.post(f"{server.url}/requests.json", data=fields, timeout=10)


def test_requests_are_checked_filed_read_and_closed_as_the_spec_says(
    server: Open311Server, tmp_path: Path
) -> None:
    services = httpx.get(f"{server.url}/services.json").json()
    assert [s["service_code"] for s in services] == ["SAN-7", "BIKE-2"]
    assert all(s["metadata"] is False and s["type"] == "realtime" for s in services)
    good = {"api_key": API_KEY, "service_code": "SAN-7", **PLACE}
    refusals = [
        ({**good, "api_key": "wrong"}, 403, "api_key is missing or not valid"),
        ({k: v for k, v in good.items() if k != "api_key"}, 403, "api_key is missing or not valid"),
        ({k: v for k, v in good.items() if k != "service_code"}, 400, "service_code was not provided"),
        ({**good, "service_code": "NOPE"}, 404, "service_code 'NOPE' not found"),
        (
            {k: v for k, v in good.items() if k != "long"},
            400,
            "lat & long, address_string, or address_id required",
        ),
        ({**good, "lat": "north"}, 400, "lat must be a number in decimal degrees"),
        ({**good, "long": "200"}, 400, "long must be between -180 and 180"),
    ]
    for fields, status, description in refusals:
        answer = post(server, **fields)
        assert (answer.status_code, answer.json()) == (status, [{"code": status, "description": description}])
    as_json = httpx.post(f"{server.url}/requests.json", json=good)
    assert as_json.status_code == 400 and "x-www-form-urlencoded" in as_json.json()[0]["description"]
    assert server.all() == []  # nothing refused was kept
    filed = post(server, **good, description="litter in zone walkway", **{"attribute[event_id]": "e-42"})
    assert filed.status_code == 201
    (receipt,) = filed.json()
    request_id = receipt["service_request_id"]
    (request,) = httpx.get(f"{server.url}/requests/{request_id}.json").json()
    assert (request["status"], request["service_code"], request["lat"], request["long"]) == (
        "open",
        "SAN-7",
        52.5200066,
        13.404954,
    )
    assert request["service_name"] == "Litter and dumped rubbish" and request["status_notes"] is None
    assert server.all()[0]["attributes"] == '{"event_id": "e-42"}'
    missing = httpx.get(f"{server.url}/requests/999.json")
    assert (missing.status_code, missing.json()[0]["code"]) == (404, 404)
    # the city's staff close it, with notes, from the command line while the server runs
    db = tmp_path / "open311.sqlite"
    done = cli("open311-server", "--db", db, "--close", request_id, "--notes", "swept by crew 4", timeout=60)
    assert done.returncode == 0, done.stderr
    (request,) = httpx.get(f"{server.url}/requests/{request_id}.json").json()
    assert (request["status"], request["status_notes"]) == ("closed", "swept by crew 4")
    assert [
        r["service_request_id"] for r in httpx.get(f"{server.url}/requests.json?status=closed").json()
    ] == [request_id]
    unknown = cli("open311-server", "--db", db, "--close", "999", timeout=60)
    assert unknown.returncode == 2 and "no service request 999" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_deferred_ids_come_from_the_token(tmp_path: Path) -> None:
    server = Open311Server(tmp_path / "open311.sqlite", tokens=True).start()
    try:
        (receipt,) = post(server, api_key=API_KEY, service_code="BIKE-2", **PLACE).json()
        assert "service_request_id" not in receipt
        (found,) = httpx.get(f"{server.url}/tokens/{receipt['token']}.json").json()
        assert found["token"] == receipt["token"] and found["service_request_id"] == "1"
        assert httpx.get(f"{server.url}/tokens/nope.json").status_code == 404
    finally:
        server.stop()


def test_the_server_command_needs_its_api_key_from_the_environment(tmp_path: Path) -> None:
    saved = os.environ.pop(API_KEY_ENV, None)
    try:
        done = cli("open311-server", "--db", tmp_path / "o.sqlite", "--port", "0", timeout=60)
    finally:
        if saved is not None:
            os.environ[API_KEY_ENV] = saved
    assert done.returncode == 2 and f"{API_KEY_ENV} is not set" in done.stderr
