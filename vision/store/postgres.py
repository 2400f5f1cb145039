"""The PostgreSQL backend (``storage.url``): the shared store of several processes or machines.

psycopg 3 with a connection pool: each statement borrows a connection for as long as
it runs, a transaction for as long as its block, so one handle serves many threads and
:meth:`PostgresStore.another` shares the pool. Several dispatchers may deliver one
outbox at once (see :mod:`vision.store.outbox`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from vision.config import ConfigError
from vision.dispatch.routing import Router
from vision.secrets import SecretUrl, redact_text
from vision.store.database import POSTGRES, Database, Rows
from vision.store.sql import SqlStore

CONNECT_TIMEOUT_S = 10
POOL_MIN, POOL_MAX = 1, 10  # the pipeline, each dispatcher (one held per delivery), the pruner, API requests
POOL_WAIT_S = 30.0  # a statement waits this long for a free connection, then fails
# The server's side of each connection probes a silent peer after 10 s, every 5 s, 3 times: a dispatcher
# whose machine vanished (no connection closed) frees the message it held in about 25 s, where the
# operating system's default (2 hours) would hold that ticket's messages back all that time.
KEEPALIVE = "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"


@lru_cache(maxsize=512)
def _paramstyle(sql: str) -> str:
    """The store's ``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresDatabase(Database):
    """Statements on pooled connections; a transaction keeps its connection for its thread."""

    dialect = POSTGRES
    errors = (psycopg.Error,)

    def __init__(self, pool: ConnectionPool, owns_pool: bool) -> None:
        self.pool = pool
        self.owns_pool = owns_pool
        self._local = threading.local()

    def _in_transaction(self) -> psycopg.Connection | None:
        return getattr(self._local, "connection", None)

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        held = self._in_transaction()
        if held is not None:
            yield held
            return
        with self.pool.connection() as connection:
            yield connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        with self._connection() as connection:
            cursor = connection.execute(_paramstyle(sql), tuple(params))
            return Rows(cursor.fetchall() if cursor.description else [], cursor.rowcount)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._connection() as connection, connection.cursor() as cursor:
            cursor.executemany(_paramstyle(sql), list(rows))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._in_transaction() is not None:
            yield
            return
        with self.pool.connection() as connection:
            self._local.connection = connection
            try:
                with connection.transaction():
                    yield
            finally:
                self._local.connection = None

    def columns(self, table: str) -> set[str]:
        rows = self.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        )
        return {row[0] for row in rows}

    def close(self) -> None:
        if self.owns_pool:
            self.pool.close()


def _session(url: SecretUrl) -> dict[str, Any]:
    """Each connection's settings: autocommit, the connect timeout, the server's keepalives (the URL's own
    options kept)."""
    own = conninfo_to_dict(url.get_secret_value()).get("options")
    return {
        "autocommit": True,
        "connect_timeout": CONNECT_TIMEOUT_S,
        "options": f"{own} {KEEPALIVE}" if own else KEEPALIVE,
    }


def connect(url: SecretUrl, **settings: Any) -> psycopg.Connection:
    """One connection to ``url``, as the pool's are (and ``settings``); an unreachable server or a refused
    login is a clear error naming ``storage.url`` (its password hidden)."""
    try:
        return psycopg.connect(url.get_secret_value(), **_session(url), **settings)
    except psycopg.Error as exc:
        reason = redact_text(str(exc).strip(), url)
        raise ConfigError([f"storage.url {url}: cannot connect to PostgreSQL: {reason}"]) from None


def open_pool(url: SecretUrl) -> ConnectionPool:
    """A pool on ``url``, once one connection has shown the server is there (:func:`connect`), not a
    pool's retry loop."""
    connect(url).close()
    pool = ConnectionPool(
        url.get_secret_value(),
        min_size=POOL_MIN,
        max_size=POOL_MAX,
        kwargs=_session(url),
        timeout=POOL_WAIT_S,
        name="street-vision",
        open=False,
    )
    pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
    return pool


class PostgresStore(SqlStore):
    """The store in the database at ``url``; ``pool`` shares another handle's connections."""

    def __init__(
        self,
        url: SecretUrl,
        config_path: str | None = None,
        dispatch: bool | Router = False,
        run: bool = True,
        migrate: bool = True,
        pool: ConnectionPool | None = None,
    ) -> None:
        self.url = url
        database = PostgresDatabase(pool or open_pool(url), owns_pool=pool is None)
        super().__init__(database, config_path, dispatch, run, migrate)
        self.sql: PostgresDatabase = database

    @property
    def location(self) -> str:
        return str(self.url)

    def another(self) -> PostgresStore:
        return PostgresStore(self.url, run=False, migrate=False, pool=self.sql.pool)

    def database_bytes(self) -> int:
        row = self.sql.execute("SELECT pg_database_size(current_database())").fetchone()
        return int(row[0]) if row else 0

    # Retention's space hooks: PostgreSQL's autovacuum makes deleted rows' space reusable by itself.
    shrinks = True

    def used_bytes(self) -> int:
        return self.database_bytes()

    def free_pages(self, pages: int) -> bool:
        return False

    def settle(self) -> None:
        """Nothing to do: PostgreSQL checkpoints by itself."""
