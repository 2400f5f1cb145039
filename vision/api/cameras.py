"""Cameras: configuration (URL redacted), health, the latest frame and the people heatmap."""

from __future__ import annotations

import cv2
from fastapi import APIRouter, HTTPException, Response

from vision.api.auth import Reader
from vision.api.models import Camera, DetectionPlan, Health
from vision.api.state import CameraId, Service, ServiceDep
from vision.camera.view import CameraView

router = APIRouter(prefix="/api/cameras", tags=["cameras"], dependencies=[Reader])
JPEG_QUALITY = 80
NOT_SEEN = {404: {"description": "unknown camera, or no frame seen yet"}}


def _camera(svc: Service, camera_id: str) -> Camera:
    config, view = svc.camera(camera_id), svc.view(camera_id)
    health = None
    if view is not None:
        record = svc.runtime.pipeline.health()[camera_id].to_record()
        health = Health(**{k: v for k, v in record.items() if k in Health.model_fields})
    return Camera(
        id=camera_id,
        url=str(config.url),
        enabled=config.enabled,
        health=health,
        zones=list(config.zones),
        active_zones=list(view.active_zones) if view else [],
        detection=DetectionPlan(**view.detection) if view and view.detection else None,
    )


@router.get("", response_model=list[Camera])
def list_cameras(svc: ServiceDep) -> list[Camera]:
    return [_camera(svc, camera_id) for camera_id in svc.camera_ids()]


@router.get("/{camera_id}", response_model=Camera, responses=NOT_SEEN)
def get_camera(camera_id: CameraId, svc: ServiceDep) -> Camera:
    return _camera(svc, camera_id)


def _seen(svc: Service, camera_id: str) -> CameraView:
    view = svc.view(camera_id)
    if view is None or view.frame is None:
        raise HTTPException(404, f"camera {camera_id!r} has shown no frame yet")
    return view


@router.get(
    "/{camera_id}/snapshot.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **NOT_SEEN},
)
def snapshot(camera_id: CameraId, svc: ServiceDep) -> Response:
    """The newest frame the pipeline analysed."""
    frame = _seen(svc, camera_id).frame
    assert frame is not None
    ok, jpeg = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise HTTPException(500, "cannot encode the frame")
    return Response(jpeg.tobytes(), media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get(
    "/{camera_id}/heatmap.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **NOT_SEEN},
)
def heatmap(camera_id: CameraId, svc: ServiceDep) -> Response:
    """Where people stood (decaying over stream time), over the newest frame."""
    png = _seen(svc, camera_id).heatmap_png()
    assert png is not None
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})
