"""The camera unit: everything one camera knows after the detector, as one object that can move.

A unit holds the camera's analysis (masks, tracker, scene models, rules) and its own
lifecycle. It is fed frames and their detections and returns transitions; it never
touches a source, a store or the wall clock. :meth:`CameraUnit.snapshot` writes out all
that must survive a restart (episodes and their timers, reopenable closes, the rules'
memory of subjects, the tracker's next id, the background model and the heatmap) and
:meth:`CameraUnit.restore` takes it back in a new process, so the same tickets carry on.

Clocks. A unit runs on its *camera clock*: the stream's pts plus an offset that is 0 for
a camera that never restarted. A restored unit continues its clock from the snapshot:
the first frame after a restore is stamped ``snapshot pts + gap`` (``gap``: the wall time
the camera was not watched, for a live camera; 0 for a file read as fast as possible),
and later frames follow the stream from there. Restored episodes come back paused, so
the gap is unknown time: it never opens, closes or forgets anything, but it does age
reopen windows, cooldowns and expiry as real time would.

Sight. Beside the camera clock the unit keeps a *sight clock*, the seconds it was really
watching (stream time between frames seen in a row). Rules age their subjects on it, so
an outage never makes a rule forget what a ticket is about.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from vision.camera.analysis import CameraAnalysis
from vision.camera.packing import pack, unpack
from vision.config import CameraConfig, EventsConfig
from vision.events.lifecycle import Key, Lifecycle
from vision.geometry import polygon_iou
from vision.types import CloseReason, Condition, Detections, Event, Frame, Observation, Report, Transition

SNAPSHOT_VERSION = 1
SAME_PLACE_IOU = 0.5  # a redrawn zone overlapping its old self less than this is another place


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A unit's state: ``state`` is JSON-ready; ``arrays`` the image-sized models (packing.py's bytes)."""

    state: dict[str, Any]
    arrays: bytes | None = None


class CameraUnit:
    """One camera: analysis + lifecycle, fed frames, giving transitions; snapshot and restore."""

    def __init__(self, camera_id: str, camera: CameraConfig, names: dict[int, str], events: EventsConfig):
        self.camera_id = camera_id
        self.camera = camera
        self.events = events
        self.analysis = CameraAnalysis(camera_id, camera, names, events)
        self.lifecycle = Lifecycle(dict(self.analysis.timers))
        self.offset = 0.0  # camera clock = stream pts + offset
        self.last_pts: float | None = None  # camera clock of the last frame or unknown
        self.sight = 0.0
        self._dark = False  # an unknown since the last frame: the gap is not sight
        self._resume: float | None = None  # camera clock the next frame gets, after a restore
        self._restored: set[Key] = set()
        self._grace_until = 0.0  # sight clock until which restored episodes cannot be seen gone

    # -- frames -------------------------------------------------------------------------------

    def stamp(self, frame: Frame) -> Frame:
        """The frame on the camera clock (call once per frame, before anything reads its pts)."""
        if self._resume is not None:
            self.offset = self._resume - frame.pts
            self._resume = None
        return frame if self.offset == 0 else replace(frame, pts=frame.pts + self.offset)

    def camera_time(self, stream_pts: float) -> float:
        """A stream time on the camera clock (before the first frame after a restore: where it resumes)."""
        return stream_pts + self.offset if self._resume is None else self._resume

    def stream_pts(self, pts: float) -> float:
        """A camera-clock time back on the stream's own clock (for the reader's wall anchor)."""
        return pts - self.offset

    def process(self, frame: Frame, detections: Detections | None) -> tuple[Detections, list[Transition]]:
        """One stamped frame and its detections in; tracked detections and transitions out.

        ``detections`` None: a frame the detector skipped because nothing moved in the zones
        (the motion gate): it carries the last detected frame's verdict, as if the detector had
        found the same boxes again (vision/camera/analysis.py), so what was there stays there and
        what was gone stays gone, and the timers of both run on over it. The gate carries a verdict
        at most ``motion_gate.max_skip`` seconds of stream time before it detects again."""
        if self.last_pts is not None and not self._dark:
            self.sight += max(0.0, frame.pts - self.last_pts)
        self.last_pts, self._dark = frame.pts, False
        keys = self.lifecycle.live_keys()
        keep = frozenset((zone, rule, subject) for _, zone, rule, subject in keys)
        detections, observations = self.analysis.process(frame, detections, self.sight, keep)
        observations += self._unreported(observations, keys, frame.pts)
        if self._restored and self.sight < self._grace_until:
            observations = [self._in_grace(obs) for obs in observations]
        return detections, self._feed(observations)

    def unknown(self, pts: float) -> list[Transition]:
        """The camera cannot see (stalled, offline, in error) at camera-clock ``pts``: every episode
        under way is UNKNOWN (timers pause; one unseen past ``expire_after`` expires)."""
        self._dark = True
        if self.last_pts is None or pts > self.last_pts:
            self.last_pts = pts
        observations = [
            Observation(rule, camera, zone, subject, pts, Condition.UNKNOWN)
            for camera, zone, rule, subject in self.lifecycle.live_keys()
        ]
        return self._feed(observations)

    def open_events(self) -> list[Event]:
        return self.lifecycle.open_events()

    def event(self, event_id: str) -> Event | None:
        """The event of an episode under way, if one carries ``event_id``."""
        key = self.lifecycle.find(event_id)
        return None if key is None else self.lifecycle.tracks[key].event

    def report(self, event_id: str, report: Report, note: str | None = None) -> list[Transition] | None:
        """What the ticketing side (or an operator: ``note`` is the reason of a close by hand) reports
        about one of this camera's events, applied between frames at the camera's last time; None when no
        episode under way carries that event (closed already)."""
        key = self.lifecycle.find(event_id)
        if key is None:
            return None
        return self.lifecycle.report(key, report, self.last_pts or 0.0, note)

    # -- configuration ------------------------------------------------------------------------

    def reconfigure(self, camera: CameraConfig) -> list[Transition]:
        """New zones and rules between two frames: episodes whose zone or rule is gone, or whose zone
        moved to another place, close with that reason; the rest carry on with their rules' memory."""
        old = _zones(self.camera)
        transitions = self._reconcile(old, camera, self.last_pts or 0.0)
        same = frozenset(
            (zone, rule)
            for zone, (polygon, rules) in old.items()
            for rule in rules
            if zone in camera.zones and _same_place(polygon, camera.zones[zone].polygon)
        )
        self.camera = camera
        self.analysis.reconfigure(camera, same)
        self.lifecycle.timers = dict(self.analysis.timers)
        return transitions

    # -- snapshot / restore -------------------------------------------------------------------

    def snapshot(self, with_arrays: bool = True) -> Snapshot:
        """Everything that must outlive this process; ``with_arrays`` adds the image-sized models
        (background, heatmap: a few hundred KB), which a checkpoint needs and a transition does not."""
        state = {
            "version": SNAPSHOT_VERSION,
            "camera": self.camera_id,
            "pts": self.last_pts,
            "sight": self.sight,
            "zones": {name: [polygon, rules] for name, (polygon, rules) in _zones(self.camera).items()},
            "rules": {f"{zone}/{rule}": r.state() for (zone, rule), r in self.analysis.by_key().items()},
            "lifecycle": self.lifecycle.state(),
            "tracker": self.analysis.tracker.state(),
        }
        return Snapshot(state, self._arrays() if with_arrays else None)

    def restore(self, snapshot: Snapshot | None, stored: list[Event], gap: float) -> list[Transition]:
        """Carry on from ``snapshot`` and the camera's open events in the store (the truth about which
        tickets are open; an event the snapshot lacks is adopted as open and paused). Returns the
        closes that the configuration now calls for (zone, rule gone; zone moved; expired), stamped at
        the snapshot's time; the next frame continues the camera clock ``gap`` seconds later."""
        state = snapshot.state if snapshot is not None else {}
        pts = state.get("pts")
        if pts is None:
            pts = max((_last_time(e) for e in stored), default=0.0)
        self.last_pts, self.sight = float(pts), float(state.get("sight", 0.0))
        if state:
            self.lifecycle.load(state["lifecycle"])
            self.analysis.tracker.load(state["tracker"])
            rules = self.analysis.by_key()
            for name, rule_state in state["rules"].items():
                zone, rule = name.split("/", 1)
                if (zone, rule) in rules:
                    rules[(zone, rule)].load(rule_state)
        if snapshot is not None and snapshot.arrays:
            self._load_arrays(snapshot.arrays)
        for event in stored:
            self.lifecycle.adopt(event, self.last_pts)
        old = {name: (p, r) for name, (p, r) in state.get("zones", {}).items()}
        for event in stored:  # adopted without a snapshot: compare with the config only
            old.setdefault(event.zone, (None, []))
        transitions = self._reconcile(old, self.camera, self.last_pts)
        self._restored = set(self.lifecycle.live_keys())
        self._grace_until = self.sight + self.events.restart_grace
        self._resume = self.last_pts + max(0.0, gap)
        transitions += self.unknown(self._resume)  # the gap was unknown time: expiry may fall due
        return transitions

    # -- internals ----------------------------------------------------------------------------

    def _feed(self, observations: list[Observation]) -> list[Transition]:
        return [t for obs in observations for t in self.lifecycle.update(obs)]

    def _unreported(self, observations: list[Observation], keys: list[Key], pts: float) -> list[Observation]:
        """FALSE for open episodes their rule said nothing about although the camera sees (a subject
        the rule does not know, e.g. a person track that ended with the process that tracked it)."""
        if not keys:  # no episode under way (most frames of a quiet street): none to check
            return []
        said = {(o.zone, o.rule, o.subject) for o in observations}
        rules = self.analysis.by_key()
        return [
            Observation(rule, camera, zone, subject, pts, Condition.FALSE)
            for camera, zone, rule, subject in keys
            if (zone, rule, subject) not in said
            and (zone, rule) in rules
            and not self.lifecycle.is_pending((camera, zone, rule, subject))
        ]

    def _in_grace(self, obs: Observation) -> Observation:
        key = (obs.camera_id, obs.zone, obs.rule, obs.subject)
        if obs.condition is Condition.FALSE and key in self._restored:
            return replace(obs, condition=Condition.UNKNOWN)
        return obs

    def _reconcile(
        self, old: dict[str, tuple[Any, list[str]]], camera: CameraConfig, pts: float
    ) -> list[Transition]:
        transitions = []
        for key in self.lifecycle.live_keys():
            _, zone, rule, _ = key
            reason = None
            if zone not in camera.zones:
                reason = CloseReason.ZONE_REMOVED
            elif getattr(camera.zones[zone].rules, rule, None) is None:
                reason = CloseReason.RULE_REMOVED
            elif old.get(zone, (None, []))[0] is not None and not _same_place(
                old[zone][0], camera.zones[zone].polygon
            ):
                reason = CloseReason.ZONE_CHANGED
            if reason is None:
                continue
            if self.lifecycle.is_pending(key):
                self.lifecycle.forget(key)
            else:
                transitions.append(self.lifecycle.close(key, reason, pts))
        return transitions

    def _arrays(self) -> bytes | None:
        arrays = {f"static.{k}": v for k, v in self.analysis.scene.static_arrays().items()}
        heatmap = self.analysis.scene.heatmap
        arrays |= {"heatmap.grid": heatmap.grid}
        if heatmap.last_pts is not None:
            arrays["heatmap.last_pts"] = np.array(heatmap.last_pts)
        return pack(arrays)

    def _load_arrays(self, data: bytes) -> None:
        arrays = unpack(data)
        static = {k.removeprefix("static."): v for k, v in arrays.items() if k.startswith("static.")}
        self.analysis.scene.load_static_arrays(static)
        heatmap = self.analysis.scene.heatmap
        grid = arrays.get("heatmap.grid")
        if grid is not None and grid.shape == heatmap.grid.shape:
            heatmap.grid = grid.astype(np.float32)
            if "heatmap.last_pts" in arrays:
                heatmap.last_pts = float(arrays["heatmap.last_pts"])


def _zones(camera: CameraConfig) -> dict[str, tuple[list[list[float]], list[str]]]:
    """Each zone's polygon and rule names, as plain values (kept in snapshots to compare configs)."""
    return {
        name: (
            [[float(x), float(y)] for x, y in zone.polygon],
            [rule for rule in type(zone.rules).model_fields if getattr(zone.rules, rule) is not None],
        )
        for name, zone in camera.zones.items()
    }


def _same_place(old: Any, new: Any) -> bool:
    return polygon_iou(np.asarray(old, np.float64), np.asarray(new, np.float64)) >= SAME_PLACE_IOU


def _last_time(event: Event) -> float:
    """The latest stream time an event's record names."""
    return max(t for t in (event.first_seen, event.opened_at, event.reopened_at) if t is not None)
