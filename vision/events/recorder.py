"""Record a frame's event transitions: their snapshots to disk first, then one commit to the store.

The order matters: the committed payload (and so the webhook) names snapshot files
that already exist, and the commit carries the outbox messages with the event rows
and the camera unit's state after them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from vision.camera.unit import Snapshot
from vision.config import Config
from vision.events.snapshots import SnapshotWriter
from vision.ingest.mainstream import Evidence
from vision.store import EventStore
from vision.types import Frame, Transition

ZoneKey = tuple[str, str]  # camera, zone


class TransitionRecorder:
    """Snapshots to disk first, then one commit of event, transition and outbox message."""

    def __init__(
        self, store: EventStore, snapshots: SnapshotWriter, zones: dict[ZoneKey, np.ndarray]
    ) -> None:
        self.store = store
        self.snapshots = snapshots
        self.zones = zones  # normalized [M, 2] polygons, drawn on the annotated snapshot

    @classmethod
    def for_config(cls, config: Config, store: EventStore, names: dict[int, str]) -> TransitionRecorder:
        zones = {
            (camera_id, name): np.asarray(zone.polygon, np.float64)
            for camera_id, camera in config.cameras.items()
            for name, zone in camera.zones.items()
        }
        return cls(store, SnapshotWriter(config.storage.data_dir, names), zones)

    def record(
        self,
        transitions: list[Transition],
        frame: Frame | None,
        wall_time: str | None = None,
        state: Snapshot | None = None,
        applied: tuple[str, ...] = (),
        changed: tuple[dict[str, Any], ...] = (),
        evidence: Evidence | None = None,
    ) -> list[dict[str, Any]]:
        """Store one frame's transitions (with the camera's ``state`` after them) in one commit; return
        their payloads (what ``--jsonl`` prints and the webhook carries).

        ``frame`` is the picture of the moment (None when there is none: a camera that never
        showed one, or a close on start-up: no snapshots then); ``wall_time`` is when it happened
        by the clock of a live camera; ``applied`` the inbound reports that caused them, ``changed``
        the event records they changed without a transition; ``evidence`` the main stream's picture of
        a camera with a detect_url substream (its boxes are scaled to it), or why there is none."""
        payloads = self.payloads(transitions, frame, wall_time, evidence)
        self.store.record(list(zip(transitions, payloads, strict=True)), state, applied, changed)
        return payloads

    def payloads(
        self,
        transitions: list[Transition],
        frame: Frame | None,
        wall_time: str | None = None,
        evidence: Evidence | None = None,
    ) -> list[dict[str, Any]]:
        """The transitions' payloads, their snapshot files written first (the part of :meth:`record`
        before the commit, for a writer that commits several frames' transitions together)."""
        return [self._payload(t, frame, wall_time, evidence) for t in transitions]

    def _payload(
        self, transition: Transition, frame: Frame | None, wall_time: str | None, evidence: Evidence | None
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "transition": transition.kind,
            "pts": round(transition.pts, 3),
            "event": transition.event,
            "boxes": transition.boxes.to_records(self.snapshots.names),
        }
        if frame is not None:
            polygon = self.zones[(transition.event["camera"], transition.event["zone"])]
            shown = frame
            if evidence is not None and evidence.image is not None:  # the main stream's picture
                shown = Frame(frame.camera_id, frame.pts, evidence.image)
                scale = np.array([shown.width / frame.width, shown.height / frame.height] * 2, np.float32)
                boxes = replace(transition.boxes, xyxy=transition.boxes.xyxy * scale)
                transition = replace(transition, boxes=boxes)
            snapshots = self.snapshots.write(transition, shown, polygon * (shown.width, shown.height))
            payload["snapshots"] = snapshots.to_record()
            if evidence is not None:
                size = {"width": shown.width, "height": shown.height}
                note = {} if evidence.note is None else {"note": evidence.note}
                payload["snapshots"] |= {"source": evidence.source, **size, **note}
        if wall_time is not None:
            payload["wall_time"] = wall_time
        if transition.note is not None:
            payload["note"] = transition.note
        return payload
