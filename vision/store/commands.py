"""``street-vision store prune CONFIG``: one retention pass now, and what it removed.

The service prunes by itself in the background; this is for a store whose service is
stopped, for cron, and to rewrite a SQLite store created before retention (``--vacuum``)
so that its file can shrink.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vision.config import ConfigError, load_config
from vision.store import open_store
from vision.store.retention import Retention
from vision.store.sqlite import Store


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``store`` on the CLI's subcommand parser."""
    p = sub.add_parser("store", help="maintain the store: prune what is past its retention")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("prune", help="apply storage.retention and storage.max_bytes once, now")
    a.add_argument("config", type=Path)
    a.add_argument(
        "--vacuum",
        action="store_true",
        help="then rewrite the file with auto_vacuum on, so that later prunes shrink it "
        "(stop the service first: it needs the store to itself, and about its size again free on disk)",
    )
    a.set_defaults(func=cmd_store_prune)


def cmd_store_prune(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.vacuum and config.storage.url is not None:
        raise ConfigError([f"{args.config}: --vacuum rewrites a SQLite file: storage.url is PostgreSQL"])
    store = open_store(config.storage, run=False)  # brings an older store's schema up to date
    try:
        retention = Retention(store, config.storage)
        before = retention.sizes.database
        pruned = retention.prune()
        if args.vacuum and isinstance(store, Store):
            try:
                store.rewrite()
            except store.sql.errors as exc:
                raise ConfigError(
                    [f"{store.location}: cannot vacuum ({exc}): stop the service using it first"]
                ) from None
        after = store.database_bytes()
    finally:
        store.close()
    wal = " (with its WAL)" if config.storage.url is None else ""
    print(f"pruned: {pruned.describe()}")
    print(f"store: database {_mb(before)} -> {_mb(after)}{wal}, snapshots {_mb(retention.sizes.snapshots)}")
    return 0


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"
