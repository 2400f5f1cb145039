"""The parts of a running service, wired once for ``street-vision run`` and ``street-vision serve``.

One config gives one detector, one store, the dispatcher (when there is a dispatch target), the
pruner (storage.retention, running from the start) and the pipeline; a committed
transition wakes the dispatcher. Both commands build it here so
they cannot drift apart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from vision.config import Config
from vision.detect.detector import Detector
from vision.dispatch.dispatcher import Dispatcher
from vision.dispatch.routing import Router
from vision.ingest.health import CameraHealth
from vision.pipeline import Pipeline
from vision.store import EventStore, open_store
from vision.store.lease import Lease, hold
from vision.store.retention import Pruner
from vision.types import Detections, Frame, Transition

log = logging.getLogger("vision")


def log_health(health: CameraHealth) -> None:
    """One log line per camera state change, with the (redacted) reason when it cannot see."""
    why = f" ({health.last_error})" if not health.state.sees and health.last_error else ""
    log.info("camera %s: %s%s", health.camera_id, health.state.value, why)


def _apply_reports(pipeline: Pipeline, camera_id: str) -> None:
    """A polled status was stored as a report: its camera applies it now (a camera not running, or a busy
    pipeline, applies it when it next starts or gets to it: the report is kept)."""
    with suppress(KeyError, TimeoutError):
        pipeline.apply_reports(camera_id)


@dataclass
class Runtime:
    """Detector, store, dispatcher, pruner and pipeline of one config."""

    config: Config
    detector: Detector
    store: EventStore
    dispatcher: Dispatcher | None
    pruner: Pruner
    pipeline: Pipeline
    lease: Lease  # on its cameras in the store, held until close (vision/store/lease.py)

    @classmethod
    def build(
        cls,
        config: Config,
        config_path: Path,
        on_transition: Callable[[Transition, dict[str, Any]], None] | None = None,
        on_detections: Callable[[Frame, Detections], None] | None = None,
        on_health: Callable[[CameraHealth], None] | None = None,
        on_inference: Callable[[float, int], None] | None = None,
    ) -> Runtime:
        # first: a second service on one of these cameras is refused before anything starts
        targets = config.dispatch.all_targets()
        lease = hold(config.storage, config.enabled_cameras, outbox=bool(targets))
        try:
            detector = Detector.from_config(config.detector, cameras=len(config.enabled_cameras))
            # serve builds it in the main thread and runs the pipeline in another (one user at a time)
            groups = {camera_id: camera.group for camera_id, camera in config.cameras.items()}
            store = open_store(
                config.storage,
                str(config_path),
                dispatch=Router(targets, groups) if targets else False,
                any_thread=True,
            )
            dispatcher = Dispatcher.of(store.another, config) if targets else None

            def transition(t: Transition, payload: dict[str, Any]) -> None:
                if dispatcher:
                    dispatcher.notify()
                if on_transition:
                    on_transition(t, payload)

            pipeline = Pipeline(
                config,
                detector,
                store,
                on_transition=transition,
                on_detections=on_detections,
                on_health=on_health,
                on_inference=on_inference,
            )
            if dispatcher:
                dispatcher.on_report = partial(_apply_reports, pipeline)
            pruner = Pruner(store.another, config.storage)
            pruner.start()
        except BaseException:
            lease.release()
            raise
        return cls(config, detector, store, dispatcher, pruner, pipeline, lease)

    def close(self) -> None:
        """Stop the dispatcher (after its attempt in flight) and the pruner (after its batch), and close
        the store; only once the pipeline has ended, so nothing writes to a closed store."""
        if self.dispatcher:
            self.dispatcher.stop()
        self.pruner.stop()
        self.store.close()
        self.lease.release()

    def write_heatmaps(self) -> None:
        """Each camera's heatmap over its last frame, as ``heatmaps/<camera>.png`` in the data folder."""
        heatmaps = self.config.storage.data_dir / "heatmaps"
        for camera_id, worker in self.pipeline.workers.items():
            if worker.unit.analysis.scene.last_frame is not None:
                heatmaps.mkdir(parents=True, exist_ok=True)
                (heatmaps / f"{camera_id}.png").write_bytes(
                    worker.unit.analysis.scene.heatmap.png(worker.unit.analysis.scene.last_frame.image)
                )
