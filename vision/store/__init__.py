"""The store: where events, their transitions, detections and the outbox are the truth.

Everything outside this package uses the :class:`EventStore` interface (``base.py``),
opened by :func:`open_store`: SQLite in the data folder (``sqlite.py``, the embedded
default) or PostgreSQL when ``storage.url`` is set (``postgres.py``), with the same SQL
(``sql.py``, ``outbox.py``, ``views.py``) and the same migrations (``migrations.py``).
"""

from __future__ import annotations

from vision.config import ConfigError, StorageConfig
from vision.dispatch.routing import Router
from vision.store.base import EventStore, StoreOpener
from vision.store.sqlite import Store, store_path
from vision.store.views import EVENT_COLUMNS


def open_store(
    storage: StorageConfig,
    config_path: str | None = None,
    dispatch: bool | Router = False,
    any_thread: bool = False,
    run: bool = True,
) -> EventStore:
    """The configured store, its schema brought up to date; ``run``: numbering what it writes with a new
    run (the pipeline's), otherwise one that must exist already (the CLI's commands on a store)."""
    if storage.url is not None:
        from vision.store.postgres import PostgresStore  # psycopg is only needed with storage.url

        return PostgresStore(storage.url, config_path, dispatch, run=run)
    if not run and not store_path(storage.data_dir).exists():
        path = store_path(storage.data_dir)
        raise ConfigError([f"{path}: no store yet: `street-vision run` creates it (storage.data_dir)"])
    return Store(storage.data_dir, config_path, dispatch, any_thread, run=run)


__all__ = ["EVENT_COLUMNS", "EventStore", "Store", "StoreOpener", "open_store", "store_path"]
