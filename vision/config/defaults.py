"""``camera_defaults:`` and ``groups:``: settings many cameras share, merged under each camera's own.

A hundred cameras are a hundred short entries: what they share is written once, at the top
(``camera_defaults``) or per group (``groups: {NAME: {...}}`` with ``group: NAME`` on a
camera). The merge happens on the parsed YAML before validation, so each camera is checked
as if its settings were written in it; mappings merge key by key at every depth (a camera's
``stream: {open_timeout: 5}`` keeps the default's ``stream.transport``), anything else is
replaced whole. Priority: the camera's own setting, then its group's, then camera_defaults,
then the built-in default.

The merge remembers where each inherited value was written, so an error in it names the
default's key and line and the cameras it applied to, not a line the camera does not have.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vision.config.root import Config

Path_ = tuple[str | int, ...]
Origins = dict[Path_, Path_]  # a key path in the merged cameras -> the path its value was written at
DEFAULTS = "camera_defaults"
GROUPS = "groups"
NOT_SHARED = frozenset({"url", "detect_url", "zones", "group"})  # one camera's own, never a default
SHOWN = 5  # cameras named in one error before "and N more"


def expand_defaults(data: dict[str, Any], allowed: frozenset[str]) -> tuple[dict[str, Any], Origins]:
    """``data`` with each camera's mapping merged over its group's and camera_defaults' settings of
    the ``allowed`` keys (others are left to the defaults' own validation to report), and where each
    inherited value came from. Malformed parts are left as they are for validation to name."""
    cameras, defaults, groups = data.get("cameras"), data.get(DEFAULTS), data.get(GROUPS)
    if not isinstance(cameras, dict) or not (isinstance(defaults, dict) or isinstance(groups, dict)):
        return data, {}
    origins: Origins = {}
    merged: dict[Any, Any] = {}
    for camera_id, camera in cameras.items():
        layers: list[tuple[Path_, Any]] = []
        if isinstance(defaults, dict):
            layers.append(((DEFAULTS,), _shared(defaults, allowed)))
        group = camera.get("group") if isinstance(camera, dict) else None
        if isinstance(groups, dict) and isinstance(group, str) and isinstance(groups.get(group), dict):
            layers.append(((GROUPS, group), _shared(groups[group], allowed)))
        here: Path_ = ("cameras", camera_id)
        merged[camera_id] = (
            _merge([*layers, (here, camera)], here, origins) if isinstance(camera, dict) else camera
        )
    return {**data, "cameras": merged}, origins


def _shared(settings: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    return {key: value for key, value in settings.items() if key in allowed}


def _merge(layers: list[tuple[Path_, Any]], here: Path_, origins: Origins) -> Any:
    """The value at ``here`` from ``layers`` (where each was written, its value; lowest priority first)."""
    source, top = layers[-1]
    if source != here:
        origins[here] = source
    if not isinstance(top, dict):
        return top
    mappings: list[tuple[Path_, dict[Any, Any]]] = []
    for source, value in reversed(layers):  # the mappings right under the top one merge with it
        if not isinstance(value, dict):
            break
        mappings.insert(0, (source, value))
    keys = dict.fromkeys(key for _, value in mappings for key in value)
    return {
        key: _merge([((*s, key), v[key]) for s, v in mappings if key in v], (*here, key), origins)
        for key in keys
    }


def written_at(loc: Path_, origins: Origins) -> tuple[Path_, str | None]:
    """Where the value at ``loc`` of the merged data was written, and the camera it applied to when
    that is a default (None when it is the camera's own, or not a camera's)."""
    for n in range(len(loc), 2, -1):
        source = origins.get(loc[:n])
        if source is not None:
            return (*source, *loc[n:]), str(loc[1])
    return loc, None


def applied_to(cameras: list[str]) -> str:
    """``camera a`` / ``cameras a, b, c, d, e and 7 more``."""
    if len(cameras) == 1:
        return f"camera {cameras[0]}"
    more = f" and {len(cameras) - SHOWN} more" if len(cameras) > SHOWN else ""
    return f"cameras {', '.join(cameras[:SHOWN])}{more}"


def describe_shared(config: Config) -> list[str]:
    """What ``check`` prints about shared settings: which keys camera_defaults and each group set, and
    which cameras take them (a group without settings only names its cameras)."""
    lines = []
    if config.camera_defaults.model_fields_set:
        keys = ", ".join(sorted(config.camera_defaults.model_fields_set))
        lines.append(f"camera_defaults: {keys} (every camera, under its own settings)")
    members: dict[str, list[str]] = {}
    for camera_id, camera in config.cameras.items():
        if camera.group is not None:
            members.setdefault(camera.group, []).append(camera_id)
    for name in dict.fromkeys([*config.groups, *members]):
        keys = ", ".join(sorted(config.groups[name].model_fields_set)) if name in config.groups else ""
        cameras = members.get(name, [])
        taken = f"{len(cameras)} camera(s): {', '.join(cameras)}" if cameras else "no camera"
        lines.append(f"group {name}: {keys or 'no settings'}; {taken}")
    return lines
