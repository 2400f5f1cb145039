"""The SQLite backend, the embedded default: one file in the data folder.

WAL mode lets the API and the dispatcher read while the pipeline writes (see
:mod:`vision.db`); each thread has its own connection (:meth:`Store.another`). Besides
the store's SQL this backend knows its file: its size, and handing freed pages back
to the file system (``auto_vacuum=INCREMENTAL``, set when the file is created).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vision.db import connect, immediate
from vision.dispatch.routing import Router
from vision.store.database import SQLITE, Database, Rows
from vision.store.sql import SqlStore


class SqliteDatabase(Database):
    """One SQLite connection, used by one thread at a time."""

    dialect = SQLITE
    errors = (sqlite3.Error,)

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self._depth = 0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        cursor = self.db.execute(sql, params)
        return Rows(cursor.fetchall() if cursor.description else [], cursor.rowcount)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.db.executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._depth:
            yield
            return
        self._depth += 1
        try:
            with immediate(self.db):
                yield
        finally:
            self._depth -= 1

    def columns(self, table: str) -> set[str]:
        return {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}

    def close(self) -> None:
        self.db.close()


class Store(SqlStore):
    """The store in ``data_dir``; one instance per thread (``any_thread``: built in one, used in another).

    ``migrate``: bring the schema up to date; ``run``: also start a run (the pipeline's store).
    :meth:`another` opens a plain handle for another thread.
    """

    def __init__(
        self,
        data_dir: Path,
        config_path: str | None = None,
        dispatch: bool | Router = False,
        any_thread: bool = False,
        run: bool = True,
        migrate: bool = True,
    ) -> None:
        self.data_dir = data_dir
        self.path = store_path(data_dir)
        self.db = connect(self.path, any_thread)
        super().__init__(SqliteDatabase(self.db), config_path, dispatch, run, migrate)

    @property
    def location(self) -> str:
        return str(self.path)

    def another(self) -> Store:
        return Store(self.data_dir, any_thread=True, run=False, migrate=False)

    def database_bytes(self) -> int:
        return database_bytes(self.path)

    @property
    def shrinks(self) -> bool:
        """Whether freed pages go back to the file system (auto_vacuum=INCREMENTAL, set at creation)."""
        return self.db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2

    def used_bytes(self) -> int:
        """Bytes of the database's pages in use (free ones are handed back by :meth:`free_pages`).

        The WAL is left out: pruning itself grows it for a moment, and it is cut back to
        ``vision.db.WAL_KEEP_BYTES`` at the next checkpoint.
        """
        pages, free, size = (
            self.db.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("page_count", "freelist_count", "page_size")
        )
        return (pages - free) * size

    def free_pages(self, pages: int) -> bool:
        """Hand up to ``pages`` free pages back in one transaction; False when none were left."""
        if self.db.execute("PRAGMA freelist_count").fetchone()[0] == 0:
            return False
        # executescript runs the pragma to completion; a plain execute frees one page per call
        self.db.executescript(f"PRAGMA incremental_vacuum({pages});")
        return True

    def settle(self) -> None:
        """Checkpoint the WAL after a prune, so that the file shrinks."""
        self.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def rewrite(self) -> None:
        """Rewrite the file with auto_vacuum on (needs the store to itself, and its size free on disk)."""
        self.db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self.db.execute("VACUUM")
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def store_path(data_dir: Path) -> Path:
    """The store's file inside the data folder (the dispatcher and the CLI open it by this)."""
    return data_dir / "street-vision.sqlite"


def database_bytes(path: Path) -> int:
    """The SQLite file and its WAL, as the file system has them now."""
    return sum(_file_size(Path(f"{path}{suffix}")) for suffix in ("", "-wal"))


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
