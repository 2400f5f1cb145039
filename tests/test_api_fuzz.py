"""Fuzz every operation of the OpenAPI schema (schemathesis, a few examples each): whatever the
input, the API answers 2xx or a 4xx, never a 5xx. Runs against the real app over a live runtime."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from .api_support import AS_ADMIN, in_process, write_config  # noqa: E402


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    config: Path = write_config(tmp_path_factory.mktemp("fuzz"))
    with in_process(config) as running:
        yield schemathesis.openapi.from_asgi("/openapi.json", running.app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_input_makes_a_server_error(case) -> None:
    case.call_and_validate(headers=AS_ADMIN, checks=[not_a_server_error])
