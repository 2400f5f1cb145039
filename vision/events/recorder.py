"""Record one event transition: its snapshots to disk first, then one commit to the store.

The order matters: the committed payload (and so the webhook) names snapshot files
that already exist, and the commit carries the outbox message with the event row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vision.events.snapshots import SnapshotWriter
from vision.store import Store
from vision.types import Frame, Transition


class TransitionRecorder:
    """Snapshots to disk first, then one commit of event, transition and outbox message."""

    def __init__(self, store: Store, snapshots: SnapshotWriter) -> None:
        self.store = store
        self.snapshots = snapshots

    def record(self, transition: Transition, frame: Frame, zone_pixels: np.ndarray) -> dict[str, Any]:
        """Store one transition; return its payload (what ``--jsonl`` prints and the webhook carries)."""
        snapshots = self.snapshots.write(transition, frame, zone_pixels)
        payload = {
            "transition": transition.kind,
            "pts": round(transition.pts, 3),
            "event": transition.event,
            "boxes": transition.boxes.to_records(self.snapshots.names),
            "snapshots": snapshots.to_record(),
        }
        self.store.record(transition, payload)
        return payload
