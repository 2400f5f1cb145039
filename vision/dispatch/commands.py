"""``street-vision outbox list|resend|drain``, ``receiver``, ``open311-server``; the run's dispatch report.

User mistakes raise :class:`ConfigError` so the CLI prints one line and exits 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from contextlib import ExitStack
from pathlib import Path

from vision.config import Config, ConfigError, load_config
from vision.dispatch import outbox
from vision.dispatch.dispatcher import Dispatcher
from vision.dispatch.signing import API_KEY_ENV, SECRET_ENV
from vision.store import EventStore, open_store
from vision.store.lease import hold

log = logging.getLogger(__name__)


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the dispatch commands on the CLI's subcommand parser."""
    p = sub.add_parser("outbox", help="inspect, re-send and deliver the messages to dispatch targets")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("list", help="messages not yet delivered (dead, blocked, pending)")
    a.add_argument("config", type=Path)
    a.add_argument("--all", action="store_true", help="include delivered messages")
    a.add_argument("--json", action="store_true", help="one JSON object per message")
    a.set_defaults(func=cmd_outbox_list)
    a = actions.add_parser("resend", help="put dead-lettered messages back in line")
    a.add_argument("config", type=Path)
    a.add_argument("--event", help="only this event id")
    a.add_argument("--target", help="only messages to this dispatch target")
    a.set_defaults(func=cmd_outbox_resend)
    a = actions.add_parser("drain", help="deliver what is pending, then exit (0 when all delivered)")
    a.add_argument("config", type=Path)
    a.add_argument("--seconds", type=float, default=60.0, help="give up after this long (default 60)")
    a.add_argument(
        "--now", action="store_true", help="retry pending messages now instead of waiting out their backoff"
    )
    a.set_defaults(func=cmd_outbox_drain)

    env = os.environ.get
    p = sub.add_parser(
        "receiver",
        help="run the reference ticket receiver",
        description=f"The reference ticket receiver. The shared secret is read from {SECRET_ENV} only.",
    )
    p.add_argument("--host", default=env("STREET_VISION_RECEIVER_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(env("STREET_VISION_RECEIVER_PORT", "8787")))
    p.add_argument("--db", type=Path, default=Path(env("STREET_VISION_RECEIVER_DB", "receiver.sqlite")))
    p.add_argument(
        "--tolerance",
        type=float,
        default=float(env("STREET_VISION_RECEIVER_TOLERANCE", "300")),
        help="refuse requests whose timestamp is further than this from now, seconds (default 300)",
    )
    p.set_defaults(func=cmd_receiver)

    p = sub.add_parser(
        "open311-server",
        help="run a small GeoReport v2 (Open311) server, or close or note one of its requests",
        description=f"A GeoReport v2 server for tests and demos; the api_key is read from {API_KEY_ENV} "
        "only. With --close or --note it changes one request in --db (the server may run), then exits.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8311)
    p.add_argument("--db", type=Path, default=Path("open311.sqlite"))
    p.add_argument("--prefix", default="/open311/v2", help="base path of the endpoint (default /open311/v2)")
    p.add_argument("--tokens", action="store_true", help="answer new requests with a token (deferred ids)")
    change = p.add_mutually_exclusive_group()
    change.add_argument("--close", type=int, metavar="ID", help="close this request (the city fixed it)")
    change.add_argument("--note", type=int, metavar="ID", help="add status notes to this open request")
    p.add_argument("--notes", help="the status_notes to set with --close or --note")
    p.set_defaults(func=cmd_open311_server)


def open_outbox(config: Config) -> EventStore:
    """The store of ``config``, which must exist: the outbox lives in it."""
    return open_store(config.storage, run=False)


def describe(counts: outbox.Counts) -> str:
    text = f"{counts.delivered} delivered, {counts.pending} pending, {counts.dead} dead"
    return text + (f" ({counts.blocked} pending behind a dead message)" if counts.blocked else "")


def cmd_outbox_list(args: argparse.Namespace) -> int:
    store = open_outbox(load_config(args.config))
    try:
        rows = store.outbox_listing(include_delivered=args.all)
        totals = store.outbox_counts()
    finally:
        store.close()
    for row in rows:
        if args.json:
            print(json.dumps(row))
            continue
        due = row["next_attempt_at"]
        when = (
            ""
            if row["status"] != "pending" or not due
            else f", next try in {max(0.0, due - time.time()):.0f} s"
        )
        ticket = f", ticket {row['ticket_id']}" if row["ticket_id"] else ""
        error = f"\n    last error: {row['last_error']}" if row["last_error"] else ""
        key = f"{row['event_id']}.{row['event_seq']}"
        print(
            f"{row['seq']:>6}  {row['target']:<12} {key}  {row['transition']:<7} {row['status']:<9} "
            f"{row['attempts']} attempt(s){when}{ticket}{error}"
        )
    if not args.json:
        print(f"outbox: {describe(totals)}")
    return 0


def cmd_outbox_resend(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.target is not None:
        _known_target(config, args.config, args.target)
    store = open_outbox(config)
    try:
        count = store.resend(args.event, args.target)
        totals = store.outbox_counts()
    finally:
        store.close()
    print(f"outbox: {count} dead message(s) back in line; {describe(totals)}")
    return 0


def cmd_outbox_drain(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if not config.dispatch.all_targets():
        raise ConfigError(
            [
                f"{args.config}: neither dispatch.webhook_url nor dispatch.targets is set: "
                "there is nowhere to deliver to"
            ]
        )
    with ExitStack() as held:
        store = open_outbox(config)
        held.callback(store.close)
        held.callback(hold(config.storage, [], outbox=True).release)  # SQLite: not beside a service's
        if args.now:
            store.due_now()
        dispatcher = Dispatcher.of(store.another, config)
        dispatcher.start()
        try:
            counts = dispatcher.drain(args.seconds)
        finally:
            dispatcher.stop()
    print(f"outbox: {describe(counts)}")
    return 0 if counts.pending == 0 and counts.dead == 0 else 1


def _known_target(config: Config, path: Path, name: str) -> None:
    targets = list(config.dispatch.all_targets())
    if name not in targets:
        raise ConfigError([f"{path}: no dispatch target {name!r} (targets: {', '.join(targets) or 'none'})"])


def report_leftovers(counts: outbox.Counts) -> None:
    """After a run: say what is still undelivered, and that it is kept."""
    if counts.pending or counts.dead:
        log.warning(
            "outbox: %s; undelivered messages are kept and sent by the next run or "
            "`street-vision outbox drain CONFIG` (dead ones after `street-vision outbox resend CONFIG`)",
            describe(counts),
        )


def cmd_receiver(args: argparse.Namespace) -> int:
    secret = os.environ.get(SECRET_ENV, "")
    if not secret:
        raise ConfigError(
            [f"{SECRET_ENV} is not set: export the sender's dispatch.secret (never pass it as an argument)"]
        )
    import uvicorn

    from vision.dispatch.receiver import WEBHOOK_PATH, create_app
    from vision.secrets import redact_access_log

    app = create_app(args.db, secret, args.tolerance)
    log.info("receiver: POST http://%s:%d%s, tickets in %s", args.host, args.port, WEBHOOK_PATH, args.db)
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="info"))
    redact_access_log()  # a webhook URL may carry a token in its query
    server.run()
    return 0


def cmd_open311_server(args: argparse.Namespace) -> int:
    from vision.dispatch.open311_server import Requests, create_app

    changing = args.close if args.close is not None else args.note
    if changing is not None:
        if not args.db.is_file():
            raise ConfigError([f"{args.db}: no such file: --db names the server's requests file"])
        requests = Requests(args.db)
        try:
            done = requests.update(changing, "closed" if args.close is not None else "open", args.notes)
        finally:
            requests.close()
        if not done:
            raise ConfigError([f"{args.db}: no service request {changing}"])
        print(f"request {changing}: {'closed' if args.close is not None else 'open'}")
        return 0
    if args.notes is not None:
        raise ConfigError(["--notes goes with --close ID or --note ID"])
    api_key = os.environ.get(API_KEY_ENV, "")
    if not api_key:
        raise ConfigError([f"{API_KEY_ENV} is not set: export the api_key clients must send"])
    import uvicorn

    app = create_app(args.db, api_key, tokens=args.tokens, prefix=args.prefix.rstrip("/"))
    log.info(
        "open311 server: http://%s:%d%s/requests.json, requests in %s",
        args.host,
        args.port,
        args.prefix,
        args.db,
    )
    uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="info")).run()
    return 0
