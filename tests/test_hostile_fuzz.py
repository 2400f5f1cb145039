"""Hostile input generated from the config models (Hypothesis, deterministic): YAML files and zone
bodies with wrong types, NaN and Infinity, huge numbers, unknown keys and ``${ENV}`` references in
every field. Whatever comes in, the answer is a Config, a ConfigError or a 4xx, never a traceback
or a 5xx, the CLI stays inside its memory limit, and no environment value set here shows up in any
answer, message or log line. Beside tests/test_api_fuzz.py, which fuzzes the OpenAPI schema."""

from __future__ import annotations

import json
import logging
import math
import os
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, SecretStr

from vision.config import Config, ConfigError, ZoneConfig, parse_config
from vision.secrets import SecretUrl

from .api_support import AS_ADMIN, AS_READER, fuzz_settings, in_process, write_config
from .test_config_limits import check

SECRET = "fuzz-secret-5a3c9e17"  # set in the environment of every parse and request below
ENV = {"SV_FUZZ_SECRET": SECRET}
REF = "${SV_FUZZ_SECRET}"
FUZZ = fuzz_settings(60)
HOSTILE = st.sampled_from(
    [math.nan, math.inf, -math.inf, REF, f"x{REF}y", 10**30, -1, 0, "", [], {}, None, True, "é" * 40]
)
URLS = st.sampled_from(  # where a file may put a secret: a password or a secret query parameter
    [f"rtsp://admin:{REF}@127.0.0.1:9/live", f"http://127.0.0.1:9/mjpg?user=a&password={REF}", "a.mp4"]
)
HOOKS = st.sampled_from([f"http://127.0.0.1:9/hook?token={REF}", "http://127.0.0.1:9/hook"])
HOSTILE_ONE_IN = 25
# True about once in HOSTILE_ONE_IN draws (Hypothesis favours the ends of a range, not the middle)
RARELY = st.sampled_from([i == HOSTILE_ONE_IN // 2 for i in range(HOSTILE_ONE_IN)])
NAMES = st.sampled_from(["c", "z", "bank", "door", "bad name", REF, "x" * 70])


def typed(annotation: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of the type a field declares (built from the model, so new fields are fuzzed too)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return typed(args[0], depth)
    if origin in (typing.Union, __import__("types").UnionType):
        return st.one_of([typed(a, depth) for a in args])
    if origin is typing.Literal:
        return st.sampled_from(args)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_values(annotation, depth + 1)
    if origin is dict:
        return st.dictionaries(NAMES, field_values(args[1], depth + 1), max_size=2)
    if origin is list:
        return st.lists(field_values(args[0], depth + 1), max_size=4)
    if origin is tuple:
        return st.tuples(*[field_values(a, depth + 1) for a in args if a is not Ellipsis]).map(list)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        bool: st.booleans(),
        int: st.integers(-5, 10**6),
        float: st.floats(-10, 1e6, allow_nan=False),
        str: st.sampled_from(["person", "bicycle", "bottle", "center", "x"]),
        SecretUrl: URLS,
        SecretStr: st.sampled_from([REF, "plain-key"]),
        Path: st.sampled_from(["data", "/tmp/sv-fuzz-data"]),
        type(None): st.none(),
    }
    return simple.get(annotation, st.none())


def field_values(annotation: Any, depth: int) -> st.SearchStrategy[Any]:
    if depth > 6:
        return HOSTILE
    if not depth:
        return typed(annotation, depth)
    good = typed(annotation, depth)  # mostly the declared type, so validation gets past the first field
    return RARELY.flatmap(lambda hostile: HOSTILE if hostile else good)


def model_values(model: type[BaseModel], depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    fields = {
        name: (HOOKS if name == "webhook_url" else field_values(field.annotation, depth))
        for name, field in model.model_fields.items()
    }
    required = {n: s for n, s in fields.items() if model.model_fields[n].is_required()}
    optional = {n: s for n, s in fields.items() if n not in required}
    extra = RARELY.map(lambda hostile: {"colour": 1} if hostile else {})
    return st.tuples(st.fixed_dictionaries(required, optional=optional), extra).map(
        lambda p: {**p[0], **p[1]}
    )


def shows_no_secret(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text


@FUZZ
@given(data=model_values(Config))
def test_generated_config_files_load_or_fail_cleanly(data: dict[str, Any]) -> None:
    text = yaml.safe_dump(data, allow_unicode=True)
    try:
        config = parse_config(text, "fuzz.yaml", ENV)
    except ConfigError as exc:
        assert exc.problems and all("\n" not in p for p in exc.problems)
        shows_no_secret(str(exc))
    else:
        shows_no_secret(config.model_dump_json(), repr(config), str(config.model_dump()))


@settings(FUZZ, max_examples=4)
@given(
    data=model_values(Config),
    bomb=st.sampled_from(["alias", "depth", "points"]),
    size=st.integers(10, 40),
)
def test_generated_files_with_a_bomb_are_exit_2_within_memory(
    tmp_path_factory: pytest.TempPathFactory, data: dict[str, Any], bomb: str, size: int
) -> None:
    text = (
        yaml.safe_dump(data, allow_unicode=True)
        + {
            "alias": "x: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\n"
            + "".join(
                f"x{i}: &a{i} [{', '.join(['*a' if i == 0 else f'*a{i - 1}'] * 9)}]\n" for i in range(size)
            ),
            "depth": "x: " + "[" * size * 1000 + "]" * size * 1000 + "\n",
            # at least 120,000 points: past the values cap (a point is 3 values) or the file-size cap
            "points": "y: [" + ",".join(["[0.5,0.5]"] * size * 12000) + "]\n",
        }[bomb]
    )
    path = tmp_path_factory.mktemp("bomb") / "bomb.yaml"
    path.write_text(text)
    done = check(path, ENV)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "MAX_" in done.stderr
    shows_no_secret(done.stdout, done.stderr)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[tuple[TestClient, Path]]:
    config = write_config(tmp_path_factory.mktemp("fuzz"))
    os.environ.update(ENV)
    try:
        with in_process(config) as running, TestClient(running.app) as test_client:  # type: ignore[arg-type]
            yield test_client, config
    finally:
        os.environ.pop("SV_FUZZ_SECRET", None)


@FUZZ
@given(zone=model_values(ZoneConfig), name=NAMES)
def test_generated_zone_bodies_get_2xx_or_4xx_and_show_no_secret(
    client: tuple[TestClient, Path], caplog: pytest.LogCaptureFixture, zone: dict[str, Any], name: str
) -> None:
    api, config = client
    headers = {**AS_ADMIN, "content-type": "application/json"}
    with caplog.at_level(logging.DEBUG):
        body = json.dumps({**zone, "name": name})  # NaN and Infinity go out as the bare tokens
        created = api.post("/api/cameras/plaza/zones", headers=headers, content=body)
        replaced = api.put("/api/cameras/plaza/zones/crossing", headers=headers, content=json.dumps(zone))
        listed = api.get("/api/cameras/plaza/zones", headers=AS_READER)
    for answer in (created, replaced, listed):
        assert answer.status_code < 500, answer.text
        shows_no_secret(answer.text)
    shows_no_secret(caplog.text, config.read_text())
    if created.status_code == 201:
        assert api.delete(f"/api/cameras/plaza/zones/{name}", headers=AS_ADMIN).status_code == 204
