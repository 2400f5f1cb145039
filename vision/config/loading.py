"""Reading a YAML file into a model safely: bounded size, aliases, nesting and work; ``${ENV}`` only
where the model allows it; every problem one line naming its key and line.

A config file is trusted, but it is typed by people and copied around: a mistake (or a
hostile file) must end as a clear error in bounded time and memory, never a traceback
or a machine out of memory. The limits are the named constants below; docs/security.md
lists them and tests/test_config_limits.py holds each one.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, BeforeValidator, ValidationError

from vision.config.defaults import Origins, applied_to, written_at
from vision.secrets import ENV_ALLOWED, ENV_REF, MissingEnvVar, expand_env

MAX_FILE_BYTES = 1024 * 1024  # a config with 100 cameras of 10 zones each is about 150 KiB
MAX_YAML_DEPTH = 32  # nested mappings and lists; a config needs about 8
MAX_YAML_ALIASES = 100  # `*name` references (a shared zone or rule block)
MAX_YAML_NODES = 300_000  # values once every alias is expanded (an alias bomb expands to billions)
MAX_CAMERAS = 256  # cameras per file
MAX_ZONES = 64  # zones per camera
MAX_POLYGON_POINTS = 500  # points per zone or mask polygon

Path_ = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)
Expand = Callable[[dict[str, Any]], tuple[dict[str, Any], Origins]]  # shared settings merged in


class ConfigError(Exception):
    """Every problem of one config file, one readable line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def at_most(limit: int, what: str, constant: str) -> BeforeValidator:
    """A length cap checked before the items are parsed, so an oversized list costs nothing."""

    def check(value: Any) -> Any:
        if isinstance(value, list | dict) and len(value) > limit:
            raise ValueError(f"has {len(value)} {what}: at most {limit} are allowed ({constant})")
        return value

    return BeforeValidator(check)


class _LimitExceeded(yaml.YAMLError):
    def __init__(self, problem: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


class _BoundedComposer(yaml.composer.Composer):
    """PyYAML's composer, counting depth, aliases and expanded size as it composes."""

    def __init__(self) -> None:
        yaml.composer.Composer.__init__(self)
        self.depth = 0
        self.aliases = 0
        self.sizes: dict[int, int] = {}  # id(node) -> values under it, aliases expanded
        self.total = 0

    def compose_node(self, parent: Any, index: Any) -> yaml.Node:
        mark = self.peek_event().start_mark
        alias = self.check_event(yaml.AliasEvent)
        if alias:
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                raise _LimitExceeded(f"more than {MAX_YAML_ALIASES} aliases (MAX_YAML_ALIASES)", mark)
        self.depth += 1
        if self.depth > MAX_YAML_DEPTH:
            raise _LimitExceeded(f"nested deeper than {MAX_YAML_DEPTH} levels (MAX_YAML_DEPTH)", mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        if alias:  # everything under the anchor counts once more
            if id(node) not in self.sizes:
                raise _LimitExceeded("an alias refers to the list or mapping that contains it", mark)
            self.total += self.sizes[id(node)]
        else:  # its children were composed, sized and counted before it
            children: list[yaml.Node] = []
            if isinstance(node, yaml.SequenceNode):
                children = node.value
            elif isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            self.sizes[id(node)] = 1 + sum(self.sizes[id(child)] for child in children)
            self.total += 1
        if self.total > MAX_YAML_NODES:
            raise _LimitExceeded(
                f"more than {MAX_YAML_NODES} values, each alias counted as what it stands for "
                "(MAX_YAML_NODES)",
                mark,
            )
        return node


# PyYAML built without libyaml (a source install without its headers) has no CSafeLoader: all in Python then
_LIBYAML: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _FastLoader(_BoundedComposer, _LIBYAML):  # type: ignore[misc,valid-type]
    """libyaml scans and parses (the pure-Python scanner takes tens of seconds on a 1 MB file of
    300,000 values); the composing, and so every limit, stays the counting one above."""

    def __init__(self, stream: str) -> None:
        _LIBYAML.__init__(self, stream)
        _BoundedComposer.__init__(self)


class _PlainLoader(_BoundedComposer, yaml.SafeLoader):
    """All in Python: its syntax errors are the ones this file reports (libyaml words them
    differently and may place them elsewhere)."""

    def __init__(self, stream: str) -> None:
        yaml.SafeLoader.__init__(self, stream)
        _BoundedComposer.__init__(self)


def media_kind(head: bytes) -> str | None:
    """What a picture or video file is, from its first bytes (its container's signature), else None: a
    video given where a YAML file belongs (``run clip.mp4``) is then named as one, not as text too large."""
    if head[4:8] == b"ftyp":
        return "an MP4/QuickTime video"
    if head[:4] == b"RIFF" and head[8:11] == b"AVI":
        return "an AVI video"
    if head[:4] == b"\x1aE\xdf\xa3":
        return "a Matroska/WebM video"
    if head[:3] == b"FLV":
        return "an FLV video"
    if len(head) > 188 and head[0] == head[188] == 0x47:
        return "an MPEG-TS video"
    if head[:3] == b"\xff\xd8\xff" or head[:8] == b"\x89PNG\r\n\x1a\n":
        return "a picture"
    return None


def read_text(path: Path, kind: str) -> str:
    """The file as UTF-8 text, refused whole when it is too large or not UTF-8."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the {kind}: {exc.strerror or exc}"]) from None
    media = media_kind(data[:256])
    if media:
        raise ConfigError(
            [
                f"{path}: this is {media}, not a {kind} (YAML text); a video is named inside one, as a "
                "camera's url (configs/demo.yaml watches the bundled clip)"
            ]
        )
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError([f"{path}: the {kind} is over {MAX_FILE_BYTES} bytes (MAX_FILE_BYTES)"])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            [f"{path}: the {kind} is not UTF-8 text (byte {exc.start}, line {line}): save it as UTF-8"]
        ) from None


def _compose(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (for line numbers) and the data, within the limits."""
    if len(text) > MAX_FILE_BYTES:
        raise ConfigError([f"{source}: over {MAX_FILE_BYTES} characters (MAX_FILE_BYTES)"])
    try:
        try:
            return _load(_FastLoader, text)
        except (yaml.reader.ReaderError, yaml.scanner.ScannerError, yaml.parser.ParserError):
            return _load(_PlainLoader, text)  # the same file again, to word its error as always
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{source}: not valid YAML{where}: {problem}"]) from None
    except (
        ValueError,
        OverflowError,
    ) as exc:  # a scalar PyYAML resolves but cannot build (a date 2024-13-45)
        raise ConfigError([f"{source}: not valid YAML: {exc}"]) from None


def _load(kind: type[_FastLoader | _PlainLoader], text: str) -> tuple[yaml.Node | None, Any]:
    """One document's node tree and data; the loader is disposed of even when the text is refused."""
    loader = kind(text)
    try:
        node = loader.get_single_node()
        return node, None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


def _yaml_lines(node: yaml.Node, path: Path_, lines: dict[Path_, int], problems: list[str]) -> None:
    """Map each key path to its 1-based line; report duplicate keys, which PyYAML would hide."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if not isinstance(key, str):  # a mapping used as a key: pydantic names it
                continue
            if key in seen:
                problems.append(
                    f"{dotted((*path, key))}: duplicate key (line {key_node.start_mark.line + 1})"
                )
            seen.add(key)
            _yaml_lines(value_node, (*path, key), lines, problems)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _yaml_lines(item, (*path, i), lines, problems)


def dotted(loc: Path_) -> str:
    """``cameras.riverbank.zones.bank.polygon[2]``: a key path as the file's author reads it."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _unwrap(annotation: Any) -> Any:
    """Through Optional[X], Annotated[X, ...] and X | None to X."""
    while get_origin(annotation) in (Annotated, Union) or type(annotation).__name__ == "UnionType":
        annotation = next((a for a in get_args(annotation) if a is not type(None)), None)
    return annotation


def _step(annotation: Any, part: str | int) -> tuple[Any, bool]:
    """The annotation one key further down, and whether that key's value may hold ``${ENV}``."""
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(str(part))
        if field is None:
            return None, False
        return field.annotation, ENV_ALLOWED in field.metadata
    if get_origin(annotation) is dict:
        return get_args(annotation)[1], False
    if get_origin(annotation) in (list, tuple) and isinstance(part, int):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        return (args[min(part, len(args) - 1)] if args else None), False
    return None, False


def _model_at(loc: Path_, root: type[BaseModel]) -> type[BaseModel] | None:
    """Walk the models along a key path from ``root``, through dicts keyed by name."""
    model: Any = root
    for part in loc:
        model, _ = _step(model, part)
    model = _unwrap(model)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def env_fields(model: type[BaseModel], prefix: Path_ = ()) -> list[str]:
    """The key paths of ``model`` whose values may hold ``${ENV_VAR}`` (``cameras.<id>.url``, ...)."""
    found = []
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        if ENV_ALLOWED in field.metadata:
            found.append(dotted(path))
            continue
        inner = _unwrap(field.annotation)
        if get_origin(inner) is dict:
            inner, path = _unwrap(get_args(inner)[1]), (*path, "<id>")
        if isinstance(inner, type) and issubclass(inner, BaseModel) and len(path) < MAX_YAML_DEPTH:
            found += env_fields(inner, path)
    return found


def _prepare(value: Any, annotation: Any, allowed: bool, path: Path_, env: Any, out: list[Any]) -> Any:
    """Expand ``${ENV}`` where allowed; collect (path, problem) for references elsewhere and for
    non-finite numbers, which no setting means."""
    if isinstance(value, str):
        if not ENV_REF.search(value):
            return value
        if allowed:
            try:
                return expand_env(value, env, path)
            except MissingEnvVar as exc:
                out.append((path, str(exc)))
                return value
        out.append((path, "env"))
        return value
    if isinstance(value, float) and not math.isfinite(value):
        out.append((path, f"must be a finite number, not {value}"))
        return value
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            inner, ok = _step(annotation, key)
            result[key] = _prepare(item, inner, ok, (*path, key), env, out)
        return result
    if isinstance(value, list):
        return [
            _prepare(item, _step(annotation, i)[0], allowed, (*path, i), env, out)
            for i, item in enumerate(value)
        ]
    return value


def _message(error: dict[str, Any], root: type[BaseModel]) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1], root)
        allowed = sorted(parent.model_fields) if parent else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown key (allowed: {', '.join(allowed)}){hint}"
    if kind == "missing":
        return "required, but missing"
    return str(error["msg"]).removeprefix("Value error, ")


def _locate(loc: Path_, lines: dict[Path_, int]) -> str:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return f" (line {lines[loc[:n]]})"
    return ""


def parse_yaml(
    text: str,
    model: type[M],
    source: str = "<config>",
    env: dict[str, str] | None = None,
    expand: Expand | None = None,
) -> M:
    """Parse YAML (or JSON) text into any model of this file's kind, with the same line-numbered
    errors as the config (ground-truth files of recorded footage use it too). ``expand`` merges
    shared settings into the data before validation (the config's camera_defaults); a problem in a
    merged value names the line it was written at and the cameras it applied to."""
    node, data = _compose(text, source)
    required = [name for name, field in model.model_fields.items() if field.is_required()]
    if data is None or node is None:
        needs = " and ".join(f"'{name}'" for name in required)
        raise ConfigError([f"{source}: the file is empty: it needs at least a {needs} section"])
    if not isinstance(data, dict):
        keys = ", ".join([*required, *(n for n in model.model_fields if n not in required)][:2])
        raise ConfigError([f"{source}: the top level must be a mapping of sections ({keys}, ...)"])
    lines: dict[Path_, int] = {}
    problems: list[str] = []
    _yaml_lines(node, (), lines, problems)
    found: list[tuple[Path_, str]] = []
    data = _prepare(data, model, False, (), env, found)
    fields = env_fields(model)
    only = f"only allowed in {', '.join(fields)}" if fields else "not allowed in this file"
    for path, problem in found:
        if problem == "env":
            problem = f"environment references (${{...}}) are {only}"
        problems.append(f"{dotted(path)}: {problem}{_locate(path, lines)}")
    if not problems:
        data, origins = expand(data) if expand else (data, {})
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            cameras: dict[tuple[Path_, str], list[str]] = {}  # one line per problem, naming its cameras
            for error in exc.errors():
                loc = tuple(p for p in error["loc"] if p != "[key]")  # a bad dict key: name the key
                written, camera = written_at(loc, origins)
                applied = cameras.setdefault((written, _message(dict(error), model)), [])
                if camera is not None:
                    applied.append(camera)
            for (written, message), applied in cameras.items():
                where = _locate(written, lines).removeprefix(" (").removesuffix(")")
                where = "; ".join(filter(None, (where, applied and f"applied to {applied_to(applied)}")))
                problems.append(f"{dotted(written)}: {message}{f' ({where})' if where else ''}")
    raise ConfigError(problems)


def load_yaml(
    path: Path, model: type[M], kind: str, env: dict[str, str] | None = None, expand: Expand | None = None
) -> M:
    """Read and validate one YAML file; every problem starts with the file's path."""
    text = read_text(path, kind)
    try:
        return parse_yaml(text, model, str(path), env, expand)
    except ConfigError as exc:
        raise ConfigError([p if p.startswith(str(path)) else f"{path}: {p}" for p in exc.problems]) from None
