"""What rules read about tracks: one row per confirmed track, one numpy array per field.

A rule looks its boxes up by ``track_id`` (``rows``) and reads whole columns, so the
per-frame work stays vectorized; nothing here holds a Python object per track.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class BoxHistory:
    """Recent detections of one track, oldest first."""

    times: np.ndarray  # float64 [K], stream seconds
    boxes: np.ndarray  # float32 [K, 4] xyxy
    scores: np.ndarray  # float32 [K]


def row_medians(values: np.ndarray) -> np.ndarray:
    """Median of each row of a [T, H] array, ignoring NaN (rows with no value give NaN).

    Sorting puts NaN last, so the median sits at fixed positions of each row's valid count;
    this avoids np.nanmedian's slow masked path (and take_along_axis's set-up: plain indexing).
    A row with no value picks its last and first element, both NaN: no special case needed.
    """
    rows, width = values.shape
    if rows == 0:
        return np.zeros(0, values.dtype)
    ordered = np.sort(values, axis=1)
    n = width - np.isnan(values).sum(axis=1)
    index = np.arange(rows)
    return (ordered[index, (n - 1) // 2] + ordered[index, n // 2]) * 0.5


@dataclass(frozen=True, slots=True)
class TrackTable:
    """Confirmed tracks of one camera after the frame at ``pts``, lost ones (not yet expired) included.

    Arrays are copies, read-only: the table stays valid after the tracker moves on.
    """

    pts: float
    track_id: np.ndarray  # int64 [T]
    class_id: np.ndarray  # int32 [T], majority vote over the track's boxes
    first_seen: np.ndarray  # float64 [T], pts of the track's first box (before it was confirmed)
    last_seen: np.ndarray  # float64 [T], pts of its latest box
    hits: np.ndarray  # int32 [T], boxes matched over the track's life
    streak: np.ndarray  # int32 [T], consecutive frames with a box up to now (0 while lost)
    median_score: np.ndarray  # float32 [T], over the kept boxes (Frigate's `threshold` test)
    box: np.ndarray  # float32 [T, 4], latest detected box
    predicted: np.ndarray  # float32 [T, 4], where the tracker expects it at pts (carried on while lost)
    stationary_since: np.ndarray  # float64 [T], when it came to rest where it is (first_seen if never moved)
    stationary_time: float  # seconds at rest before `stationary` turns on
    history_window: float  # seconds of history returned by `history`
    history_times: np.ndarray  # float64 [T, H] ring buffer, NaN where empty
    history_boxes: np.ndarray  # float32 [T, H, 4]
    history_scores: np.ndarray  # float32 [T, H]

    @classmethod
    def empty(cls, pts: float = 0.0) -> TrackTable:
        """No tracks (before the first frame)."""
        f64, i32 = np.zeros(0, np.float64), np.zeros(0, np.int32)
        return cls(
            pts,
            np.zeros(0, np.int64),
            i32,
            f64,
            f64,
            i32,
            i32,
            np.zeros(0, np.float32),
            np.zeros((0, 4), np.float32),
            np.zeros((0, 4), np.float32),
            f64,
            0.0,
            0.0,
            np.zeros((0, 0)),
            np.zeros((0, 0, 4), np.float32),
            np.zeros((0, 0), np.float32),
        )

    def __len__(self) -> int:
        return int(self.track_id.shape[0])

    @property
    def lost(self) -> np.ndarray:
        """Tracks with no box on the latest frame (occluded or missed), kept until max_lost."""
        return self.last_seen < self.pts

    @property
    def stationary_seconds(self) -> np.ndarray:
        """Seconds each object has been at rest where it is, up to its latest box."""
        return self.last_seen - self.stationary_since

    @property
    def stationary(self) -> np.ndarray:
        """At rest for at least ``stationary_time`` (box overlap with its resting box, as Frigate)."""
        return self.stationary_seconds >= self.stationary_time

    def rows(self, track_ids: np.ndarray) -> np.ndarray:
        """Row of each id in this table, -1 for ids it does not hold (-1 itself, expired tracks)."""
        ids = np.asarray(track_ids, np.int64)
        order = np.argsort(self.track_id, kind="stable")
        sorted_ids = self.track_id[order]
        pos = np.clip(np.searchsorted(sorted_ids, ids), 0, max(len(order) - 1, 0))
        if len(order) == 0:
            return np.full(ids.shape, -1, np.int64)
        found = sorted_ids[pos] == ids
        return np.where(found, order[pos], -1).astype(np.int64)

    def history(self, track_id: int) -> BoxHistory:
        """The track's boxes of the last ``history_window`` seconds; a KeyError names an unknown id."""
        row = int(self.rows(np.array([track_id]))[0])
        if row < 0:
            raise KeyError(f"track {track_id} is not in the table (unknown, unconfirmed or expired)")
        times = self.history_times[row]
        keep = np.flatnonzero(times >= self.pts - self.history_window)
        keep = keep[np.argsort(times[keep], kind="stable")]
        return BoxHistory(times[keep], self.history_boxes[row, keep], self.history_scores[row, keep])
