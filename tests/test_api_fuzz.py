"""Fuzz every operation of the OpenAPI schema (schemathesis, a few examples each): whatever the
input, the API answers 2xx or a 4xx, never a 5xx. Runs against the real app over a live runtime.

Operations are driven through schemathesis' Python API and Hypothesis directly, not its
pytest plugin, which depends on pytest internals that change between pytest releases."""

from __future__ import annotations

from pathlib import Path

from .conftest import package

schemathesis = package("schemathesis")
from hypothesis import given  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from .api_support import AS_ADMIN, fuzz_settings, in_process, write_config  # noqa: E402

FUZZ = fuzz_settings(6)


def test_no_input_makes_a_server_error(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with in_process(config) as running:
        schema = schemathesis.openapi.from_asgi("/openapi.json", running.app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 10  # every resource is in the schema
        for operation in operations:

            @FUZZ
            @given(case=operation.as_strategy())
            def fuzz(case: schemathesis.Case) -> None:
                case.call_and_validate(headers=AS_ADMIN, checks=[not_a_server_error])

            fuzz()
