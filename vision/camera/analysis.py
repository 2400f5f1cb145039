"""Everything one camera does after the detector: masks, tracking, scene models, rules.

Pure stages: a frame and its detections in, tracked detections and observations out,
with no source, store or clock involved, so a scenario test can drive the very code
the live pipeline runs. The camera unit (unit.py) adds the lifecycle and the snapshots.
"""

from __future__ import annotations

from vision.camera.context import FrameContext
from vision.config import CameraConfig, EventsConfig
from vision.events.lifecycle import Timers
from vision.rules import registry
from vision.rules.base import Rule
from vision.scene.scene import Scene
from vision.track import Tracker
from vision.types import Detections, Frame, Observation

RuleKey = tuple[str, str]  # zone, rule


class CameraAnalysis:
    """One camera's scene, tracker and rules."""

    def __init__(
        self, camera_id: str, camera: CameraConfig, names: dict[int, str], events: EventsConfig
    ) -> None:
        self.camera_id = camera_id
        self.names = names
        self.events = events
        self.scene = Scene.from_config(camera, names)
        self.tracker = Tracker(camera.tracker)
        self.rules = self._build_rules(camera, names, events)
        self.timers = self._timers(events)
        self.last = Detections.empty()  # the last detected frame's boxes (masked), before tracking

    def reconfigure(self, camera: CameraConfig, carry: frozenset[RuleKey] = frozenset()) -> None:
        """New zones and rules (an operator's edit), keeping the tracker, the heatmap and the
        background model, so the camera does not start over; the rules named in ``carry``
        (the same rule on a zone still in the same place) keep their memory. Call between frames."""
        kept = {key: rule.state() for key, rule in self.by_key().items() if key in carry}
        self.scene.reconfigure(camera)
        self.rules = self._build_rules(camera, self.names, self.events)
        for key, rule in self.by_key().items():
            if key in kept:
                rule.load(kept[key])
        self.timers = self._timers(self.events)

    def by_key(self) -> dict[RuleKey, Rule]:
        """Every rule instance by (zone, rule name)."""
        return {(rule.zone.name, rule.name): rule for rule in self.rules}

    def _timers(self, events: EventsConfig) -> dict[tuple[str, str, str], Timers]:
        return {
            (self.camera_id, rule.zone.name, rule.name): Timers(
                rule.config.min_duration,
                rule.config.close_after or 0.0,
                events.update_interval,
                events.reopen_window,
                rule.config.cooldown,
                events.expire_after,
                events.verify_within,
            )
            for rule in self.rules
        }

    def _build_rules(self, camera: CameraConfig, names: dict[int, str], events: EventsConfig) -> list[Rule]:
        """One rule instance per (zone, configured rule); a rule without close_after gets the global one."""
        rules: list[Rule] = []
        for zone_name, zone_cfg in camera.zones.items():
            for rule_name, rule_cls in registry().items():
                rule_cfg = getattr(zone_cfg.rules, rule_name)
                if rule_cfg is not None:
                    if rule_cfg.close_after is None:
                        rule_cfg = rule_cfg.model_copy(update={"close_after": events.close_after})
                    rules.append(rule_cls(self.camera_id, self.scene.zones[zone_name], rule_cfg, names))
        return rules

    def process(
        self,
        frame: Frame,
        detections: Detections | None,
        sight: float | None = None,
        keep: frozenset[tuple[str, str, str]] = frozenset(),
    ) -> tuple[Detections, list[Observation]]:
        """Mask, track, update the scene models, and ask every rule what it sees.

        ``detections`` None: the detector did not look at this frame, because the camera's
        motion gate saw nothing move in its zones (vision/scene/motion.py): the last detected
        frame's boxes are taken as this frame's, as if the detector had found them again, so the
        tracker, the rules and their timers go on exactly as on a frame detected alike (what was
        there stays, with its hits and rest time; what was missing stays missing); the scene
        models (the static-object model's own cadence) still see the frame itself.
        ``sight`` is the camera's sight clock (the frame's pts when not given: a camera
        that never went dark); ``keep`` the subjects whose events are pending or open."""
        if detections is None:
            detections = self.last
        else:
            detections = self.last = self.scene.unmasked(frame, detections)
        detections = self.tracker.update(detections, frame.pts, frame.image)
        tracks = self.tracker.tracks()
        blobs = self.scene.update(frame, detections, 0.0 if sight is None else frame.pts - sight)
        ctx = FrameContext(
            frame,
            detections,
            tracks,
            blobs,
            self.scene.zones,
            self.scene.ground,
            frame.pts if sight is None else sight,
            keep,
        )
        observations: list[Observation] = []
        for rule in self.rules:
            observations += rule.observe(ctx.above(rule.config.min_score))
        return detections, observations
