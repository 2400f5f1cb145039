"""The store: where events, their transitions, detections and the outbox are the truth.

SQLite (``sqlite.py``) is the embedded default; every other module imports from here,
so a second backend plugs in behind the same names.
"""

from vision.store.sqlite import EVENT_COLUMNS, Store, store_path

__all__ = ["EVENT_COLUMNS", "Store", "store_path"]
