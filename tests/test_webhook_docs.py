"""The webhook contract in docs/ matches the code: the schema is generated, the examples validate."""

from __future__ import annotations

import importlib.util
import json
import re

import jsonschema
import pytest

from .conftest import ROOT
from .dispatch_support import SCHEMA, validate


def test_payload_schema_is_current_and_valid() -> None:
    spec = importlib.util.spec_from_file_location("make_schema", ROOT / "docs" / "make_webhook_schema.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "docs" / "webhook-payload.schema.json").read_text()
    assert committed == module.render(), "run: python docs/make_webhook_schema.py"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def examples() -> list[dict]:
    text = (ROOT / "docs" / "webhook.md").read_text()
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S)]


def test_every_documented_transition_has_a_valid_example() -> None:
    found = examples()
    assert [e["transition"] for e in found] == ["open", "update", "close", "reopen"]
    for example in found:
        validate(example)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda e: e.update(transition="opened"), "'opened' is not one of"),
        (lambda e: e.update(sequence=0), "less than the minimum"),
        (lambda e: e["event"].pop("event_id"), "'event_id' is a required property"),
        (lambda e: e.update(secret="x"), "Additional properties are not allowed"),
        (lambda e: e["boxes"][0].update(box=[1, 2, 3]), "is too short"),
    ],
)
def test_schema_rejects_what_the_contract_forbids(change, why: str) -> None:
    example = examples()[0]
    change(example)
    with pytest.raises(jsonschema.ValidationError, match=re.escape(why)):
        validate(example)
