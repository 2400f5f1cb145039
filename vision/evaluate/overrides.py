"""``eval --model CARD --set key=value``: one suite, other models and settings, no file edited.

A key is a dotted path into a ground-truth file's settings (``camera``, ``detector``,
``events``, ``tolerance``), the same keys the file and the config use, e.g.
``events.close_after=5``, ``camera.detect_fps=2``, ``detector.min_score=0.3``; ``*`` stands
for every key of a mapping (``camera.zones.*.rules.crowd.min_duration=3`` sets every zone
that has a crowd rule). The value is YAML (``5``, ``[person, bicycle]``, ``{enter_count: 8}``).
A key is checked against the settings' schema, so any key the config knows can be set, one a
file leaves at its default too, and a misspelt one is refused even where nothing has it. Where
a file's settings do not reach the key (a zone without a crowd rule) that file is left as it is:
a rule is not made up by one of its keys; a key that sets nothing in any file of the suite is
refused. The overridden file is validated again, so a bad value is refused as it would be in the
file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from vision.config import ConfigError
from vision.evaluate.truth import GroundTruth, TruthSettings

SECTIONS = tuple(TruthSettings.model_fields)


@dataclass(frozen=True)
class Override:
    """One ``--set key=value`` (or ``--model``), parsed; ``text`` is the option as it was given."""

    text: str
    path: tuple[str, ...]
    value: Any


def parse_overrides(items: list[str], model: Path | None = None) -> list[Override]:
    """``key=value`` strings (and ``--model``, as ``detector.model``); bad syntax is a ConfigError."""
    out, problems = [], []
    for text in items:
        key, sep, raw = text.partition("=")
        path = tuple(key.strip().split("."))
        if not sep or not all(path):
            problems.append(f"--set {text}: use KEY=VALUE with a dotted key, e.g. events.close_after=5")
            continue
        if path[0] not in SECTIONS:
            problems.append(
                f"--set {text}: {path[0]!r} is not a setting here: use one of {', '.join(SECTIONS)}"
            )
            continue
        unknown = _unknown(TruthSettings, path)
        if unknown:
            problems.append(f"--set {text}: {unknown}")
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            problems.append(f"--set {text}: the value is not valid YAML: {getattr(exc, 'problem', exc)}")
            continue
        out.append(Override(f"--set {text}", path, value))
    if model is not None:
        out.append(Override(f"--model {model}", ("detector", "model"), str(model.resolve())))
    if problems:
        raise ConfigError(problems)
    return out


def apply_overrides(
    truth: GroundTruth, overrides: list[Override], source: Path
) -> tuple[GroundTruth, dict[str, str]]:
    """A copy of ``truth`` with every override set where its settings have the key, and for each
    override that set nothing in it, why (``unused`` refuses one that sets nothing in any file).

    Keys are looked up in the full settings (defaults included) and set on what the file says,
    then the whole is validated again. A value a validator derived from another when the file was
    read (a crowd rule's exit_count from its enter_count) stays as derived: set both, or set the
    whole rule as a mapping (``camera.zones.crossing.rules.crowd={enter_count: 7}``).
    """
    if not overrides:
        return truth, {}
    full = truth.model_dump(mode="json")
    data = truth.model_dump(mode="json", exclude_unset=True)
    data["camera"].pop("url", None)  # the video is the camera
    missed: dict[str, str] = {}
    for override in overrides:
        found = _expand(full, override.path)
        if not found:
            missed[override.text] = _missing(full, override.path)
        for path in found:
            node = data
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = override.value
    try:
        return GroundTruth.model_validate(data), missed
    except ValidationError as exc:
        raise ConfigError(
            [
                f"{source}: with {', '.join(o.text for o in overrides)}: "
                f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
                for error in exc.errors()
            ]
        ) from None


def unused(overrides: list[Override], missed: dict[Path, dict[str, str]]) -> list[str]:
    """The overrides that set nothing in any of the suite's files (``missed``: per file, what
    ``apply_overrides`` said of it), each with why, per file: a comparison that changed nothing is a
    mistake to refuse."""
    problems = []
    for override in overrides:
        if not missed or any(override.text not in m for m in missed.values()):
            continue
        files: dict[str, list[str]] = {}
        for file, misses in missed.items():
            files.setdefault(misses[override.text], []).append(str(file))
        why = "; ".join(f"{', '.join(names)}: {reason}" for reason, names in files.items())
        problems.append(f"{override.text}: sets nothing in any file of the suite: {why}")
    return problems


def _unknown(kind: Any, path: tuple[str, ...], done: tuple[str, ...] = ()) -> str | None:
    """Where ``path`` leaves the schema of ``kind`` (a key no file can have), or None if it fits."""
    if not path:
        return None
    key, rest, where = path[0], path[1:], ".".join(done) or "the settings"
    kind = _unwrap(kind)
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        fields = kind.model_fields
        if key == "*":
            fits = [_unknown(f.annotation, rest, (*done, key)) is None for f in fields.values()]
            return None if any(fits) else f"nothing under {where} has {'.'.join(rest)}"
        if key not in fields:
            return f"{where} has no key {key!r} (its keys: {', '.join(fields)})"
        return _unknown(fields[key].annotation, rest, (*done, key))
    if get_origin(kind) is dict:
        return _unknown(get_args(kind)[1], rest, (*done, key))
    return f"{where} is a value, it has no key {key!r}"


def _unwrap(kind: Any) -> Any:
    """The type inside ``Annotated[...]`` and ``X | None``, where the schema's keys are."""
    if get_origin(kind) is Annotated:
        return _unwrap(get_args(kind)[0])
    if get_origin(kind) in (Union, UnionType):
        inner = [a for a in get_args(kind) if a is not type(None)]
        return _unwrap(inner[0]) if len(inner) == 1 else kind
    return kind


def _expand(node: Any, path: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every existing key path that ``path`` names, ``*`` standing for every key of a mapping."""
    if not isinstance(node, dict):
        return []
    head, rest = path[0], path[1:]
    out = []
    for key in list(node) if head == "*" else [head] if head in node else []:
        out += [(key, *sub) for sub in _expand(node[key], rest)] if rest else [(key,)]
    return out


def _missing(data: dict[str, Any], path: tuple[str, ...]) -> str:
    """Where a path stops matching the settings, and what is there instead."""
    node: Any = data
    for depth, key in enumerate(path):
        where = ".".join(path[:depth]) or "the settings"
        if key == "*":
            return f"nothing under {where} has {'.'.join(path[depth + 1 :])}"
        if not isinstance(node, dict):
            return f"{where} is {'not set' if node is None else 'a value'}, it has no key {key!r}"
        if key not in node:
            return f"{where} has no key {key!r} (its keys: {', '.join(map(str, node)) or 'none'})"
        node = node[key]
    return "not found"
