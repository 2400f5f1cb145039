"""Dispatch targets and their routes, as the config names them (``dispatch.targets``).

A target is one ticketing system: a signed ``webhook`` or an ``open311`` (GeoReport v2)
endpoint, each with its own outbox order, retries and dead letter. Its ``route`` says
which events it gets: by event type, camera group and the hours of the day in a time
zone. These models live here rather than in :mod:`vision.config` because the
dispatcher and the router read them; the config only embeds them.
"""

from __future__ import annotations

import re
from datetime import time as clock
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from vision.secrets import ENV_ALLOWED

HOURS = re.compile(r"^\s*([01]\d|2[0-3]):([0-5]\d)\s*-\s*([01]\d|2[0-4]):([0-5]\d)\s*$")
MAX_TARGETS = 32  # named dispatch targets per config
IMPLICIT = "webhook"  # the name of the target that dispatch.webhook_url stands for


def at_keys(model: str, problems: list[tuple[tuple[str, ...], str]]) -> ValidationError:
    """Problems found by a validator of a whole section, each at the key it is about (so the config's
    message names that key and its line, not the section's)."""
    return ValidationError.from_exception_data(
        model,
        [
            InitErrorDetails(type=PydanticCustomError("config", text), loc=loc, input=None)
            for loc, text in problems
        ],
    )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def http_url(url: str | None) -> str | None:
    """An http(s) URL with a host, or None."""
    if url is not None and not re.match(r"^https?://[^/\s]+", url):
        raise ValueError("must be an http:// or https:// URL")
    return url


class Location(_Strict):
    """A point on the map in WGS84 degrees (Open311 needs one for every service request)."""

    lat: float = Field(ge=-90, le=90, description="Latitude, degrees north.")
    long: float = Field(ge=-180, le=180, description="Longitude, degrees east.")


class Delivery(_Strict):
    """How hard one target is tried: per-request timeout, attempts and backoff (wall clock)."""

    timeout: float = Field(5.0, gt=0, le=120, description="Seconds per request.")
    max_attempts: int = Field(
        400,
        ge=1,
        le=100000,
        description="Attempts before a message is dead-lettered (400 with the default backoff: about a "
        "day of receiver downtime).",
    )
    backoff_initial: float = Field(1.0, gt=0, description="First retry delay, seconds; doubles each try.")
    backoff_max: float = Field(300.0, gt=0, description="Longest retry delay, seconds (before jitter).")


def _parse_hours(span: str) -> tuple[clock, clock]:
    match = HOURS.match(span)
    if match is None:
        raise ValueError(f"{span!r} is not a span of hours: use 'HH:MM-HH:MM', e.g. '07:00-19:00'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h2 == 24 and m2 != 0:
        raise ValueError(f"{span!r}: 24:00 is the latest end")
    end = clock(23, 59, 59, 999999) if h2 == 24 else clock(h2, m2)
    if (h1, m1) == (h2, m2):
        raise ValueError(f"{span!r} is empty: start and end are the same")
    return clock(h1, m1), end


class RouteConfig(_Strict):
    """Which events a target gets; every given condition must hold (none given: all events)."""

    types: list[str] | None = Field(
        None, description="Event types (rule names: litter, crowd, ...); null: every type."
    )
    groups: list[str] | None = Field(
        None, description="Camera groups (cameras.<id>.group); null: every camera, grouped or not."
    )
    hours: list[str] | None = Field(
        None,
        description="Spans of the day as 'HH:MM-HH:MM' in `timezone` (a span may run past midnight, "
        "'22:00-06:00'); null: all day. Judged at the event's own time: the frame's wall time (live "
        "cameras), else the moment its transition was committed.",
    )
    timezone: str = Field("UTC", description="IANA time zone of `hours`, e.g. Europe/Berlin.")

    @field_validator("hours")
    @classmethod
    def _spans(cls, hours: list[str] | None) -> list[str] | None:
        for span in hours or ():
            _parse_hours(span)
        if hours is not None and not hours:
            raise ValueError("is empty: the target would get nothing (leave it out for all day)")
        return hours

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{name!r} is not a known IANA time zone (e.g. Europe/Berlin, UTC)") from None
        return name

    def spans(self) -> list[tuple[clock, clock]]:
        return [_parse_hours(s) for s in self.hours or ()]


class TargetConfig(Delivery):
    """One ticketing system that gets the events its route selects, with its own outbox order."""

    kind: Literal["webhook", "open311"] = Field(
        description="webhook: signed JSON POSTs (docs/webhook.md); open311: GeoReport v2 service requests "
        "(docs/open311.md)."
    )
    url: Annotated[str, ENV_ALLOWED] = Field(
        description="webhook: the URL POSTed to; open311: the endpoint's base URL (requests.json is under "
        "it). May hold ${ENV_VAR} references."
    )
    secret: Annotated[SecretStr | None, ENV_ALLOWED] = Field(
        None, description="webhook only, and required there: HMAC-SHA256 signing key; use ${ENV_VAR}."
    )
    api_key: Annotated[SecretStr | None, ENV_ALLOWED] = Field(
        None, description="open311 only: the api_key the endpoint issued; use ${ENV_VAR}."
    )
    jurisdiction_id: str | None = Field(
        None, description="open311 only: sent when the endpoint serves several jurisdictions."
    )
    service_codes: dict[str, str] = Field(
        default_factory=dict,
        description="open311 only, and required there: the service_code for each event type it gets, "
        "e.g. {litter: '4fd3b167e750846744000005'}; events of other types are not routed to it.",
    )
    poll_interval: float = Field(
        300.0,
        ge=0.1,
        le=86400,
        description="open311 only: wall-clock seconds between two status polls of its open requests.",
    )
    route: RouteConfig = Field(default_factory=RouteConfig, description="Which events it gets.")

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        return http_url(url) or url

    @model_validator(mode="after")
    def _kind_fields(self) -> TargetConfig:
        webhook = self.kind == "webhook"
        problems: list[tuple[tuple[str, ...], str]] = []
        if webhook and (self.secret is None or not self.secret.get_secret_value()):
            problems.append((("secret",), "required for a webhook target: every request is signed with it"))
        for name, used in (
            ("secret", self.secret is not None and not webhook),
            ("api_key", self.api_key is not None and webhook),
            ("jurisdiction_id", self.jurisdiction_id is not None and webhook),
            ("service_codes", bool(self.service_codes) and webhook),
        ):
            if used:
                problems.append(((name,), f"not used by a {self.kind} target"))
        if not webhook and not self.service_codes:
            problems.append((("service_codes",), "required for an open311 target (event type: service_code)"))
        missing = [t for t in self.route.types or () if not webhook and t not in self.service_codes]
        if missing:
            problems.append((("route", "types"), f"{', '.join(missing)} has no entry in service_codes"))
        if problems:
            raise at_keys("TargetConfig", problems)
        return self

    def types(self) -> set[str] | None:
        """The event types it can take: its route's, and for open311 only those with a service_code."""
        if self.kind == "open311":
            return set(self.route.types or self.service_codes)
        return None if self.route.types is None else set(self.route.types)
