"""Several dispatch targets: bad target configs are named clearly; routes pick targets by event type, camera
group and the event's own hour; each target has its own outbox order and dead letter, so one that is down
never holds back another; a store from before targets keeps its messages as the `webhook` target's."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from vision.config import ConfigError, DispatchConfig, StorageConfig, parse_config
from vision.dispatch.dispatcher import Dispatcher
from vision.dispatch.routing import Router
from vision.dispatch.targets import TargetConfig
from vision.events.lifecycle import Timers
from vision.store import migrations, open_store
from vision.types import Transition

from .conftest import cli
from .dispatch_support import SECRET, F, Receiver, Refusal, Sender, T, steady, wait_for
from .test_store import EVENT as STORE_EVENT

CAMERA = (
    "cameras:\n  riverbank:\n    url: river.mp4\n    group: riverside\n    zones:\n      bank:\n"
    "        polygon: [[0, 0], [1, 0], [1, 1]]\n        rules: {fishing: {}}\n"
)
TIMERS = Timers(min_duration=1.0, close_after=2.0, update_interval=1.0, reopen_window=10.0)
FAST = {"timeout": 2.0, "max_attempts": 50, "backoff_initial": 0.05, "backoff_max": 0.2}


def problems(dispatch: str, cameras: str = CAMERA) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(cameras + dispatch, "t.yaml", {"SV_KEY": "k-1"})
    return info.value.problems


@pytest.mark.parametrize(
    ("dispatch", "expected"),
    [
        (
            "dispatch:\n  targets:\n    duty: {kind: webhook, url: 'http://127.0.0.1:9/h'}\n",
            "dispatch.targets.duty.secret: required for a webhook target: every request is signed with it "
            "(line 11)",
        ),
        (
            "dispatch:\n  targets:\n    city: {kind: open311, url: 'http://127.0.0.1:9/v2'}\n",
            "dispatch.targets.city.service_codes: required for an open311 target (event type: service_code) "
            "(line 11)",
        ),
        (
            "dispatch:\n  targets:\n    city:\n      kind: open311\n      url: http://127.0.0.1:9/v2\n"
            "      service_codes: {litter: SAN-7}\n      route: {types: [litter, fishing]}\n",
            "dispatch.targets.city.route.types: fishing has no entry in service_codes (line 15)",
        ),
        (
            "dispatch:\n  targets:\n    duty: {kind: webhook, url: 'http://127.0.0.1:9/h', secret: s, "
            "api_key: '${SV_KEY}'}\n",
            "dispatch.targets.duty.api_key: not used by a webhook target (line 11)",
        ),
        (
            "dispatch:\n  targets:\n    duty: {kind: mail, url: 'http://127.0.0.1:9/h', secret: s}\n",
            "dispatch.targets.duty.kind: Input should be 'webhook' or 'open311' (line 11)",
        ),
        (
            "dispatch:\n  targets:\n    duty: {kind: webhook, url: 'ftp://x', secret: s}\n",
            "dispatch.targets.duty.url: must be an http:// or https:// URL (line 11)",
        ),
        (
            "dispatch:\n  targets:\n    duty:\n      kind: webhook\n      url: http://127.0.0.1:9/h\n"
            "      secret: s\n      route: {hours: ['7-19']}\n",
            "dispatch.targets.duty.route.hours: '7-19' is not a span of hours: use 'HH:MM-HH:MM', e.g. "
            "'07:00-19:00' (line 15)",
        ),
        (
            "dispatch:\n  targets:\n    duty:\n      kind: webhook\n      url: http://127.0.0.1:9/h\n"
            "      secret: s\n      route: {timezone: Mars/Olympus}\n",
            "dispatch.targets.duty.route.timezone: 'Mars/Olympus' is not a known IANA time zone (e.g. "
            "Europe/Berlin, UTC) (line 15)",
        ),
        (
            "dispatch:\n  targets:\n    duty:\n      kind: webhook\n      url: http://127.0.0.1:9/h\n"
            "      secret: s\n      route: {groups: [riversid]}\n",
            "dispatch.targets.duty.route.groups: no camera has group riversid (line 15)",
        ),
        (
            "dispatch:\n  targets:\n    city:\n      kind: open311\n      url: http://127.0.0.1:9/v2\n"
            "      service_codes: {fishing: F-1}\n",
            "cameras.riverbank: location: needed by dispatch.targets.city (open311 places every request): "
            "zone(s) bank have none; set the camera's or each zone's location (line 2)",
        ),
        (
            "dispatch:\n  webhook_url: http://127.0.0.1:9/h\n  secret: s\n  targets:\n"
            "    webhook: {kind: webhook, url: 'http://127.0.0.1:9/x', secret: s}\n",
            "dispatch.targets.webhook: the name is taken by webhook_url; rename the target or move "
            "webhook_url into it (line 13)",
        ),
        (
            "dispatch:\n  targets:\n    city:\n      kind: open311\n      url: http://127.0.0.1:9/v2\n"
            "      service_codes: {fishing: '${SV_KEY}'}\n",
            "dispatch.targets.city.service_codes.fishing: environment references (${...}) are only allowed "
            "in cameras.<id>.url, cameras.<id>.detect_url, dispatch.webhook_url, dispatch.secret, "
            "dispatch.targets.<id>.url, "
            "dispatch.targets.<id>.secret, dispatch.targets.<id>.api_key, storage.data_dir, storage.url "
            "(line 14)",
        ),
    ],
)
def test_bad_target_configs_are_named_with_their_key(dispatch: str, expected: str) -> None:
    found = problems(dispatch)
    assert any(p.startswith(expected) for p in found), found
    assert "k-1" not in str(found)


def test_a_good_target_config_takes_env_references_in_its_secrets() -> None:
    text = (
        CAMERA.replace(
            "    group: riverside\n", "    group: riverside\n    location: {lat: 52.52, long: 13.4}\n"
        )
        + "dispatch:\n  targets:\n    city:\n      kind: open311\n      url: http://127.0.0.1:9/v2\n"
        "      api_key: ${SV_KEY}\n      service_codes: {fishing: F-1}\n      route: {groups: [riverside]}\n"
    )
    config = parse_config(text, "t.yaml", {"SV_KEY": "k-1"})
    (city,) = config.dispatch.all_targets().values()
    assert city.api_key is not None and city.api_key.get_secret_value() == "k-1"
    assert "k-1" not in repr(config.dispatch)


EVENT = {**STORE_EVENT, "type": "litter", "camera": "plaza"}


def webhook(route: dict[str, Any]) -> TargetConfig:
    return TargetConfig(kind="webhook", url="http://127.0.0.1:9/h", secret=SecretStr("s"), route=route)


def test_routes_pick_targets_by_type_group_and_the_events_own_hour(storage: StorageConfig) -> None:
    router = Router(
        {
            "sanitation": webhook({"types": ["litter"]}),
            "duty": webhook({"types": ["crowd"], "groups": ["centre"]}),
            # the night desk in Berlin: 22:00 to 06:00 local, which is 21:00 to 05:00 UTC in winter
            "night": webhook({"hours": ["22:00-06:00"], "timezone": "Europe/Berlin"}),
        },
        {"plaza": "centre", "bank": None},
    )
    store = open_store(storage, dispatch=router)
    day, night = "2026-01-15T12:00:00.000Z", "2026-01-15T21:30:00.000Z"
    cases = [
        ("litter-day", "litter", "plaza", day),
        ("crowd-plaza-night", "crowd", "plaza", night),
        ("crowd-bank-day", "crowd", "bank", day),  # no group: not the duty officer's
    ]
    for event_id, kind, camera, wall in cases:
        event = {**EVENT, "event_id": event_id, "type": kind, "camera": camera}
        store.record([(Transition("open", 1.0, event), {"transition": "open", "wall_time": wall})])
    # the crowd at the plaza closes at 06:30 Berlin time: its close still goes where its open went
    closed = {**EVENT, "event_id": "crowd-plaza-night", "type": "crowd", "state": "resolved"}
    store.record(
        [(Transition("close", 9.0, closed), {"transition": "close", "wall_time": "2026-01-16T05:30:00Z"})]
    )
    rows = store.sql.execute("SELECT event_id, target, event_seq FROM outbox ORDER BY id").fetchall()
    assert rows == [
        ("litter-day", "sanitation", 1),
        ("crowd-plaza-night", "duty", 1),
        ("crowd-plaza-night", "night", 1),
        ("crowd-plaza-night", "duty", 2),
        ("crowd-plaza-night", "night", 2),
    ]
    listing = store.outbox_listing()
    assert [(m["target"], m["transition"]) for m in listing][-2:] == [("duty", "close"), ("night", "close")]
    assert store.outbox_counts("night").pending == 2 and store.outbox_counts().pending == 5
    store.close()


def test_a_store_from_before_targets_keeps_its_messages_as_the_webhook_targets(
    storage: StorageConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the schema of a release from before targets (step 4); today's record() also needs step 5's columns,
    # which leave the outbox alone
    monkeypatch.setattr(migrations, "STEPS", tuple(s for s in migrations.STEPS if s.version != 4))
    old = open_store(storage)
    old.record([(Transition("open", 1.0, EVENT), {"transition": "open"})])
    old.record([(Transition("update", 2.0, {**EVENT, "count": 3}), {"transition": "update"})])
    for seq, (number, status) in enumerate([(1, "delivered"), (2, "pending")], start=1):
        old.sql.execute(
            "INSERT INTO outbox (seq, event_id, event_seq, status) VALUES (?, 'e1', ?, ?)",
            (seq, number, status),
        )
    old.sql.execute("INSERT INTO remote_tickets (event_id, ticket_id) VALUES ('e1', 'T-9')")
    old.close()
    monkeypatch.undo()
    store = open_store(storage, dispatch=True)
    assert (4,) in store.sql.execute("SELECT version FROM schema_version").fetchall()
    message = store.next_due(1e12)
    assert message is not None and (message.target, message.key, message.ticket_id) == (
        "webhook",
        "e1.2",
        "T-9",
    )
    store.record([(Transition("close", 3.0, {**EVENT, "state": "resolved"}), {"transition": "close"})])
    rows = store.sql.execute("SELECT target, event_seq, status FROM outbox ORDER BY id").fetchall()
    assert rows == [("webhook", 1, "delivered"), ("webhook", 2, "pending"), ("webhook", 3, "pending")]
    store.close()


def test_a_target_that_is_down_holds_back_only_its_own_messages(tmp_path: Path) -> None:
    up = Receiver(tmp_path / "up.sqlite").start()
    down = Receiver(tmp_path / "down.sqlite")  # bound, not listening: connections are refused
    targets = {
        "duty": TargetConfig(kind="webhook", url=up.url, secret=SecretStr(SECRET), **FAST),
        "archive": TargetConfig(kind="webhook", url=down.url, secret=SecretStr(SECRET), **FAST),
    }
    sender = Sender(tmp_path / "data", TIMERS, router=Router(targets, {}))
    dispatcher = Dispatcher(sender.store.another, DispatchConfig(targets=targets))
    dispatcher.start()
    try:
        assert sender.feed(steady(0, 2, T) + steady(2.5, 4, T, 12) + steady(4.5, 7, F, 0)) == [
            "open",
            "update",
            "close",
        ]
        dispatcher.notify()
        wait_for(lambda: len(up.history()) == 3, "the duty officer's webhook to get all three")
        wait_for(lambda: sender.store.outbox_counts("archive").to_record()["pending"] == 3, "archive pending")
        tried = sender.store.sql.execute(
            "SELECT MIN(attempts) FROM outbox WHERE target = 'archive' AND event_seq = 1"
        )
        assert tried.fetchone()[0] >= 1  # it was tried, and failed, meanwhile
        assert [t[3] for t in up.history()] == ["open", "update", "close"]
        # the archive refuses this event for good: dead-lettered there, and only there
        event_id = up.history()[0][1]
        down.faults.refuse[event_id] = Refusal(422, '{"detail": "unknown camera"}')
        down.start()
        wait_for(lambda: sender.store.outbox_counts("archive").dead == 1, "the archive's dead letter")
        # the receiver has the close before its answer is back and recorded: wait for the record
        delivered = {"delivered": 3, "pending": 0, "blocked": 0, "dead": 0}
        wait_for(lambda: sender.store.outbox_counts("duty").to_record() == delivered, "duty's three recorded")
        assert sender.store.outbox_counts("archive").blocked == 2
        assert dispatcher.dead_letters == {"permanent": 1}
        down.faults.refuse.clear()
        assert sender.store.resend(target="duty") == 0 and sender.store.resend(target="archive") == 1
        dispatcher.notify()
        wait_for(lambda: sender.store.outbox_counts("archive").delivered == 3, "the archive to catch up")
        assert [t[2:4] for t in down.history()] == [(1, "open"), (2, "update"), (3, "close")]
        keys = {m.rpartition(".")[2] for m in down.faults.seen} | {
            m.rpartition(".")[2] for m in up.faults.seen
        }
        assert keys == {"1", "2", "3"}  # the same idempotency keys at each target, numbered per target
    finally:
        dispatcher.stop()
        sender.store.close()
        up.stop()
        down.stop()


def test_outbox_commands_show_and_narrow_by_target(tmp_path: Path) -> None:
    receiver = Receiver(tmp_path / "r.sqlite")  # down
    targets = {"duty": TargetConfig(kind="webhook", url=receiver.url, secret=SecretStr(SECRET), **FAST)}
    sender = Sender(tmp_path / "data", TIMERS, router=Router(targets, {}))
    sender.feed(steady(0, 2, T))
    sender.store.close()
    config = tmp_path / "c.yaml"
    config.write_text(
        f"cameras: {{cam: {{url: x.mp4}}}}\nstorage: {{data_dir: {tmp_path / 'data'}}}\n"
        f"dispatch:\n  targets:\n    duty: {{kind: webhook, url: '{receiver.url}', secret: {SECRET}}}\n"
    )
    listed = cli("outbox", "list", config, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert " duty " in listed.stdout.splitlines()[0] and " open " in listed.stdout.splitlines()[0]
    wrong = cli("outbox", "resend", config, "--target", "dutty", timeout=60)
    assert wrong.returncode == 2 and "no dispatch target 'dutty' (targets: duty)" in wrong.stderr
    receiver.stop()


def test_a_span_includes_its_start_not_its_end_and_a_recording_is_routed_by_its_commit_time() -> None:
    router = Router({"night": webhook({"hours": ["22:00-06:00"], "timezone": "Europe/Berlin"})}, {})
    at = {  # Berlin is UTC+1 in January
        "2026-01-15T21:00:00Z": ["night"],  # 22:00 local: the start is inside
        "2026-01-16T04:59:59Z": ["night"],
        "2026-01-16T05:00:00Z": [],  # 06:00 local: the end is not
        "2026-01-15T20:59:59Z": [],
    }
    for wall, expected in at.items():
        assert router.targets(EVENT, {"wall_time": wall}) == expected, wall
    # no wall_time (a file read as fast as possible): the moment of the commit decides
    committed = datetime(2026, 1, 15, 23, 0, tzinfo=UTC).timestamp()
    assert router.targets(EVENT, {}, now=committed) == ["night"]
    assert router.targets(EVENT, {}, now=committed + 12 * 3600) == []
