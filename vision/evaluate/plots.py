"""PNG figures for the evaluation report, drawn with OpenCV (already a dependency; no plotting library).

A timeline per video shows, lane by lane (event type and zone), what really happened
above what the system reported, so a late open, an early close or a duplicate is seen
at a glance; a table image carries the scores for places that show images only.
"""

from __future__ import annotations

import cv2
import numpy as np

from vision.evaluate.match import Role, Ticket
from vision.evaluate.metrics import VideoMatch

FONT = cv2.FONT_HERSHEY_SIMPLEX
INK = (40, 40, 40)
GRID = (225, 225, 225)
INCIDENT = (90, 170, 90)
AMBIGUOUS = (185, 185, 185)
TICKET = {
    Role.PRIMARY: (200, 120, 40),
    Role.DUPLICATE: (0, 150, 255),
    Role.FALSE: (50, 50, 215),
    Role.AMBIGUOUS: (150, 150, 150),
}
LEFT, RIGHT, TOP, ROW = 190, 30, 50, 16


def _text(
    img: np.ndarray, text: str, x: int, y: int, scale: float = 0.45, color=INK, bold: bool = False
) -> None:
    cv2.putText(img, text, (x, y), FONT, scale, color, 2 if bold else 1, cv2.LINE_AA)


def _lanes(video: VideoMatch) -> list[tuple[str, str]]:
    keys = {(i.type, i.zone) for i in video.incidents} | {(t.type, t.zone) for t in video.tickets}
    return sorted(keys | set(video.watched))


def _stack(spans: list[tuple[float, float]]) -> list[int]:
    """A sub-row per span so that spans sharing a row never overlap."""
    ends: list[float] = []
    rows = []
    for start, end in spans:
        row = next((r for r, e in enumerate(ends) if e <= start), len(ends))
        if row == len(ends):
            ends.append(end)
        ends[row] = end
        rows.append(row)
    return rows


def timeline_png(name: str, video: VideoMatch, video_end: float) -> bytes:
    """Incidents (green, grey when ambiguous) over tickets (coloured by verdict) for one video."""
    width = 1200
    span = max(video_end, max((i.end or 0.0 for i in video.incidents), default=0.0), 1.0)

    def x(t: float) -> int:
        return LEFT + round((width - LEFT - RIGHT) * min(max(t, 0.0), span) / span)

    lanes = []
    for key in _lanes(video):
        incs = [(k, i) for k, i in enumerate(video.incidents) if (i.type, i.zone) == key]
        tix = [(k, t) for k, t in enumerate(video.tickets) if (t.type, t.zone) == key]
        inc_rows = _stack([(i.start, span if i.end is None else i.end) for _, i in incs])
        tix_rows = _stack([(t.opened_at, t.until(span)) for _, t in tix])
        lanes.append((key, incs, inc_rows, tix, tix_rows))
    heights = [
        max((max(ir, default=-1) + max(tr, default=-1) + 2) * ROW + 24, 48) for _, _, ir, _, tr in lanes
    ]
    height = TOP + sum(heights) + 70
    img = np.full((height, width, 3), 255, np.uint8)
    _text(img, f"{name}: incidents (above) and tickets (below), seconds of video", 10, 24, 0.55, bold=True)
    step = next(s for s in (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600) if span / s <= 12)
    y = TOP
    for (key, incs, inc_rows, tix, tix_rows), lane_h in zip(lanes, heights, strict=True):
        cv2.rectangle(img, (LEFT, y), (width - RIGHT, y + lane_h - 6), (248, 248, 248), -1)
        _text(img, key[0], 10, y + 18, bold=True)
        _text(img, f"zone {key[1]}", 10, y + 36)
        for (number, inc), row in zip(incs, inc_rows, strict=True):
            top = y + 6 + row * ROW
            end = span if inc.end is None else inc.end
            color = AMBIGUOUS if inc.ambiguous else INCIDENT
            cv2.rectangle(img, (x(inc.start), top), (max(x(end), x(inc.start) + 2), top + ROW - 4), color, -1)
            if x(end) - x(inc.start) > 30:  # its number in the report's incident table
                _text(
                    img,
                    f"#{number}",
                    x(inc.start) + 4,
                    top + ROW - 6,
                    0.38,
                    (255, 255, 255),
                )
        base = y + 6 + (max(inc_rows, default=-1) + 1) * ROW + 4
        for (k, ticket), row in zip(tix, tix_rows, strict=True):
            _ticket(img, ticket, video.matching.roles[k], base + row * ROW, x, span)
        y += lane_h
    for t in np.arange(0.0, span + 1e-6, step):
        cv2.line(img, (x(t), TOP - 4), (x(t), y), GRID, 1)
        _text(img, f"{t:g}s", x(t) - 10, y + 16, 0.4)
    _legend(img, height - 22)
    return cv2.imencode(".png", img)[1].tobytes()


def _ticket(img: np.ndarray, ticket: Ticket, role: Role, top: int, x, span: float) -> None:
    color = TICKET[role]
    x0, x1 = x(ticket.opened_at), x(ticket.until(span))
    cv2.rectangle(img, (x0, top), (max(x1, x0 + 2), top + ROW - 4), color, -1)
    cv2.line(img, (x0, top - 2), (x0, top + ROW - 2), INK, 2)  # the moment it opened
    for closed in ticket.reopened_after:  # closed, then the same ticket reopened
        cv2.line(img, (x(closed), top), (x(closed), top + ROW - 4), (255, 255, 255), 2)
    if ticket.resolved_at is None:  # still open at the end: an arrow
        mid = top + (ROW - 4) // 2
        cv2.fillPoly(img, [np.array([[x1, top], [x1 + 8, mid], [x1, top + ROW - 4]], np.int32)], color)
    else:
        cv2.line(img, (x1, top - 2), (x1, top + ROW - 2), INK, 1)


def _legend(img: np.ndarray, y: int) -> None:
    items = [
        ("incident", INCIDENT),
        ("ambiguous incident", AMBIGUOUS),
        *((f"ticket: {role.value}", color) for role, color in TICKET.items()),
    ]
    x = 10
    for label, color in items:
        cv2.rectangle(img, (x, y - 10), (x + 18, y + 2), color, -1)
        _text(img, label, x + 24, y, 0.42)
        x += 40 + cv2.getTextSize(label, FONT, 0.42, 1)[0][0]


def table_png(title: str, header: list[str], rows: list[list[str]]) -> bytes:
    """A plain table image: a bold header row, zebra rows, columns as wide as their text."""
    scale, pad, row_h = 0.45, 10, 26
    cells = [header, *rows]
    widths = [
        max(cv2.getTextSize(r[c], FONT, scale, 2)[0][0] for r in cells) + 2 * pad for c in range(len(header))
    ]
    width = max(sum(widths), cv2.getTextSize(title, FONT, 0.55, 2)[0][0] + 20)
    img = np.full((40 + row_h * len(cells) + 10, width, 3), 255, np.uint8)
    _text(img, title, 10, 26, 0.55, bold=True)
    for r, row in enumerate(cells):
        top = 40 + r * row_h
        if r == 0 or r % 2 == 0:
            cv2.rectangle(
                img, (0, top), (width, top + row_h), (230, 230, 230) if r == 0 else (246, 246, 246), -1
            )
        x = 0
        for c, cell in enumerate(row):
            _text(img, cell, x + pad, top + 18, scale, bold=r == 0)
            x += widths[c]
    return cv2.imencode(".png", img)[1].tobytes()
