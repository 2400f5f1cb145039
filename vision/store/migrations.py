"""Schema migrations, the same numbered steps for SQLite and PostgreSQL.

``schema_version`` lists the steps a store has had; opening a store applies the
missing ones in order, in one transaction (PostgreSQL: under an advisory lock, so two
processes starting at once do not both apply a step). A step is SQL written once with
the dialect's fields, or a function for what SQL alone cannot say. A store written
before this table existed (SQLite only) has no ``schema_version``: every step runs,
and each is written to leave what is already there alone (``IF NOT EXISTS``, columns
added only when missing), so its rows are kept.

A new table or column is a new step at the end; never edit a step that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vision.store.database import Database, Dialect


@dataclass(frozen=True)
class Step:
    version: int
    why: str
    statements: Callable[[Dialect], list[str]] | None = None
    apply: Callable[[Database], None] | None = None


def _tables(d: Dialect) -> list[str]:
    """The store as the first versioned release has it (every earlier SQLite store is a subset)."""
    return [
        f"""CREATE TABLE IF NOT EXISTS runs (
            run_id {d.serial},
            started_at TEXT NOT NULL DEFAULT ({d.now}),
            config_path TEXT
        )""",
        f"""CREATE TABLE IF NOT EXISTS detections (
            {d.rowid_column}
            run_id INTEGER NOT NULL,
            camera TEXT NOT NULL,
            pts {d.real} NOT NULL,
            class_id INTEGER NOT NULL,
            label TEXT NOT NULL,
            score {d.real} NOT NULL,
            x1 {d.real} NOT NULL, y1 {d.real} NOT NULL, x2 {d.real} NOT NULL, y2 {d.real} NOT NULL,
            track_id INTEGER NOT NULL,
            recorded_at {d.real}
        )""",
        "CREATE INDEX IF NOT EXISTS detections_camera_pts ON detections (camera, pts)",
        f"""CREATE TABLE IF NOT EXISTS events (
            {d.rowid_column}
            event_id TEXT PRIMARY KEY,
            run_id INTEGER NOT NULL,
            type TEXT NOT NULL,
            camera TEXT NOT NULL,
            zone TEXT NOT NULL,
            subject TEXT NOT NULL,
            state TEXT NOT NULL,
            first_seen {d.real} NOT NULL,
            opened_at {d.real},
            resolved_at {d.real},
            reopened_at {d.real},
            reopens INTEGER NOT NULL DEFAULT 0,
            confidence {d.real} NOT NULL,
            count INTEGER NOT NULL,
            peak_count INTEGER NOT NULL,
            updated_at {d.real},
            close_reason TEXT
        )""",
        f"""CREATE TABLE IF NOT EXISTS transitions (
            seq {d.serial},
            event_id TEXT NOT NULL REFERENCES events (event_id),
            kind TEXT NOT NULL,
            pts {d.real} NOT NULL,
            payload TEXT NOT NULL
        )""",
        f"""CREATE TABLE IF NOT EXISTS camera_state (
            camera TEXT PRIMARY KEY,
            pts {d.real},
            state TEXT NOT NULL,
            arrays {d.blob},
            saved_at {d.real} NOT NULL
        )""",
        f"""CREATE TABLE IF NOT EXISTS outbox (
            seq {d.bigint} PRIMARY KEY REFERENCES transitions (seq),
            event_id TEXT NOT NULL,
            event_seq INTEGER NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at {d.real} NOT NULL DEFAULT 0,
            recorded_at TEXT NOT NULL DEFAULT ({d.now}),
            delivered_at TEXT,
            last_error TEXT,
            UNIQUE (event_id, event_seq)
        )""",
        "CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at)",
        """CREATE TABLE IF NOT EXISTS remote_tickets (
            event_id TEXT PRIMARY KEY,
            ticket_id TEXT NOT NULL
        )""",
    ]


# Columns that SQLite stores written before step 1 may lack, with their definitions.
_LATER_COLUMNS = {
    "events": {
        "reopened_at": "REAL",
        "reopens": "INTEGER NOT NULL DEFAULT 0",
        "close_reason": "TEXT",
        "updated_at": "REAL",
    },
    "detections": {"recorded_at": "REAL"},
}


def _add_missing_columns(db: Database) -> None:
    """Bring a store written by an older version up to date, keeping its rows."""
    for table, columns in _LATER_COLUMNS.items():
        present = db.columns(table)
        for name, kind in columns.items():
            if name not in present:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


def _reports(d: Dialect) -> list[str]:
    """Inbound reports of the ticketing side, kept before they are applied (applied: 0 or 1)."""
    return [
        f"""CREATE TABLE IF NOT EXISTS reports (
            seq {d.serial},
            key TEXT NOT NULL UNIQUE,
            event_id TEXT NOT NULL,
            status TEXT NOT NULL,
            note TEXT,
            ticket_id TEXT,
            received_at TEXT NOT NULL DEFAULT ({d.now}),
            applied INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX IF NOT EXISTS reports_event ON reports (event_id)",
    ]


def _verification_columns(db: Database) -> None:
    """The event's latest report and the camera's check of a reported fix."""
    present = db.columns("events")
    for name, kind in (
        ("report", "TEXT"),
        ("verification", "TEXT"),
        ("failed_verifications", "INTEGER NOT NULL DEFAULT 0"),
    ):
        if name not in present:
            db.execute(f"ALTER TABLE events ADD COLUMN {name} {kind}")


_OUTBOX_COLUMNS = (
    "seq, event_id, event_seq, status, attempts, next_attempt_at, recorded_at, delivered_at, last_error"
)


def _targets(d: Dialect) -> list[str]:
    """Several dispatch targets: one message per transition and target, each target with its own order
    (and idempotency keys unique per target), and a remote ticket id per event and target. The tables are
    rebuilt (SQLite cannot change a primary key in place); what was there went to the one webhook there
    was, the target named ``webhook``."""
    return [
        f"""CREATE TABLE outbox_v4 (
            id {d.serial},
            seq {d.bigint} NOT NULL REFERENCES transitions (seq),
            target TEXT NOT NULL,
            event_id TEXT NOT NULL,
            event_seq INTEGER NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at {d.real} NOT NULL DEFAULT 0,
            recorded_at TEXT NOT NULL DEFAULT ({d.now}),
            delivered_at TEXT,
            last_error TEXT,
            UNIQUE (target, event_id, event_seq)
        )""",
        f"INSERT INTO outbox_v4 (target, {_OUTBOX_COLUMNS}) SELECT 'webhook', {_OUTBOX_COLUMNS} FROM outbox "
        "ORDER BY seq",
        "DROP TABLE outbox",
        "ALTER TABLE outbox_v4 RENAME TO outbox",
        "CREATE INDEX outbox_due ON outbox (target, status, next_attempt_at)",
        "CREATE INDEX outbox_event ON outbox (event_id, target, event_seq)",
        """CREATE TABLE remote_tickets_v4 (
            event_id TEXT NOT NULL,
            target TEXT NOT NULL,
            ticket_id TEXT NOT NULL,
            PRIMARY KEY (event_id, target)
        )""",
        "INSERT INTO remote_tickets_v4 (event_id, target, ticket_id) "
        "SELECT event_id, 'webhook', ticket_id FROM remote_tickets",
        "DROP TABLE remote_tickets",
        "ALTER TABLE remote_tickets_v4 RENAME TO remote_tickets",
    ]


def _clips(d: Dialect) -> list[str]:
    """Short videos around an event's transitions (the files live beside its snapshots)."""
    return [
        f"""CREATE TABLE IF NOT EXISTS clips (
            {d.rowid_column}
            event_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            pts {d.real} NOT NULL,
            file TEXT NOT NULL UNIQUE,
            start_pts {d.real} NOT NULL,
            end_pts {d.real} NOT NULL,
            frames INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            recorded_at {d.real} NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS clips_event ON clips (event_id)",
    ]


def _review_columns(db: Database) -> None:
    """Who reported (the ticketing side or an operator), and when each transition was committed (wall
    clock: the figures' seconds from open to handled and to closed)."""
    if "source" not in db.columns("reports"):
        db.execute("ALTER TABLE reports ADD COLUMN source TEXT NOT NULL DEFAULT 'ticketing'")
    if "recorded_at" not in db.columns("transitions"):
        db.execute(f"ALTER TABLE transitions ADD COLUMN recorded_at {db.dialect.real}")


def _camera_arrays(d: Dialect) -> list[str]:
    """A camera's checkpoint arrays (a few hundred kB) in a table of their own: a transition's save of
    the camera's state alone then leaves them be, where SQLite reads back and rewrites a whole row at
    any update of it (benchmarks/checkpoints.md). camera_state.arrays stays, empty."""
    return [
        f"""CREATE TABLE IF NOT EXISTS camera_arrays (
            camera TEXT PRIMARY KEY,
            arrays {d.blob} NOT NULL
        )""",
        "INSERT INTO camera_arrays (camera, arrays) SELECT camera, arrays FROM camera_state "
        "WHERE arrays IS NOT NULL ON CONFLICT (camera) DO NOTHING",
        "UPDATE camera_state SET arrays = NULL WHERE arrays IS NOT NULL",
    ]


STEPS = (
    Step(1, "events, transitions, detections, camera state, outbox and remote tickets", statements=_tables),
    Step(2, "columns a store from before reopening and retention lacks", apply=_add_missing_columns),
    Step(
        3,
        "inbound reports; events' report and verification",
        statements=_reports,
        apply=_verification_columns,
    ),
    Step(4, "dispatch targets: outbox messages and remote ticket ids per target", statements=_targets),
    Step(
        5,
        "clips around transitions; reports' source (operator review); transitions' wall time",
        statements=_clips,
        apply=_review_columns,
    ),
    Step(6, "camera checkpoint arrays in a table of their own", statements=_camera_arrays),
)


def migrate(db: Database) -> list[int]:
    """Apply the steps ``db`` has not had yet; return their numbers."""
    applied = []
    with db.transaction():
        if db.dialect.migration_lock:
            db.execute(db.dialect.migration_lock)
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
            f"applied_at TEXT NOT NULL DEFAULT ({db.dialect.now}))"
        )
        done = {row[0] for row in db.execute("SELECT version FROM schema_version")}
        for step in STEPS:
            if step.version in done:
                continue
            for statement in step.statements(db.dialect) if step.statements else ():
                db.execute(statement)
            if step.apply:
                step.apply(db)
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (step.version,))
            applied.append(step.version)
    return applied
