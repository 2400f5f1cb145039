"""The webhook contract in docs/ matches the code: the schema is generated, the examples validate."""

from __future__ import annotations

import json
import re
import time

import jsonschema
import pytest

from vision.dispatch.signing import signed_headers

from .conftest import ROOT
from .dispatch_support import SCHEMA, validate
from .test_docs import generator


def test_payload_schema_is_current_and_valid() -> None:
    committed = (ROOT / "docs" / "webhook-payload.schema.json").read_text()
    assert committed == generator("make_webhook_schema").render(), "run: python docs/make_webhook_schema.py"
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


def test_the_documented_verification_recipe_accepts_our_signature_only() -> None:
    text = (ROOT / "docs" / "webhook.md").read_text()
    (recipe,) = re.findall(r"```python\n(.*?)```", text, re.S)
    namespace: dict = {}
    exec(recipe, namespace)
    authentic = namespace["authentic"]
    raw = json.dumps(examples()[0]).encode()
    now = time.time()
    assert authentic("k3y", signed_headers("k3y", raw, "e.1", now), raw)
    assert not authentic("other", signed_headers("k3y", raw, "e.1", now), raw)
    assert not authentic("k3y", signed_headers("k3y", raw, "e.1", now), raw + b" ")
    assert not authentic("k3y", signed_headers("k3y", raw, "e.1", now - 3600), raw)
