"""Everything one camera does after the detector: masks, tracking, scene models, rules.

Pure stages: a frame and its detections in, tracked detections and observations out,
with no source, store or clock involved, so a scenario test can drive the very code
the live pipeline runs.
"""

from __future__ import annotations

from vision.config import CameraConfig, EventsConfig
from vision.events.lifecycle import Timers
from vision.rules import registry
from vision.rules.base import Rule
from vision.scene.scene import Scene
from vision.track import Tracker
from vision.types import Detections, Frame, Observation


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

    def reconfigure(self, camera: CameraConfig) -> None:
        """New zones and rules (an operator's edit), keeping the tracker, the heatmap and the
        background model, so the camera does not start over; call between frames."""
        self.scene.reconfigure(camera)
        self.rules = self._build_rules(camera, self.names, self.events)
        self.timers = self._timers(self.events)

    def _timers(self, events: EventsConfig) -> dict[tuple[str, str, str], Timers]:
        return {
            (self.camera_id, rule.zone.name, rule.name): Timers(
                rule.config.min_duration,
                rule.config.close_after or 0.0,
                events.update_interval,
                events.reopen_window,
                rule.config.cooldown,
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
                    rules.append(
                        rule_cls(self.camera_id, self.scene.zones[zone_name], rule_cfg, names, self.scene)
                    )
        return rules

    def unknown(self, pts: float) -> list[Observation]:
        """The camera cannot see (stalled, offline): every subject of every rule is UNKNOWN."""
        return [obs for rule in self.rules for obs in rule.unknown(pts)]

    def process(self, frame: Frame, detections: Detections) -> tuple[Detections, list[Observation]]:
        """Mask, track, update the scene models, and ask every rule what it sees."""
        detections = self.scene.unmasked(frame, detections)
        detections = self.tracker.update(detections, frame.pts)
        self.scene.update(frame, detections, self.tracker.tracks())
        observations: list[Observation] = []
        for rule in self.rules:
            floor = rule.config.min_score
            observations += rule.observe(
                frame, detections[detections.score >= floor] if floor > 0 else detections
            )
        return detections, observations
