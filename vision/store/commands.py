"""``street-vision store prune CONFIG``: one retention pass now, and what it removed.

The service prunes by itself in the background; this is for a store whose service is
stopped, for cron, and to rewrite a store created before retention (``--vacuum``) so
that its file can shrink.
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

from vision.config import ConfigError, load_config
from vision.db import connect
from vision.store.retention import Retention, database_bytes
from vision.store.sqlite import Store, store_path


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
    path = store_path(config.storage.data_dir)
    if not path.exists():
        raise ConfigError([f"{path}: no store yet: `street-vision run` creates it (storage.data_dir)"])
    Store(config.storage.data_dir, str(args.config)).close()  # brings an older store's columns up to date
    db = connect(path)
    try:
        retention = Retention(db, path, config.storage)
        before = retention.sizes.database
        pruned = retention.prune()
        if args.vacuum:
            try:
                db.execute("PRAGMA auto_vacuum=INCREMENTAL")
                db.execute("VACUUM")
            except sqlite3.OperationalError as exc:
                raise ConfigError(
                    [f"{path}: cannot vacuum ({exc}): stop the service using it first"]
                ) from None
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        db.close()
    print(f"pruned: {pruned.describe()}")
    print(
        f"store: database {_mb(before)} -> {_mb(database_bytes(path))} (with its WAL), "
        f"snapshots {_mb(retention.sizes.snapshots)}"
    )
    return 0


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"
