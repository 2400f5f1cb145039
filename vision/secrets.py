"""Secrets: ``${ENV_VAR}`` expansion and the one place where URLs are redacted for output.

Camera URLs carry passwords; they are held as :class:`SecretUrl`, whose ``str`` and
``repr`` hide the password, so a URL can be logged or returned without leaking it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import PlainSerializer, PlainValidator

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
REDACTED = "***"
SECRET_PARAMS = {"password", "pass", "pwd", "token", "key", "secret", "auth", "api_key"}


class MissingEnvVar(ValueError):
    """A ``${NAME}`` reference whose variable is not set; ``path`` names the config key."""

    def __init__(self, path: tuple[str | int, ...], name: str) -> None:
        self.path = path
        self.name = name
        super().__init__(f"environment variable {name} is not set")


def expand_env(value: Any, env: Mapping[str, str] | None = None, path: tuple[str | int, ...] = ()) -> Any:
    """Replace ``${NAME}`` in every string of a parsed YAML tree; a missing variable is an error."""
    env = os.environ if env is None else env
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise MissingEnvVar(path, name)
            return env[name]

        return ENV_REF.sub(substitute, value)
    if isinstance(value, dict):
        return {k: expand_env(v, env, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env, (*path, i)) for i, v in enumerate(value)]
    return value


def redact_url(url: str) -> str:
    """``rtsp://user:pw@host/x`` -> ``rtsp://user:***@host/x``; query tokens are hidden too."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{REDACTED}@{host}" if ":" in userinfo else f"{user}@{host}"
    query = "&".join(_redact_param(kv) for kv in parts.query.split("&")) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact_param(pair: str) -> str:
    key = pair.split("=", 1)[0]
    return f"{key}={REDACTED}" if key.lower() in SECRET_PARAMS else pair


def redact_text(text: str, url: SecretUrl) -> str:
    """Replace the URL (and its bare password) inside an error message from a library."""
    raw = url.get_secret_value()
    text = text.replace(raw, str(url))
    password = urlsplit(raw).password
    if password:
        text = text.replace(password, REDACTED)
    return text


class SecretUrl:
    """A URL whose password never reaches a log line, an error or an API answer."""

    __slots__ = ("_raw",)

    def __init__(self, raw: str) -> None:
        self._raw = raw

    def get_secret_value(self) -> str:
        """The full URL, for the one call that opens the stream."""
        return self._raw

    @property
    def is_file(self) -> bool:
        scheme = urlsplit(self._raw).scheme
        return scheme in ("", "file") or len(scheme) == 1  # one letter: a Windows drive

    def __str__(self) -> str:
        return redact_url(self._raw)

    def __repr__(self) -> str:
        return f"SecretUrl({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretUrl) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)


def _to_secret_url(value: Any) -> SecretUrl:
    if isinstance(value, SecretUrl):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty URL or file path")
    return SecretUrl(value.strip())


CameraUrl = Annotated[
    SecretUrl,
    PlainValidator(_to_secret_url),
    PlainSerializer(lambda url: str(url), return_type=str),
]
