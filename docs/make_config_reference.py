"""Write docs/configuration.md from the config models, so the reference cannot drift from the code.

Usage: ``python docs/make_config_reference.py`` (a test checks the committed file is current).
"""

from __future__ import annotations

from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from vision.config import CameraConfig, Config, DecodeConfig, RegionsConfig, ZoneConfig
from vision.rules import registry
from vision.track import TrackerConfig

OUT = Path(__file__).resolve().parent / "configuration.md"

INTRO = """# Configuration reference

One YAML file configures everything; `street-vision check FILE` validates it and names
each problem by its key and line. Unknown keys are errors. Any string may contain
`${ENV_VAR}` references (a missing variable is an error); passwords in camera URLs and
the webhook secret are never printed, logged or returned. Relative paths are relative
to the folder of the config file. Times are seconds of *stream* time (frame timestamps).

This file is generated from the code by `docs/make_config_reference.py`.
"""


def _type(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _type(args[0])
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (Union, UnionType):
        return " or ".join("null" if a is type(None) else _type(a) for a in args)
    if origin is dict:
        return f"map of name to {_type(args[1])}"
    if origin is list:
        return f"list of {_type(args[0])}"
    if origin is tuple:
        return "[" + ", ".join(_type(a) for a in args) + "]"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return {"SecretUrl": "url", "SecretStr": "secret", "PosixPath": "path", "Path": "path"}.get(
        annotation.__name__, annotation.__name__
    )


def _default(field: Any) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.default_factory() if field.default_factory else field.default
    if isinstance(value, BaseModel):
        return "see below"
    return f"`{value}`" if value not in ({}, None) else ("`{}`" if value == {} else "`null`")


def section(title: str, model: type[BaseModel], path: str) -> str:
    lines = [f"## {title}", "", f"Key: `{path}`. {model.__doc__.strip().splitlines()[0]}", ""]
    lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        lines.append(
            f"| `{name}` | {_type(field.annotation)} | {_default(field)} | {field.description or ''} |"
        )
    return "\n".join(lines) + "\n"


def render() -> str:
    parts = [INTRO]
    parts.append(section("Top level", Config, "(top level)"))
    parts.append(section("Camera", CameraConfig, "cameras.<id>"))
    parts.append(section("Decoding", DecodeConfig, "cameras.<id>.decode"))
    parts.append(section("Tracker", TrackerConfig, "cameras.<id>.tracker"))
    parts.append(section("Detection regions", RegionsConfig, "cameras.<id>.detect_regions"))
    parts.append(section("Zone", ZoneConfig, "cameras.<id>.zones.<name>"))
    for name, rule in registry().items():
        parts.append(section(f"Rule `{name}`", rule.Config, f"cameras.<id>.zones.<name>.rules.{name}"))
    for key in ("detector", "events", "dispatch", "storage"):
        model = Config.model_fields[key].annotation
        parts.append(section(key.capitalize(), model, key))
    return "\n".join(parts)


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
