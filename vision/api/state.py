"""What the API's routes share: the running runtime, the config file, the metrics."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from vision.api.config_file import ConfigFile
from vision.api.metrics import Metrics
from vision.camera.view import CameraView
from vision.config import CameraConfig
from vision.runtime import Runtime
from vision.store import EventStore


@dataclass
class Service:
    """What the routes share. Running cameras are read through the views the pipeline publishes and
    changed through its commands; cameras it does not run (disabled) live in the file only, and
    their last edit is kept here."""

    runtime: Runtime
    config_file: ConfigFile
    metrics: Metrics
    idle: dict[str, CameraConfig] = field(default_factory=dict)  # cameras the pipeline does not run

    def __post_init__(self) -> None:
        running = self.runtime.pipeline.views()
        self.idle = {k: v for k, v in self.runtime.config.cameras.items() if k not in running}

    def camera_ids(self) -> list[str]:
        return list(self.runtime.config.cameras)

    def view(self, camera_id: str) -> CameraView | None:
        """The running camera's latest view, or None for a camera the pipeline does not run."""
        return self.runtime.pipeline.views().get(camera_id)

    def camera(self, camera_id: str) -> CameraConfig:
        """The camera's configuration as it is in force (running) or in the file (not running)."""
        view = self.view(camera_id)
        return view.config if view is not None else self.idle[camera_id]


def service(request: Request) -> Service:
    return request.app.state.service


def database(svc: Annotated[Service, Depends(service)]) -> Iterator[EventStore]:
    """A handle of this request's own on the store (SQLite's WAL: reads never block the pipeline)."""
    store = svc.runtime.store.another()
    try:
        yield store
    finally:
        store.close()


def known_camera(camera_id: str, svc: Annotated[Service, Depends(service)]) -> str:
    if camera_id not in svc.runtime.config.cameras:
        raise HTTPException(404, f"no camera {camera_id!r}: the config has {', '.join(svc.camera_ids())}")
    return camera_id


ServiceDep = Annotated[Service, Depends(service)]
Database = Annotated[EventStore, Depends(database)]
CameraId = Annotated[str, Depends(known_camera)]
