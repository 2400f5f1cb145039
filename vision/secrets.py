"""Secrets: ``${ENV_VAR}`` expansion and the one place where URLs are redacted for output.

Camera URLs carry passwords; they are held as :class:`SecretUrl`, whose ``str`` and
``repr`` hide the password, so a URL can be logged or returned without leaking it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

from pydantic import PlainSerializer, PlainValidator

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
REDACTED = "***"
# Query parameters whose values are secrets: passwords and tokens of cameras (Reolink's
# `password=`, Dahua's `loginpas=`), API keys, and signed URLs (CloudFront, S3, GCS, Azure, Akamai).
SECRET_PARAMS = frozenset(
    {
        "access_token", "api_key", "api-key", "apikey", "auth", "key", "pass", "passwd", "password",
        "psw", "pwd", "loginpas", "secret", "token", "sig", "signature", "policy", "key-pair-id",
        "x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature",
        "x-goog-credential", "hdnts", "hdnea", "jwt",
    }
)  # fmt: skip
SECRET_SUFFIXES = ("token", "secret", "password", "passwd", "signature", "credential", "apikey", "api_key")
# scheme://user:password@ - the password runs to the last '@', so '#', '?', '/' and '@' in it
# (not percent-encoded, as camera web pages often give them) stay hidden; redacting a path that
# holds an '@' too is the safe side of the mistake.
USERINFO = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/?#]*):(?P<password>.*)@", re.DOTALL)
PARAM = re.compile(r"(?P<head>(?:^|[?&;])(?P<name>[^=&;?#\s]+)=)(?P<value>[^&;#\s]*)")


class EnvAllowed:
    """Marks a config field (``Annotated[T, ENV_ALLOWED]``) whose value in a file may hold ``${ENV_VAR}``.

    Here, not with the config's loading, because the fields that carry it are declared by their
    stages too (vision/dispatch/targets.py), which the config's sections import."""

    def __repr__(self) -> str:
        return "ENV_ALLOWED"


ENV_ALLOWED = EnvAllowed()


class MissingEnvVar(ValueError):
    """A ``${NAME}`` reference whose variable is not set; ``path`` names the config key."""

    def __init__(self, path: tuple[str | int, ...], name: str) -> None:
        self.path = path
        self.name = name
        super().__init__(f"environment variable {name} is not set")


def expand_env(text: str, env: Mapping[str, str] | None = None, path: tuple[str | int, ...] = ()) -> str:
    """Replace each ``${NAME}`` in one string the config file allows it in; a missing variable is an
    error naming ``path``. Callers decide where: values from the API never come here."""
    env = os.environ if env is None else env

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise MissingEnvVar(path, name)
        return env[name]

    return ENV_REF.sub(substitute, text)


def _secret_param(name: str) -> bool:
    name = unquote(name).strip().lower()
    return name in SECRET_PARAMS or name.endswith(SECRET_SUFFIXES)


def redact_url(url: str) -> str:
    """The one redaction of text that may hold a URL (a camera source, a webhook, a request line):
    ``rtsp://user:pw@host/x?token=t`` -> ``rtsp://user:***@host/x?token=***``."""
    url = USERINFO.sub(lambda m: f"{m['head']}:{REDACTED}@", url, count=1)
    return PARAM.sub(lambda m: m["head"] + REDACTED if _secret_param(m["name"]) else m[0], url)


def secret_parts(url: str) -> list[str]:
    """The password and the secret query values of ``url``, as written (for scrubbing a library's text)."""
    parts = []
    if match := USERINFO.match(url):
        parts.append(match["password"])
    parts += [m["value"] for m in PARAM.finditer(url) if _secret_param(m["name"])]
    return [p for p in parts if p]


def redact_text(text: str, *urls: SecretUrl | None) -> str:
    """Replace each URL (and its bare password and secret parameters) inside a library's error message
    (a camera's main stream and its detect_url substream)."""
    for url in urls:
        if url is None:
            continue
        raw = url.get_secret_value()
        text = text.replace(raw, str(url))
        for part in sorted(secret_parts(raw), key=len, reverse=True):
            text = text.replace(part, REDACTED)
            if unquote(part) != part:
                text = text.replace(unquote(part), REDACTED)
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


class RedactQuery(logging.Filter):
    """Redacts secret query parameters in uvicorn's access log (``GET /x?token=...``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_url(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact_url(record.msg)
        return True


def redact_access_log(name: str = "uvicorn.access") -> None:
    """Install :class:`RedactQuery` on the access logger (once)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactQuery) for f in logger.filters):
        logger.addFilter(RedactQuery())
