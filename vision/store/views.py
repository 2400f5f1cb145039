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
REPORT_COLUMNS = ("status", "note", "ticket_id", "received_at", "applied", "source")
CLIP_COLUMNS = ("event_id", "kind", "pts", "file", "start_pts", "end_pts", "frames", "bytes")
# the figures per camera and event type: tickets by how they were judged or ended
OUTCOMES = ("opened", "confirmed", "rejected", "verified_fixed", "failed_verifications", "closed_by_operator")
# wall-clock seconds of a ticket: from its open to its first report of handled, and to its close
DURATIONS = ("open_to_handled", "open_to_closed")
DURATION_BUCKETS = (1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0, 259200.0, 604800.0)
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
        """One event (as :meth:`events` has it) and its transitions in order, payloads parsed, each with
        the wall time it was committed (``recorded_at``, ISO; None for rows from before that column); or
        None."""
        row = self.sql.execute(self._select_events() + " WHERE e.event_id = ?", (event_id,)).fetchone()
        if row is None:
            return None
        recorded = self.sql.dialect.iso("recorded_at")
        transitions = [
            {"seq": seq, "kind": kind, "pts": pts, "payload": json.loads(payload), "recorded_at": at}
            for seq, kind, pts, payload, at in self.sql.execute(
                f"SELECT seq, kind, pts, payload, {recorded} FROM transitions WHERE event_id = ? "
                "ORDER BY seq",
                (event_id,),
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
        """What the ticketing side and operators reported about one event, oldest first."""
        rows = self.sql.execute(
            f"SELECT {', '.join(REPORT_COLUMNS)} FROM reports WHERE event_id = ? ORDER BY seq", (event_id,)
        ).fetchall()
        return [dict(zip(REPORT_COLUMNS, row, strict=True)) | {"applied": bool(row[4])} for row in rows]

    def clips(self, event_id: str) -> list[dict[str, Any]]:
        """The clips around one event's transitions, oldest first (keys: CLIP_COLUMNS)."""
        rows = self.sql.execute(
            f"SELECT {', '.join(CLIP_COLUMNS)} FROM clips WHERE event_id = ? ORDER BY pts, kind", (event_id,)
        ).fetchall()
        return [dict(zip(CLIP_COLUMNS, row, strict=True)) for row in rows]

    def figures(self) -> list[dict[str, Any]]:
        """Per camera and event type: tickets opened, confirmed by an operator, rejected as false alarms,
        verified fixed, sent back by a failed verification (each one counted), closed by hand; and for
        each of DURATIONS the count, mean, median and DURATION_BUCKETS (cumulative) of its seconds."""
        outcomes = self.sql.execute(
            "SELECT e.camera, e.type, COUNT(*), "
            "SUM(CASE WHEN EXISTS (SELECT 1 FROM reports r WHERE r.event_id = e.event_id "
            "AND r.source = 'operator' AND r.status = 'confirmed') THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN e.close_reason = 'rejected' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN e.close_reason = 'verified_fixed' THEN 1 ELSE 0 END), "
            "SUM(e.failed_verifications), "
            "SUM(CASE WHEN e.close_reason = 'closed_by_operator' THEN 1 ELSE 0 END) "
            "FROM events e GROUP BY e.camera, e.type ORDER BY e.camera, e.type"
        ).fetchall()
        figures = {
            (c, k): {"camera": c, "type": k} | {n: int(v or 0) for n, v in zip(OUTCOMES, rest, strict=True)}
            for c, k, *rest in outcomes
        }
        for camera, kind, what, count, mean, total, median, *buckets in self._durations():
            figures[(camera, kind)][what] = {
                "count": int(count),
                "mean": float(mean),
                "sum": float(total),
                "p50": float(median),
                "buckets": [int(b) for b in buckets],
            }
        return list(figures.values())

    def _durations(self) -> list[tuple[Any, ...]]:
        """Per camera, type and DURATIONS: count, mean, sum, median, cumulative bucket counts (one query;
        the median is the middle row by a window function, which SQLite and PostgreSQL both have)."""
        epoch = self.sql.dialect.epoch("received_at")
        buckets = ", ".join(f"SUM(CASE WHEN seconds <= {b!r} THEN 1 ELSE 0 END)" for b in DURATION_BUCKETS)
        return self.sql.execute(
            "WITH opened AS (SELECT event_id, MIN(recorded_at) AS at FROM transitions "
            "WHERE kind = 'open' GROUP BY event_id), "
            f"handled AS (SELECT event_id, MIN({epoch}) AS at FROM reports "
            "WHERE status = 'handled' GROUP BY event_id), "
            "closed AS (SELECT event_id, MAX(recorded_at) AS at FROM transitions "
            "WHERE kind = 'close' GROUP BY event_id), "
            "d AS (SELECT e.camera, e.type, 'open_to_handled' AS what, h.at - o.at AS seconds FROM events e "
            "JOIN opened o ON o.event_id = e.event_id JOIN handled h ON h.event_id = e.event_id "
            "UNION ALL SELECT e.camera, e.type, 'open_to_closed', c.at - o.at FROM events e "
            "JOIN opened o ON o.event_id = e.event_id JOIN closed c ON c.event_id = e.event_id "
            "WHERE e.state = 'resolved'), "
            "r AS (SELECT camera, type, what, seconds, "
            "ROW_NUMBER() OVER (PARTITION BY camera, type, what ORDER BY seconds) AS k, "
            "COUNT(*) OVER (PARTITION BY camera, type, what) AS n FROM d) "
            "SELECT camera, type, what, COUNT(*), AVG(seconds), SUM(seconds), "
            f"MAX(CASE WHEN k = (n + 1) / 2 THEN seconds END), {buckets} "
            "FROM r GROUP BY camera, type, what ORDER BY camera, type, what"
        ).fetchall()

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
