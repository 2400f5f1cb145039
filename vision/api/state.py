"""What the API's routes share: the running runtime, the config file, the metrics."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from vision.api.config_file import ConfigFile
from vision.api.metrics import Metrics
from vision.db import connect
from vision.runtime import Runtime


@dataclass
class Service:
    runtime: Runtime
    config_file: ConfigFile
    metrics: Metrics

    def camera_ids(self) -> list[str]:
        return list(self.runtime.config.cameras)


def service(request: Request) -> Service:
    return request.app.state.service


def database(svc: Annotated[Service, Depends(service)]) -> Iterator[sqlite3.Connection]:
    """A connection of this request's own to the store (WAL: reads never block the pipeline)."""
    db = connect(svc.runtime.store.path, any_thread=True)
    try:
        yield db
    finally:
        db.close()


def known_camera(camera_id: str, svc: Annotated[Service, Depends(service)]) -> str:
    if camera_id not in svc.runtime.config.cameras:
        raise HTTPException(404, f"no camera {camera_id!r}: the config has {', '.join(svc.camera_ids())}")
    return camera_id


ServiceDep = Annotated[Service, Depends(service)]
Database = Annotated[sqlite3.Connection, Depends(database)]
CameraId = Annotated[str, Depends(known_camera)]
