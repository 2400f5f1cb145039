"""The whole file: its sections, the checks that span them, and reading it (with camera_defaults and
groups merged in, relative paths resolved against the file's folder).
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from vision.config.base import Name, StrictModel
from vision.config.camera import CameraConfig, CameraDefaults
from vision.config.cluster import ClusterConfig
from vision.config.defaults import NOT_SHARED, expand_defaults
from vision.config.detector import DetectorConfig
from vision.config.dispatch import DispatchConfig
from vision.config.events import EventsConfig
from vision.config.health import HealthConfig
from vision.config.loading import MAX_CAMERAS, at_most, load_yaml, parse_yaml
from vision.config.storage import StorageConfig
from vision.dispatch.targets import at_keys
from vision.secrets import SecretUrl


class Config(StrictModel):
    """The whole file."""

    cameras: Annotated[dict[Name, CameraConfig], at_most(MAX_CAMERAS, "cameras", "MAX_CAMERAS")] = Field(
        description=f"Cameras by id (at most {MAX_CAMERAS})."
    )
    camera_defaults: CameraDefaults = Field(  # type: ignore[valid-type]
        default_factory=CameraDefaults,
        description="Settings every camera takes unless it sets them itself (any camera key but "
        "url, detect_url, zones and group; mappings such as stream merge key by key). See "
        "[Shared camera settings](#shared-camera-settings).",
    )
    groups: dict[Name, CameraDefaults] = Field(  # type: ignore[valid-type]
        default_factory=dict,
        description="Settings by group name, taken by the cameras with that `group` (over camera_defaults, "
        "under the camera's own).",
    )
    detector: DetectorConfig = Field(default_factory=DetectorConfig, description="The shared detector.")
    events: EventsConfig = Field(default_factory=EventsConfig, description="Event lifecycle timers.")
    dispatch: DispatchConfig = Field(default_factory=DispatchConfig, description="Where tickets go.")
    storage: StorageConfig = Field(default_factory=StorageConfig, description="Where data is kept.")
    health: HealthConfig = Field(default_factory=HealthConfig, description="Restarting failed cameras.")
    cluster: ClusterConfig | None = Field(
        None,
        description="Run the cameras as shards on a Ray cluster (needs storage.url); null: one process.",
    )

    @property
    def enabled_cameras(self) -> list[str]:
        """The ids of the cameras a run starts (``enabled``), in the file's order."""
        return [camera_id for camera_id, camera in self.cameras.items() if camera.enabled]

    @model_validator(mode="after")
    def _some_camera(self) -> Config:
        if not self.cameras:
            raise ValueError("no cameras: add at least one under 'cameras'")
        return self

    @model_validator(mode="after")
    def _cluster_on_postgres(self) -> Config:
        """Shards on several machines share one store: SQLite is a file of one machine."""
        if self.cluster is not None and self.storage.url is None:
            raise ValueError("cluster: needs storage.url (PostgreSQL): the shards share one store")
        return self

    @model_validator(mode="after")
    def _targets_fit_cameras(self) -> Config:
        """Route groups name real groups; an Open311 target can place every zone it may get."""
        problems: list[tuple[tuple[str, ...], str]] = []
        groups = {c.group for c in self.cameras.values() if c.group is not None}
        for name, target in self.dispatch.targets.items():
            unknown = sorted(set(target.route.groups or ()) - groups)
            if unknown:
                where = ("dispatch", "targets", name, "route", "groups")
                problems.append((where, f"no camera has group {', '.join(unknown)}"))
            if target.kind != "open311":
                continue
            for camera_id, camera in self.cameras.items():
                if target.route.groups is not None and camera.group not in target.route.groups:
                    continue
                unplaced = [
                    z for z, zone in camera.zones.items() if (zone.location or camera.location) is None
                ]
                if unplaced:
                    why = (
                        f"location: needed by dispatch.targets.{name} (open311 places every request): "
                        f"zone(s) {', '.join(unplaced)} have none; set the camera's or each zone's location"
                    )
                    problems.append((("cameras", camera_id), why))
        if problems:
            raise at_keys("Config", problems)
        return self

    @model_validator(mode="after")
    def _reopen_before_pruning(self) -> Config:
        """A closed event pruned inside its reopen window would come back with its message numbers reused."""
        kept = self.storage.retention.closed_events
        if kept is not None and kept <= self.events.reopen_window:
            raise ValueError(
                f"storage.retention.closed_events ({kept:g} s) must be longer than events.reopen_window "
                f"({self.events.reopen_window:g} s): a closed event may still reopen until then"
            )
        return self


SHARED_KEYS = frozenset(CameraConfig.model_fields) - NOT_SHARED


EXPAND = partial(expand_defaults, allowed=SHARED_KEYS)


def parse_config(text: str, source: str = "<config>", env: dict[str, str] | None = None) -> Config:
    """Parse YAML text into a :class:`Config`, or raise :class:`ConfigError` listing every problem."""
    return parse_yaml(text, Config, source, env, EXPAND)


def load_config(path: str | Path, env: dict[str, str] | None = None) -> Config:
    """Read and validate a config file; relative paths in it are resolved against its folder."""
    path = Path(path)
    return resolve_paths(load_yaml(path, Config, "config file", env, EXPAND), path.resolve().parent)


def resolve_path(value: str | Path, base: Path) -> Path:
    """A relative path means relative to the config file's folder."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else Path(os.path.normpath(base / p))


def resolve_paths(config: Config, base: Path) -> Config:
    """Anchor file cameras, the model card and the data folder at ``base``."""
    for camera in config.cameras.values():
        if camera.url.is_file:
            raw = camera.url.get_secret_value().removeprefix("file://")
            camera.url = SecretUrl(str(resolve_path(raw, base)))
        if camera.detect_url is not None and camera.detect_url.is_file:
            raw = camera.detect_url.get_secret_value().removeprefix("file://")
            camera.detect_url = SecretUrl(str(resolve_path(raw, base)))
    if config.detector.model != "default":
        config.detector.model = str(resolve_path(config.detector.model, base))
    config.storage.data_dir = resolve_path(config.storage.data_dir, base)
    return config
