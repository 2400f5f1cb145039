"""What the API, /metrics and dataset mining read from the store: SQL written once for every backend."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from vision.store.database import Database

EVENT_COLUMNS = (
    "event_id",
    "type",
    "camera",
    "zone",
    "subject",
    "state",
    "first_seen",
    "opened_at",
    "resolved_at",
    "reopened_at",
    "reopens",
    "confidence",
    "count",
    "peak_count",
    "close_reason",
    "report",
    "verification",
    "failed_verifications",
)
REPORT_COLUMNS = ("status", "note", "ticket_id", "received_at", "applied")
EVENT_FILTERS = ("type", "camera", "zone", "state")


@dataclass(frozen=True, slots=True)
class Tallies:
    """Store-wide numbers for /metrics: events by (type, state), outbox attempts and messages by status,
    closed events by (camera, type, close reason), failed verifications by (camera, type)."""

    events: list[tuple[str, str, int]]
    attempts: int
    delivered: int
    outbox: list[tuple[str, int]]
    closes: list[tuple[str, str, str, int]]
    failed_verifications: list[tuple[str, str, int]]


class EventViews:
    """Read-only queries of a store over ``self.sql``."""

    sql: Database

    def _first_wall(self) -> str:
        """The wall time of an event's first transition (only live cameras have one)."""
        wall = self.sql.dialect.json_text("t.payload", "wall_time")
        return f"(SELECT {wall} FROM transitions t WHERE t.event_id = e.event_id ORDER BY t.seq LIMIT 1)"

    def _select_events(self) -> str:
        columns = ", ".join(f"e.{c}" for c in EVENT_COLUMNS)
        return f"SELECT {columns}, {self._first_wall()} AS wall_time FROM events e"

    def events(
        self,
        filters: dict[str, str | None],
        since: str | None = None,
        until: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Events newest first, each with its first wall time; ``filters`` by column (EVENT_FILTERS),
        ``since``/``until`` ISO wall times (at or after / before)."""
        where, args = [], []
        for column in EVENT_FILTERS:
            if filters.get(column) is not None:
                where.append(f"e.{column} = ?")
                args.append(filters[column])
        for bound, op in ((since, ">="), (until, "<")):
            if bound is not None:
                where.append(f"{self._first_wall()} {op} ?")
                args.append(bound)
        sql = self._select_events() + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += f" ORDER BY e.{self.sql.dialect.rowid} DESC LIMIT ? OFFSET ?"
        rows = self.sql.execute(sql, [*args, limit, offset]).fetchall()
        return [dict(zip((*EVENT_COLUMNS, "wall_time"), row, strict=True)) for row in rows]

    def event(self, event_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """One event (as :meth:`events` has it) and its transitions in order, payloads parsed; or None."""
        row = self.sql.execute(self._select_events() + " WHERE e.event_id = ?", (event_id,)).fetchone()
        if row is None:
            return None
        transitions = [
            {"seq": seq, "kind": kind, "pts": pts, "payload": json.loads(payload)}
            for seq, kind, pts, payload in self.sql.execute(
                "SELECT seq, kind, pts, payload FROM transitions WHERE event_id = ? ORDER BY seq", (event_id,)
            )
        ]
        return dict(zip((*EVENT_COLUMNS, "wall_time"), row, strict=True)), transitions

    def tallies(self) -> Tallies:
        events = self.sql.execute("SELECT type, state, COUNT(*) FROM events GROUP BY type, state").fetchall()
        row = self.sql.execute(
            "SELECT COALESCE(SUM(attempts), 0), "
            "COALESCE(SUM(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END), 0) FROM outbox"
        ).fetchone()
        attempts, delivered = row if row is not None else (0, 0)
        by_status = self.sql.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall()
        closes = self.sql.execute(
            "SELECT camera, type, close_reason, COUNT(*) FROM events WHERE close_reason IS NOT NULL "
            "GROUP BY camera, type, close_reason"
        ).fetchall()
        failed = self.sql.execute(
            "SELECT camera, type, COALESCE(SUM(failed_verifications), 0) FROM events GROUP BY camera, type"
        ).fetchall()
        return Tallies(
            [(k, s, int(n)) for k, s, n in events],
            int(attempts),
            int(delivered),
            [(s, int(n)) for s, n in by_status],
            [(c, k, r, int(n)) for c, k, r, n in closes],
            [(c, k, int(n)) for c, k, n in failed],
        )

    def reports(self, event_id: str) -> list[dict[str, Any]]:
        """What the ticketing side reported about one event, oldest first."""
        rows = self.sql.execute(
            f"SELECT {', '.join(REPORT_COLUMNS)} FROM reports WHERE event_id = ? ORDER BY seq", (event_id,)
        ).fetchall()
        return [dict(zip(REPORT_COLUMNS, row, strict=True)) | {"applied": bool(row[4])} for row in rows]

    def rejected_events(self) -> set[str]:
        """Events the ticketing side rejected as false alarms: their frames are hard negatives."""
        rows = self.sql.execute("SELECT event_id FROM events WHERE close_reason = 'rejected'")
        return {str(row[0]) for row in rows}

    def transition_records(self) -> list[tuple[str, float, dict[str, Any]]]:
        """Every stored transition, oldest first: (kind, pts, payload)."""
        rows = self.sql.execute("SELECT kind, pts, payload FROM transitions ORDER BY seq").fetchall()
        return [(kind, float(pts), json.loads(payload)) for kind, pts, payload in rows]

    def uncertain_frames(self, low: float, high: float) -> list[tuple[str, float, str, float]]:
        """Per camera and frame (by stream seconds) with a box scored in [low, high): the label and score
        of its least sure such box, ordered by camera and time."""
        return self.sql.execute(
            "SELECT d.camera, d.pts, MIN(d.label), d.score FROM detections d JOIN ("
            "SELECT camera, pts, MIN(score) AS low FROM detections WHERE score >= ? AND score < ? "
            "GROUP BY camera, pts) m ON m.camera = d.camera AND m.pts = d.pts AND m.low = d.score "
            "GROUP BY d.camera, d.pts, d.score ORDER BY d.camera, d.pts",
            (low, high),
        ).fetchall()
