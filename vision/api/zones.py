"""Zones of one camera: list, create, replace, delete; each change is written to the config file
and handed to the running pipeline, which swaps it in between two frames."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response
from pydantic import BaseModel, ValidationError

from vision.api.auth import Admin, Reader
from vision.api.config_file import Zones
from vision.api.limits import StrictJSONRoute
from vision.api.models import Rules, Zone
from vision.api.state import CameraId, Service, ServiceDep
from vision.config import NAME, ConfigError, ZoneConfig
from vision.rules import registry

router = APIRouter(tags=["zones"], route_class=StrictJSONRoute)
ZoneName = Annotated[str, Path(pattern=NAME.pattern, max_length=64)]
REFUSED = {  # 422 (FastAPI's validation error shape) also for problems of the config with the zone
    404: {"description": "unknown camera or zone"},
    409: {"description": "a zone of that name exists"},
    503: {"description": "the pipeline did not take the edit in time (the file is left as it was)"},
}


def _raw(zone: ZoneConfig) -> dict[str, object]:
    """The zone as YAML data: only what was given, so defaults stay defaults."""
    raw = zone.model_dump(mode="json", exclude_unset=True, exclude={"name", "rules"})
    rules = {
        name: _given(rule) for name in type(zone.rules).model_fields if (rule := getattr(zone.rules, name))
    }
    if rules:
        raw["rules"] = rules
    return raw


def _given(rule: BaseModel) -> dict[str, object]:
    """A rule's settings without those that follow from the others (a validator may fill a field,
    e.g. crowd's exit_count from enter_count, and it should keep following them in the file)."""
    data = rule.model_dump(mode="json", exclude_unset=True)
    for key in list(data):
        try:
            follows = type(rule).model_validate({k: v for k, v in data.items() if k != key}) == rule
        except ValidationError:  # without it the others are invalid (exit_count 10 needs enter_count 15)
            follows = False
        if follows:
            del data[key]
    return data


def _zone(name: str, zone: ZoneConfig) -> Zone:
    return Zone(name=name, **zone.model_dump())


def _apply(svc: Service, camera_id: str, change: Zones) -> None:
    """Write the change and hand the camera to the pipeline; refuse it whole if either objects."""
    try:
        with svc.config_file.edit_zones(camera_id, change) as camera:
            if svc.view(camera_id) is not None:
                try:  # a command the pipeline applies between two frames; returns once it has
                    svc.runtime.pipeline.update_camera(camera_id, camera)
                except ValueError as exc:
                    raise ConfigError([str(exc)]) from None
                except TimeoutError as exc:  # the file is put back as it was
                    raise HTTPException(503, str(exc)) from None
            else:  # a disabled camera: the file and the listing only
                svc.idle[camera_id] = camera
    except ConfigError as exc:  # the same shape as FastAPI's own validation errors
        raise HTTPException(
            422, [{"loc": ["body"], "msg": problem, "type": "config"} for problem in exc.problems]
        ) from None


@router.get("/api/rules", response_model=Rules, dependencies=[Reader])
def rules() -> Rules:
    """The rules a zone can have, with their parameters (JSON schema)."""
    return Rules(rules={name: rule.Config.model_json_schema() for name, rule in registry().items()})


@router.get("/api/cameras/{camera_id}/zones", response_model=list[Zone], dependencies=[Reader])
def list_zones(camera_id: CameraId, svc: ServiceDep) -> list[Zone]:
    return [_zone(n, z) for n, z in svc.camera(camera_id).zones.items()]


@router.post(
    "/api/cameras/{camera_id}/zones",
    response_model=Zone,
    status_code=201,
    dependencies=[Admin],
    responses=REFUSED,
)
def create_zone(camera_id: CameraId, zone: Zone, svc: ServiceDep) -> Zone:
    def change(zones: Zones) -> None:
        if zone.name in zones:
            raise HTTPException(409, f"camera {camera_id!r} already has a zone {zone.name!r}: PUT to edit it")
        zones[zone.name] = _raw(zone)

    _apply(svc, camera_id, change)
    return _zone(zone.name, svc.camera(camera_id).zones[zone.name])


def _existing(zones: Zones, camera_id: str, name: str) -> None:
    if name not in zones:
        raise HTTPException(404, f"camera {camera_id!r} has no zone {name!r}")


@router.put(
    "/api/cameras/{camera_id}/zones/{name}", response_model=Zone, dependencies=[Admin], responses=REFUSED
)
def replace_zone(camera_id: CameraId, name: ZoneName, zone: ZoneConfig, svc: ServiceDep) -> Zone:
    def change(zones: Zones) -> None:
        _existing(zones, camera_id, name)
        zones[name] = _raw(zone)

    _apply(svc, camera_id, change)
    return _zone(name, svc.camera(camera_id).zones[name])


@router.delete(
    "/api/cameras/{camera_id}/zones/{name}", status_code=204, dependencies=[Admin], responses=REFUSED
)
def delete_zone(camera_id: CameraId, name: ZoneName, svc: ServiceDep) -> Response:
    def change(zones: Zones) -> None:
        _existing(zones, camera_id, name)
        del zones[name]

    _apply(svc, camera_id, change)
    return Response(status_code=204)
