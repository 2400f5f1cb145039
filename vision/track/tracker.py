"""ByteTrack-style multi-object tracking for one camera, timed by the frames' own pts.

Each frame: predict every track to the frame's time (Kalman, dt in stream seconds; a
lost track moves on its velocity only until ``lost_motion`` after it was last seen, and
may also match at its last seen box, in case it stopped, and a track at rest at its
resting box), match
high-score boxes to confirmed tracks, then low-score boxes to confirmed tracks still
unmatched that were seen on the previous frame (ByteTrack's recovery of occluded,
low-confidence objects), then the remaining high-score boxes to tentative tracks.
Unmatched high-score boxes start tentative tracks, which get an id after ``min_hits``
consecutive boxes. A confirmed track survives ``max_lost`` seconds without boxes, so
a short occlusion keeps its id, first_seen and rest time.

All per-track state lives in numpy arrays (one row per track); a frame allocates a
few arrays, never a Python object per box. At a handful of boxes each numpy call costs
more than its arithmetic, so a frame makes few: a frame with no box and no track does
nothing, one without both matches nothing, a track's class is kept as its votes change
(benchmarks/tracker_cost.md counts the calls per frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from operator import attrgetter

import numpy as np

from vision.track import appearance, kalman
from vision.track.config import TrackerConfig
from vision.track.match import assignment, associate, gate, overlaps
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
    class_id: np.ndarray  # int32, the class most of its boxes had (argmax of votes, kept as they change)
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
        none = Detections.empty()
        return cls.new(none.xyxy, none.score, none.class_id, 0.0, history, 1)

    @classmethod
    def new(
        cls, xyxy: np.ndarray, score: np.ndarray, class_id: np.ndarray, pts: float, history: int, classes: int
    ) -> _Tracks:
        """Tentative tracks started at ``pts`` by boxes ``xyxy`` (with their ``score`` and ``class_id``).
        Columns may share memory (the same times, the box twice): they only ever join the table by
        :meth:`extend`, which copies them."""
        n = len(xyxy)
        mean, cov = kalman.initiate(xyxy)
        votes = np.zeros((n, classes), np.int32)
        votes[np.arange(n), class_id] = 1
        hist_t = np.full((n, history), np.nan)
        hist_t[:, 0] = pts
        hist_box = np.zeros((n, history, 4), np.float32)
        hist_box[:, 0] = xyxy
        hist_score = np.full((n, history), np.nan, np.float32)
        hist_score[:, 0] = score
        times = np.full(n, pts)
        ones = np.ones(n, np.int32)
        return cls(
            tid=np.full(n, -1, np.int64),
            first_seen=times,
            last_seen=times,
            hits=ones,
            streak=ones,
            mean=mean,
            cov=cov,
            box=xyxy,
            votes=votes,
            class_id=class_id.astype(np.int32, copy=False),  # as a table shows it, whatever the boxes had
            hist_t=hist_t,
            hist_box=hist_box,
            hist_score=hist_score,
            anchor=xyxy,
            anchor_n=ones,
            rest_since=times,
            away_since=np.full(n, np.nan),
            look=np.full((n, appearance.SIZE), np.nan, np.float32),
        )

    def __len__(self) -> int:
        return int(self.tid.shape[0])

    def take(self, rows: np.ndarray) -> _Tracks:
        return _Tracks(*[column[rows] for column in _columns_of(self)])

    def extend(self, other: _Tracks) -> _Tracks:
        return _Tracks(
            *[np.concatenate(pair) for pair in zip(_columns_of(self), _columns_of(other), strict=True)]
        )

    def widen_votes(self, classes: int) -> None:
        """Make room for class ids below ``classes`` (a model's ids are small and known only as seen)."""
        if classes > self.votes.shape[1]:
            self.votes = np.pad(self.votes, ((0, 0), (0, classes - self.votes.shape[1])))


# every column of a _Tracks in one call, in the order of its constructor (not a getattr per column)
_columns_of = attrgetter(*(f.name for f in fields(_Tracks)))
_NONE = np.zeros(0, np.intp)  # no rows
LOOK_RATE = 0.2  # weight of a confident box's look in its track's moving average (about its last 5 boxes)


def _match(
    overlap: np.ndarray | None, gated: np.ndarray | None, track_rows: np.ndarray, det_rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One matching round by the round's ``gated`` pairs (None: no pair): (matched track rows, their
    box rows, unmatched track rows, unmatched box rows)."""
    if len(track_rows) == 0 or len(det_rows) == 0 or gated is None:  # nothing to match: all left
        return _NONE, _NONE, track_rows, det_rows
    pairs = track_rows[:, None], det_rows  # one fancy index for the round's part of each matrix
    ti, di = associate(overlap[pairs], gated[pairs])
    taken_t = np.zeros(len(track_rows), bool)  # np.zeros is one C call, np.ones a wrapper of two
    taken_t[ti] = True
    taken_d = np.zeros(len(det_rows), bool)
    taken_d[di] = True
    return track_rows[ti], det_rows[di], track_rows[~taken_t], det_rows[~taken_d]


class Tracker:
    """Tracks of one camera; feed it every detected frame of that camera in pts order."""

    def __init__(self, config: TrackerConfig) -> None:
        self.config = config
        self.reset()
        assignment()  # what tracking imports and builds once, at start-up, not at a frame
        appearance.colour_bins()

    def reset(self) -> None:
        """Forget every track and restart ids at 0 (a new stream, or a new evaluation run)."""
        self._tracks = _Tracks.empty(self.config.history_boxes)
        self._next_id = 0
        self._pts: float | None = None
        self._no_tracks = self._table_columns(_NONE)  # the table's columns with no track (read-only)

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
        before = pts if self._pts is None else self._pts
        dt = pts - before
        self._pts = pts
        t = self._tracks
        n = len(detections)
        out = np.full(n, -1, np.int64)
        if not n and not len(t):  # nothing tracked, nothing seen: nothing changes but the time
            return Detections(detections.xyxy, detections.score, detections.class_id, out, detections.data)
        if n:
            t.widen_votes(int(detections.class_id.max()) + 1)
        was_tracked = t.streak > 0
        lost = ~was_tracked
        if len(t):
            # a lost track moves on its velocity until lost_motion after it was last seen, then holds
            # still (np.clip's wrapper costs more than its two ufuncs)
            moving = np.minimum(np.maximum(cfg.lost_motion - (before - t.last_seen), 0.0), dt)
            kalman.predict(t.mean, t.cov, dt, lost, np.where(lost, moving, dt))
        score = detections.score
        is_high = score >= cfg.high_score
        looking = image is not None and n > 0 and cfg.appearance_distance < 1.0
        if looking:
            appearance.check_frame(image)  # as where every box's look was taken
        seen = confident = None  # the looks of the boxes that need one, and which boxes those are
        if len(t) and n:
            slots, dets, new_rows, anchored, seen, confident = self._associate(
                detections, is_high, was_tracked, lost, image if looking else None
            )
        else:  # nothing to match: every high-score box may start a track
            slots = dets = _NONE
            new_rows = is_high.nonzero()[0]

        matched = np.zeros(len(t), bool)
        matched[slots] = True
        t.streak += matched
        t.streak *= matched  # one more box in a row for each matched track, 0 for every other
        if len(slots):
            hits = t.hits[slots]  # boxes before this frame's: where it goes in the history ring
            t.hits += matched
            ring = hits % t.hist_t.shape[1]
            boxes = detections.xyxy[dets], score[dets], detections.class_id[dets]
            self._correct(slots, ring, *boxes, anchored[slots, dets], pts)
            ids = t.tid[slots]
            promote = (ids < 0) & (hits >= cfg.min_hits - 1)  # counting this frame's box
            if promote.any():  # new ids in the order of the matched tracks
                ids[promote] = self._new_ids(int(np.count_nonzero(promote)))
                t.tid[slots] = ids
            if confident is not None:
                # a confident box of a confirmed track: its look joins the track's moving average
                keep = (confident[dets] & (ids >= 0)).nonzero()[0]
                if len(keep):
                    self._remember_looks(slots[keep], seen[dets[keep]])
            out[dets] = ids

        alive = np.where(t.tid >= 0, pts - t.last_seen <= cfg.max_lost, matched).nonzero()[0]
        if len(alive) < len(t):
            t = t.take(alive)
        starts = new_rows[score[new_rows] >= cfg.new_track_score]
        if len(starts):
            born = _Tracks.new(
                detections.xyxy[starts],
                score[starts],
                detections.class_id[starts],
                pts,
                cfg.history_boxes,
                t.votes.shape[1],
            )
            if cfg.min_hits <= 1:
                born.tid[:] = self._new_ids(len(starts))
                out[starts] = born.tid
            t = t.extend(born)
        self._tracks = t
        return Detections(detections.xyxy, detections.score, detections.class_id, out, detections.data)

    def _associate(
        self,
        detections: Detections,
        is_high: np.ndarray,
        was_tracked: np.ndarray,
        lost: np.ndarray,
        image: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """ByteTrack's three matching rounds of the tracks (predicted to this frame) and the frame's
        boxes, with the looks of ``image`` if given (the appearance check on): (matched track rows,
        their box rows, unmatched high-score box rows, [T, N] IoU of each track's resting box with each
        box, the looks, the confident boxes: :meth:`_looks`)."""
        t, cfg = self._tracks, self.config
        # every track against every box once; each matching round below takes its part
        overlap, anchored = overlaps(*self._guesses(was_tracked), t.anchor, detections.xyxy)
        same = t.class_id[:, None] == detections.class_id if cfg.same_class else None
        # the pairs high-score boxes may match (the first and third rounds), less strangers (_looks)
        near = gate(overlap, cfg.match_iou, same)
        seen = confident = None
        if image is not None:
            seen, confident = self._looks(overlap, near, lost, is_high, image, detections.xyxy)
        score = detections.score
        high = is_high.nonzero()[0]
        low = ((score >= cfg.low_score) & ~is_high).nonzero()[0]
        confirmed = t.tid >= 0
        t1, d1, rest_tracks, rest_high = _match(overlap, near, confirmed.nonzero()[0], high)
        seen_last = rest_tracks[was_tracked[rest_tracks]]
        # low-score boxes never meet strangers (high-score boxes alone): their gate takes ``same`` as is
        low_gate = gate(overlap, cfg.low_match_iou, same) if len(seen_last) and len(low) else None
        t2, d2, _, _ = _match(overlap, low_gate, seen_last, low)
        t3, d3, _, new_rows = _match(overlap, near, (~confirmed).nonzero()[0], rest_high)
        slots = np.concatenate([t1, t2, t3])
        dets = np.concatenate([d1, d2, d3])
        return slots, dets, new_rows, anchored, seen, confident

    def _guesses(self, was_tracked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each track's two guesses of where it is now: its predicted box, and its last seen box if it
        was lost (it may have stopped), or its resting box if it is at rest (whatever a partial box, a
        passer-by hiding half of it, made of its prediction: a second track born of such a box cannot
        take it)."""
        t = self._tracks
        predicted = kalman.to_xyxy(t.mean)
        at_rest = t.last_seen - t.rest_since >= self.config.stationary_time
        other = np.where(at_rest[:, None], t.anchor, np.where(was_tracked[:, None], predicted, t.box))
        return predicted, other

    def _correct(
        self,
        slots: np.ndarray,
        ring: np.ndarray,
        xyxy: np.ndarray,
        score: np.ndarray,
        class_id: np.ndarray,
        anchored: np.ndarray,
        pts: float,
    ) -> None:
        """Fold matched boxes into their tracks (``ring``: each one's place in its history; ``anchored``:
        each box's IoU with its track's resting box): Kalman, votes, history, rest state."""
        t = self._tracks
        t.mean[slots], t.cov[slots] = kalman.correct(t.mean[slots], t.cov[slots], xyxy)
        t.last_seen[slots] = pts
        t.box[slots] = xyxy
        t.votes[slots, class_id] += 1
        t.class_id[slots] = t.votes[slots].argmax(axis=1)
        t.hist_t[slots, ring] = pts
        t.hist_box[slots, ring] = xyxy
        t.hist_score[slots, ring] = score
        rest_step(
            t.anchor,
            t.anchor_n,
            t.rest_since,
            t.away_since,
            slots,
            xyxy,
            anchored,
            pts,
            self.config.stationary_iou,
            self.config.move_time,
        )

    def _looks(
        self,
        overlap: np.ndarray,
        near: np.ndarray,
        lost: np.ndarray,
        is_high: np.ndarray,
        image: np.ndarray,
        boxes: np.ndarray,
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """(the looks, the confident boxes): the looks of only the boxes that can use one, taken in one
        call (a call costs more than its boxes); strangers taken out of ``near`` in place.

        Strangers: a ``lost`` confirmed track and a high-score box ``near`` it (the pairs that may match
        in the high-score rounds) whose look is unlike the track's may not match. Confident boxes: a
        high score and no track where the box is but one, whose colours would not blend into it; if
        the box matches that track (a match overlaps) and it is confirmed, the box's look joins the
        track's. Looks of these boxes alone; none if there are none, as with no lost track and every
        box among others."""
        t, cfg = self._tracks, self.config
        confident = is_high & ((overlap > 0.0).sum(axis=0) == 1)
        has_look = t.look[:, 0] == t.look[:, 0]  # not NaN
        rows = (lost & (t.tid >= 0) & has_look).nonzero()[0]
        ti = di = _NONE
        need = confident
        if len(rows):
            ti, di = (near[rows] & is_high).nonzero()
            if len(di):
                need = confident.copy()
                need[di] = True
        wanted = need.nonzero()[0]
        if not len(wanted):
            return None, confident
        if len(wanted) == len(need):
            seen = appearance.looks(image, boxes)
        else:
            seen = np.empty((len(need), appearance.SIZE), np.float32)  # rows not wanted are never read
            seen[wanted] = appearance.looks(image, boxes[wanted])
        if len(ti):
            far = appearance.distance(t.look[rows[ti]], seen[di]) > cfg.appearance_distance
            if far.any():
                near[rows[ti[far]], di[far]] = False
        return seen, confident

    def _remember_looks(self, slots: np.ndarray, new: np.ndarray) -> None:
        """Fold looks ``new`` into the moving averages of tracks ``slots``; a track's first look sets its."""
        t = self._tracks
        old = t.look[slots]
        t.look[slots] = np.where(np.isnan(old[:, :1]), new, old + LOOK_RATE * (new - old))

    def _new_ids(self, count: int) -> np.ndarray:
        ids = np.arange(self._next_id, self._next_id + count, dtype=np.int64)
        self._next_id += count
        return ids

    def tracks(self) -> TrackTable:
        """Confirmed tracks after the latest frame (lost ones included until they expire)."""
        rows = (self._tracks.tid >= 0).nonzero()[0]
        return TrackTable(
            pts=self._pts if self._pts is not None else 0.0,
            stationary_time=self.config.stationary_time,
            history_window=self.config.history,
            **(self._table_columns(rows) if len(rows) else self._no_tracks),
        )

    def _table_columns(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The columns a table shows of tracks ``rows``: read-only copies, nothing else."""
        t = self._tracks
        columns = {
            "track_id": t.tid[rows],
            "class_id": t.class_id[rows],
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
        return columns
