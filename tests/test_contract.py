"""Every event type reaches a ticketing system: each sample clip runs through the real pipeline and the
real dispatcher to the real reference receiver over loopback; every body the receiver stored validates
against the committed JSON Schema, and nothing is dead-lettered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vision.evaluate.truth import load_truth
from vision.runtime import Runtime

from .conftest import ROOT
from .dispatch_support import Receiver, dispatch_config, validate

CLIPS = ROOT / "sample_videos"


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    server = Receiver(tmp_path / "receiver.sqlite").start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("clip", "types"),
    [("litter", {"litter"}), ("bike_parking", {"bike_parking"}), ("plaza", {"crowd", "fishing"})],
)
def test_each_rule_types_tickets_are_accepted_by_the_receiver(
    clip: str, types: set[str], tmp_path: Path, receiver: Receiver
) -> None:
    truth = load_truth(CLIPS / f"{clip}.truth.yaml")
    config = truth.to_config(clip, tmp_path / "data")
    config = config.model_copy(update={"dispatch": dispatch_config(receiver.url)})
    runtime = Runtime.build(config, CLIPS / f"{clip}.truth.yaml")
    assert runtime.dispatcher is not None
    runtime.dispatcher.start()
    try:
        runtime.pipeline.run()
        counts = runtime.dispatcher.drain(30.0)
        messages = runtime.store.outbox_listing(include_delivered=True)
    finally:
        runtime.close()
    assert counts.dead == 0 and counts.pending == 0, messages
    bodies = receiver.bodies()
    assert len(bodies) == len(messages) > 0
    for body in bodies:
        validate(body)
    seen = {(b["event"]["type"], b["transition"]) for b in bodies}
    for kind in types:
        assert (kind, "open") in seen and (kind, "close") in seen, seen
    tickets = {(b["event"]["type"], b["event"]["event_id"]) for b in bodies}
    if clip != "plaza":  # one object, one ticket (the plaza has people lingering by the sign)
        assert len(tickets) == 1, tickets
    closes = [b for b in bodies if b["transition"] == "close"]
    assert {b["event"]["close_reason"] for b in closes} == {"resolved"}
    if clip == "litter":  # the blob is described as what it is, not with a fake class
        sources = {box["source"] for b in bodies for box in b["boxes"]}
        assert "static_object" in sources
        blob = next(box for b in bodies for box in b["boxes"] if box["source"] == "static_object")
        assert blob["class_id"] is None and blob["label"] == "static object" and blob["area_px"] > 0
