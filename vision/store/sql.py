"""The store's writes and the pipeline's reads, written once over a :class:`Database` of any backend.

Each event transition is committed together with the event row, the camera's snapshot
(what its rules and timers need to carry on) and, when dispatch is on, its outbox
message, in one transaction, before anything is sent. So after any crash the store
says exactly which tickets are open, and a restarted camera carries them on.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from vision.camera.unit import Snapshot
from vision.dispatch.routing import Router
from vision.store.database import Database
from vision.store.migrations import migrate as migrate_schema
from vision.store.outbox import OutboxQueries
from vision.store.views import CLIP_COLUMNS, EVENT_COLUMNS, EventViews
from vision.types import Detections, Event, Transition

DETECTION_COLUMNS = "run_id, camera, pts, class_id, label, score, x1, y1, x2, y2, track_id, recorded_at"


class SqlStore(OutboxQueries, EventViews):
    """Events, transitions, detections, camera snapshots and the outbox in one database.

    ``migrate`` brings the schema up to date; ``run`` numbers the rows written through
    this handle with a new run (the pipeline's store). A handle for another thread
    (``another()`` of a backend) does neither. With ``dispatch`` (a router, or True for
    the single webhook), every recorded transition also becomes an outbox message for
    each target its event is routed to.
    """

    def __init__(
        self, sql: Database, config_path: str | None, dispatch: bool | Router, run: bool, migrate: bool
    ) -> None:
        self.sql = sql
        self.dispatch = Router.everything() if dispatch is True else dispatch or None
        self.run_id = 0
        if migrate or run:
            migrate_schema(sql)
        if run:
            row = self.sql.execute(
                "INSERT INTO runs (config_path) VALUES (?) RETURNING run_id", (config_path,)
            ).fetchone()
            self.run_id = int(row[0]) if row else 0

    def add_detections(self, camera: str, pts: float, detections: Detections, names: dict[int, str]) -> None:
        """Append one frame's boxes (one executemany, no per-box Python objects kept)."""
        if len(detections) == 0:
            return
        n = len(detections)
        rows = zip(
            [self.run_id] * n,
            [camera] * n,
            [pts] * n,
            detections.class_id.tolist(),
            [names.get(int(c), str(int(c))) for c in detections.class_id],
            detections.score.tolist(),
            *np.round(detections.xyxy, 1).T.tolist(),
            detections.track_id.tolist(),
            [time.time()] * n,  # wall clock, for retention only
            strict=True,
        )
        with self.sql.transaction():  # one commit per frame, not one per box
            self.sql.executemany(f"INSERT INTO detections ({DETECTION_COLUMNS}) VALUES ({'?,' * 11}?)", rows)

    def record(
        self,
        transitions: list[tuple[Transition, dict[str, Any]]],
        snapshot: Snapshot | None = None,
        applied: tuple[str, ...] = (),
        changed: tuple[dict[str, Any], ...] = (),
    ) -> None:
        """Upsert the events, append the transitions (and their outbox messages), save the camera's
        snapshot after them and mark the inbound reports that caused them applied, in one transaction:
        the store never says a ticket is open that the camera's state does not carry, nor the other way
        round, and a report is applied exactly once. ``changed`` are event records that changed without
        a transition (a verification under way)."""
        with self.sql.transaction():
            for event in changed:
                self._upsert_event(event)
            for transition, payload in transitions:
                self._record(transition, payload)
            camera = snapshot.state.get("camera") if snapshot is not None else None
            if snapshot is not None and (transitions or applied):
                self._save_state(camera or transitions[0][0].event["camera"], snapshot)
            self.sql.executemany("UPDATE reports SET applied = 1 WHERE key = ?", [(k,) for k in applied])

    def _upsert_event(self, event: dict[str, Any]) -> None:
        values = [event[c] for c in EVENT_COLUMNS]
        placeholders = ",".join("?" * (len(EVENT_COLUMNS) + 1))
        updates = ",".join(f"{c}=excluded.{c}" for c in EVENT_COLUMNS[1:])
        self.sql.execute(  # updated_at: wall clock, for retention only
            f"INSERT INTO events (run_id,updated_at,{','.join(EVENT_COLUMNS)}) VALUES (?,{placeholders}) "
            f"ON CONFLICT(event_id) DO UPDATE SET updated_at=excluded.updated_at,{updates}",
            [self.run_id, time.time(), *values],
        )

    def _record(self, transition: Transition, payload: dict[str, Any]) -> None:
        event = transition.event
        text = json.dumps(payload)  # before any write: a payload that cannot be stored changes nothing
        self._upsert_event(event)
        row = self.sql.execute(
            "INSERT INTO transitions (event_id, kind, pts, payload, recorded_at) VALUES (?,?,?,?,?) "
            "RETURNING seq",
            (event["event_id"], transition.kind, transition.pts, text, time.time()),  # wall: figures only
        ).fetchone()
        if self.dispatch is not None and row is not None:
            targets = self.routed_targets(event["event_id"]) or self.dispatch.targets(event, payload)
            self.enqueue(int(row[0]), event["event_id"], targets)

    def checkpoint(self, camera: str, snapshot: Snapshot) -> None:
        """Save a camera's snapshot between transitions (timers under way, background model)."""
        with self.sql.transaction():
            self._save_state(camera, snapshot)

    def _save_state(self, camera: str, snapshot: Snapshot) -> None:
        """Upsert the camera's state; its arrays (their own table: a state-only save leaves them be) are
        replaced only when the snapshot has them."""
        self.sql.execute(
            "INSERT INTO camera_state (camera, pts, state, saved_at) VALUES (?,?,?,?) "
            "ON CONFLICT(camera) DO UPDATE SET pts=excluded.pts, state=excluded.state, "
            "saved_at=excluded.saved_at",
            (camera, snapshot.state.get("pts"), json.dumps(snapshot.state), time.time()),
        )
        if snapshot.arrays is not None:
            self.sql.execute(
                "INSERT INTO camera_arrays (camera, arrays) VALUES (?,?) "
                "ON CONFLICT(camera) DO UPDATE SET arrays=excluded.arrays",
                (camera, snapshot.arrays),
            )

    def snapshot(self, camera: str) -> tuple[Snapshot, float] | None:
        """A camera's last saved snapshot and the wall time it was saved, or None."""
        row = self.sql.execute(
            "SELECT s.state, a.arrays, s.saved_at FROM camera_state s "
            "LEFT JOIN camera_arrays a ON a.camera = s.camera WHERE s.camera = ?",
            (camera,),
        ).fetchone()
        if row is None:
            return None
        arrays = None if row[1] is None else bytes(row[1])
        return Snapshot(json.loads(row[0]), arrays), float(row[2])

    def forget_camera(self, camera: str) -> None:
        """Drop a camera's snapshot (it left the config; its events were closed)."""
        with self.sql.transaction():
            self.sql.execute("DELETE FROM camera_state WHERE camera = ?", (camera,))
            self.sql.execute("DELETE FROM camera_arrays WHERE camera = ?", (camera,))

    def open_events(self, camera: str | None = None) -> list[Event]:
        """Events not resolved (one camera's, or all), oldest first: the tickets still open."""
        one = "" if camera is None else " AND camera = ?"
        rows = self.sql.execute(
            f"SELECT {','.join(EVENT_COLUMNS)} FROM events WHERE state != 'resolved'{one} "
            "ORDER BY first_seen",
            () if camera is None else (camera,),
        ).fetchall()
        return [Event.from_record(dict(zip(EVENT_COLUMNS, row, strict=True))) for row in rows]

    def add_report(
        self,
        key: str,
        event_id: str,
        status: str,
        note: str | None,
        ticket_id: str | None,
        source: str = "ticketing",
    ) -> tuple[str | None, bool]:
        """Keep one inbound report (``source``: ticketing, or operator from the review page) before
        anything acts on it: the event's camera (None: no such event, nothing kept) and whether it is
        new (False: its key came before, a retry)."""
        with self.sql.transaction():
            row = self.sql.execute("SELECT camera FROM events WHERE event_id = ?", (event_id,)).fetchone()
            if row is None:
                return None, False
            added = self.sql.execute(
                "INSERT INTO reports (key, event_id, status, note, ticket_id, source) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT (key) DO NOTHING",
                (key, event_id, status, note, ticket_id, source),
            )
            return str(row[0]), added.rowcount == 1

    def pending_reports(self, camera: str) -> list[tuple[str, str, str, str | None]]:
        """(key, event id, status, note) of the camera's inbound reports not applied yet, in the order
        they came."""
        return [
            (str(k), str(e), str(s), n)
            for k, e, s, n in self.sql.execute(
                "SELECT r.key, r.event_id, r.status, r.note FROM reports r "
                "JOIN events e ON e.event_id = r.event_id WHERE r.applied = 0 AND e.camera = ? "
                "ORDER BY r.seq",
                (camera,),
            )
        ]

    def add_clip(self, clip: dict[str, Any]) -> None:
        """Keep the record of a clip written beside its event's snapshots (keys: CLIP_COLUMNS)."""
        with self.sql.transaction():
            self.sql.execute(
                f"INSERT INTO clips ({', '.join(CLIP_COLUMNS)}, recorded_at) "
                f"VALUES ({'?, ' * len(CLIP_COLUMNS)}?)",
                [*(clip[c] for c in CLIP_COLUMNS), time.time()],  # wall clock, for retention only
            )

    def report_state(self, key: str) -> tuple[bool, str, str | None, str | None]:
        """After a report: whether it is applied, and its event's state, close reason and verification."""
        row = self.sql.execute(
            "SELECT r.applied, e.state, e.close_reason, e.verification FROM reports r "
            "JOIN events e ON e.event_id = r.event_id WHERE r.key = ?",
            (key,),
        ).fetchone()
        assert row is not None, "report_state after add_report"
        return bool(row[0]), str(row[1]), row[2], row[3]

    def cameras(self) -> set[str]:
        """Cameras that have open events or a saved snapshot."""
        rows = self.sql.execute(
            "SELECT camera FROM camera_state UNION SELECT camera FROM events WHERE state != 'resolved'"
        )
        return {row[0] for row in rows}

    def close(self) -> None:
        self.sql.close()
