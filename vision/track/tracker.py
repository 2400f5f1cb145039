"""ByteTrack-style multi-object tracking for one camera, timed by the frames' own pts.

Each frame: predict every track to the frame's time (Kalman, dt in stream seconds;
a lost track may also match at its last seen box, in case it stopped, and a track at
rest at its resting box), match
high-score boxes to confirmed tracks, then low-score boxes to confirmed tracks still
unmatched that were seen on the previous frame (ByteTrack's recovery of occluded,
low-confidence objects), then the remaining high-score boxes to tentative tracks.
Unmatched high-score boxes start tentative tracks, which get an id after ``min_hits``
consecutive boxes. A confirmed track survives ``max_lost`` seconds without boxes, so
a short occlusion keeps its id, first_seen and rest time.

All per-track state lives in numpy arrays (one row per track); a frame allocates a
few arrays, never a Python object per box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from vision.track import appearance, kalman
from vision.track.config import TrackerConfig
from vision.track.match import associate, overlaps
from vision.track.stationary import rest_step
from vision.track.table import TrackTable, row_medians
from vision.types import Detections


@dataclass(slots=True)
class _Tracks:
    """Per-track state, one row per live track (tentative ones have tid -1)."""

    tid: np.ndarray  # int64
    first_seen: np.ndarray  # float64
    last_seen: np.ndarray  # float64
    hits: np.ndarray  # int32
    streak: np.ndarray  # int32
    mean: np.ndarray  # float64 [8], Kalman state
    cov: np.ndarray  # float64 [3, 4], Kalman covariance per coordinate (kalman.py)
    box: np.ndarray  # float32 [4], latest detected box
    votes: np.ndarray  # int32 [C], boxes seen per class id
    hist_t: np.ndarray  # float64 [H], ring buffer indexed by hits % H; NaN where empty
    hist_box: np.ndarray  # float32 [H, 4]
    hist_score: np.ndarray  # float32 [H]
    anchor: np.ndarray  # float32 [4], resting box
    anchor_n: np.ndarray  # int32, boxes averaged into it
    rest_since: np.ndarray  # float64
    away_since: np.ndarray  # float64, NaN while on the resting box
    look: np.ndarray  # float32 [appearance.SIZE], moving average of its confident boxes' looks; NaN: none yet

    @classmethod
    def empty(cls, history: int) -> _Tracks:
        return cls.new(Detections.empty(), 0.0, history, 1)

    @classmethod
    def new(cls, dets: Detections, pts: float, history: int, classes: int) -> _Tracks:
        """Tentative tracks started by ``dets`` at ``pts``."""
        n = len(dets)
        mean, cov = kalman.initiate(dets.xyxy)
        votes = np.zeros((n, classes), np.int32)
        votes[np.arange(n), dets.class_id] = 1
        hist_t = np.full((n, history), np.nan)
        hist_t[:, 0] = pts
        hist_box = np.zeros((n, history, 4), np.float32)
        hist_box[:, 0] = dets.xyxy
        hist_score = np.full((n, history), np.nan, np.float32)
        hist_score[:, 0] = dets.score
        times = np.full(n, pts)
        return cls(
            tid=np.full(n, -1, np.int64),
            first_seen=times,
            last_seen=times.copy(),
            hits=np.ones(n, np.int32),
            streak=np.ones(n, np.int32),
            mean=mean,
            cov=cov,
            box=dets.xyxy.copy(),
            votes=votes,
            hist_t=hist_t,
            hist_box=hist_box,
            hist_score=hist_score,
            anchor=dets.xyxy.copy(),
            anchor_n=np.ones(n, np.int32),
            rest_since=times.copy(),
            away_since=np.full(n, np.nan),
            look=np.full((n, appearance.SIZE), np.nan, np.float32),
        )

    def __len__(self) -> int:
        return int(self.tid.shape[0])

    def take(self, rows: np.ndarray) -> _Tracks:
        return _Tracks(*(getattr(self, name)[rows] for name in _FIELDS))

    def extend(self, other: _Tracks) -> _Tracks:
        return _Tracks(*(np.concatenate([getattr(self, name), getattr(other, name)]) for name in _FIELDS))

    def widen_votes(self, classes: int) -> None:
        """Make room for class ids below ``classes`` (a model's ids are small and known only as seen)."""
        if classes > self.votes.shape[1]:
            self.votes = np.pad(self.votes, ((0, 0), (0, classes - self.votes.shape[1])))

    def class_id(self) -> np.ndarray:
        return np.argmax(self.votes, axis=1).astype(np.int32)


_FIELDS = tuple(f.name for f in fields(_Tracks))  # in the order of its constructor
_NONE = np.zeros(0, np.intp)  # no rows
LOOK_RATE = 0.2  # weight of a confident box's look in its track's moving average (about its last 5 boxes)


def _rows(mask: np.ndarray) -> np.ndarray:
    """The rows where ``mask`` holds (np.flatnonzero without its wrapper's cost, for 1-D masks)."""
    return mask.nonzero()[0]


class Tracker:
    """Tracks of one camera; feed it every detected frame of that camera in pts order."""

    def __init__(self, config: TrackerConfig) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        """Forget every track and restart ids at 0 (a new stream, or a new evaluation run)."""
        self._tracks = _Tracks.empty(self.config.history_boxes)
        self._next_id = 0
        self._pts: float | None = None

    def state(self) -> dict[str, int]:
        """What must outlive the process: the next id, so a restored camera never reuses one
        (a ticket's subject may name a track id)."""
        return {"next_id": self._next_id}

    def load(self, state: dict[str, int]) -> None:
        self._next_id = max(self._next_id, int(state["next_id"]))

    def update(self, detections: Detections, pts: float, image: np.ndarray | None = None) -> Detections:
        """The same boxes, in the same order, with ``track_id`` set (-1: not part of a confirmed track).

        ``image`` is the frame the boxes were found on (HxWx3 uint8 BGR): with it tracks keep their
        looks and a lost track is found again only on a box that looks like it; without it (boxes
        alone, as the tracking benchmark's) by overlap alone."""
        pts = float(pts)
        if not math.isfinite(pts):
            raise ValueError(f"tracker: frame pts must be a finite number of seconds, got {pts}")
        if self._pts is not None and pts < self._pts:
            raise ValueError(
                f"tracker: frame pts went back from {self._pts:.3f}s to {pts:.3f}s; "
                "frames must come in stream order (call reset() for a new stream)"
            )
        cfg = self.config
        dt = 0.0 if self._pts is None else pts - self._pts
        self._pts = pts
        t = self._tracks
        n = len(detections)
        if n:
            t.widen_votes(int(detections.class_id.max()) + 1)
        was_tracked = t.streak > 0
        kalman.predict(t.mean, t.cov, dt, ~was_tracked)
        predicted = kalman.to_xyxy(t.mean)
        resting = np.where(was_tracked[:, None], predicted, t.box)  # a lost object may have stopped
        # an object at rest is most likely still where it rests, whatever a partial box (a passer-by
        # hiding half of it) made of its prediction: a second track born of such a box cannot take it
        at_rest = t.last_seen - t.rest_since >= cfg.stationary_time
        resting[at_rest] = t.anchor[at_rest]
        # every track against every box once; each matching round below takes its part
        overlap = overlaps(predicted, resting, detections.xyxy) if len(t) and n else None
        same = (
            t.class_id()[:, None] == detections.class_id[None, :]
            if cfg.same_class and overlap is not None
            else None
        )
        seen = None  # the boxes' looks, taken once for both uses (one call costs more than its boxes)
        if image is not None and n and cfg.appearance_distance < 1.0:
            seen = appearance.looks(image, detections.xyxy)
            if overlap is not None:
                same = self._strangers(overlap, same, ~was_tracked, detections.score, seen)

        def match(track_rows: np.ndarray, det_rows: np.ndarray, min_iou: float) -> tuple[np.ndarray, ...]:
            if len(track_rows) == 0 or len(det_rows) == 0 or overlap is None:  # nothing to match: all left
                return _NONE, _NONE, track_rows, det_rows
            ti, di = associate(
                overlap[track_rows][:, det_rows],
                None if same is None else same[track_rows][:, det_rows],
                min_iou,
            )
            unmatched_t = np.ones(len(track_rows), bool)
            unmatched_t[ti] = False
            unmatched_d = np.ones(len(det_rows), bool)
            unmatched_d[di] = False
            return track_rows[ti], det_rows[di], track_rows[unmatched_t], det_rows[unmatched_d]

        score = detections.score
        high = _rows(score >= cfg.high_score)
        low = _rows((score >= cfg.low_score) & (score < cfg.high_score))
        confirmed = _rows(t.tid >= 0)
        tentative = _rows(t.tid < 0)
        t1, d1, rest_tracks, rest_high = match(confirmed, high, cfg.match_iou)
        t2, d2, _, _ = match(rest_tracks[was_tracked[rest_tracks]], low, cfg.low_match_iou)
        t3, d3, _, new_rows = match(tentative, rest_high, cfg.match_iou)
        slots = np.concatenate([t1, t2, t3])
        dets = np.concatenate([d1, d2, d3])

        if len(slots):
            self._correct(slots, detections[dets], pts)
        promote = slots[(t.tid[slots] < 0) & (t.hits[slots] >= cfg.min_hits)]
        t.tid[promote] = self._new_ids(len(promote))
        if seen is not None and len(slots):
            self._remember_looks(slots, dets, detections.score, seen, overlap)
        out = np.full(n, -1, np.int64)
        out[dets] = t.tid[slots]

        matched = np.zeros(len(t), bool)
        matched[slots] = True
        t.streak[~matched] = 0
        alive = np.where(t.tid >= 0, pts - t.last_seen <= cfg.max_lost, matched)
        if not alive.all():
            t = t.take(_rows(alive))
        starts = new_rows[score[new_rows] >= cfg.new_track_score]
        if len(starts):
            born = _Tracks.new(detections[starts], pts, cfg.history_boxes, t.votes.shape[1])
            if cfg.min_hits <= 1:
                born.tid[:] = self._new_ids(len(born))
                out[starts] = born.tid
            t = t.extend(born)
        self._tracks = t
        return Detections(detections.xyxy, detections.score, detections.class_id, out, detections.data)

    def _correct(self, slots: np.ndarray, dets: Detections, pts: float) -> None:
        """Fold matched boxes into their tracks: Kalman, counts, votes, history, rest state."""
        t = self._tracks
        t.mean[slots], t.cov[slots] = kalman.correct(t.mean[slots], t.cov[slots], dets.xyxy)
        t.last_seen[slots] = pts
        t.streak[slots] += 1
        ring = t.hits[slots] % t.hist_t.shape[1]
        t.hits[slots] += 1
        t.box[slots] = dets.xyxy
        t.votes[slots, dets.class_id] += 1
        t.hist_t[slots, ring] = pts
        t.hist_box[slots, ring] = dets.xyxy
        t.hist_score[slots, ring] = dets.score
        t.anchor[slots], t.anchor_n[slots], t.rest_since[slots], t.away_since[slots] = rest_step(
            t.anchor[slots],
            t.anchor_n[slots],
            t.rest_since[slots],
            t.away_since[slots],
            dets.xyxy,
            pts,
            self.config.stationary_iou,
            self.config.move_time,
        )

    def _strangers(
        self,
        overlap: np.ndarray,
        allowed: np.ndarray | None,
        lost: np.ndarray,
        score: np.ndarray,
        seen: np.ndarray,
    ) -> np.ndarray | None:
        """``allowed`` (which track-box pairs may match; None: all) less the pairs of a ``lost``
        confirmed track and a high-score box near it whose look (``seen``) is unlike the track's."""
        t, cfg = self._tracks, self.config
        rows = _rows(lost & (t.tid >= 0) & ~np.isnan(t.look[:, 0]))
        if not len(rows):
            return allowed
        near = (overlap[rows] >= cfg.match_iou) & (score >= cfg.high_score)
        if allowed is not None:
            near &= allowed[rows]
        ti, di = near.nonzero()
        if not len(ti):
            return allowed
        far = appearance.distance(t.look[rows[ti]], seen[di]) > cfg.appearance_distance
        if not far.any():
            return allowed
        out = np.ones(overlap.shape, bool) if allowed is None else allowed.copy()
        out[rows[ti[far]], di[far]] = False
        return out

    def _remember_looks(
        self,
        slots: np.ndarray,
        rows: np.ndarray,
        score: np.ndarray,
        seen: np.ndarray,
        overlap: np.ndarray | None,
    ) -> None:
        """Fold the looks (``seen``) of confirmed tracks' confident boxes (``rows``, matched to ``slots``)
        into their moving averages; a track's first such box sets its look. Confident: a high score, and
        no other track where the box is (``overlap``), whose colours would blend into it."""
        t = self._tracks
        keep = (t.tid[slots] >= 0) & (score[rows] >= self.config.high_score)
        if overlap is not None:
            touching = overlap[:, rows] > 0.0
            keep &= touching.sum(axis=0) - touching[slots, np.arange(len(slots))] == 0
        if not keep.any():
            return
        slots, new = slots[keep], seen[rows[keep]]
        old = t.look[slots]
        t.look[slots] = np.where(np.isnan(old[:, :1]), new, old + LOOK_RATE * (new - old))

    def _new_ids(self, count: int) -> np.ndarray:
        ids = np.arange(self._next_id, self._next_id + count, dtype=np.int64)
        self._next_id += count
        return ids

    def tracks(self) -> TrackTable:
        """Confirmed tracks after the latest frame (lost ones included until they expire)."""
        t = self._tracks
        rows = _rows(t.tid >= 0)  # copies of the columns a table shows, nothing else
        columns = {
            "track_id": t.tid[rows],
            "class_id": t.class_id()[rows],
            "first_seen": t.first_seen[rows],
            "last_seen": t.last_seen[rows],
            "hits": t.hits[rows],
            "streak": t.streak[rows],
            "box": t.box[rows],
            "predicted": kalman.to_xyxy(t.mean[rows]),
            "stationary_since": t.rest_since[rows],
            "history_times": t.hist_t[rows],
            "history_boxes": t.hist_box[rows],
            "history_scores": t.hist_score[rows],
        }
        columns["median_score"] = row_medians(columns["history_scores"])
        for column in columns.values():
            column.flags.writeable = False
        return TrackTable(
            pts=self._pts if self._pts is not None else 0.0,
            stationary_time=self.config.stationary_time,
            history_window=self.config.history,
            **columns,
        )
