"""A small GeoReport v2 (Open311) server: what street-vision's Open311 target talks to in tests and demos.

It follows the spec (http://wiki.open311.org/GeoReport_v2) for what a client does:
``GET services.json``, ``POST requests.json`` (form-encoded, with the spec's checks and
its error form ``[{"code": 400, "description": ...}]``: 400 for a missing service_code or
location, 403 for a bad api_key, 404 for an unknown service_code), ``GET
requests/{id}.json`` (404 for an unknown request), ``GET requests.json`` and, with
``tokens``, the deferred ids of ``GET tokens/{token}.json``. Requests are kept in SQLite.

What a city's staff do (work on a request, close it) is not in the spec; here it is
:meth:`Requests.update`, which ``street-vision open311-server --close ID --notes TEXT``
(or ``--note``) calls on the same file while the server runs.

Run it with ``street-vision open311-server`` (api_key from ``STREET_VISION_OPEN311_API_KEY``).
"""

from __future__ import annotations

import hmac
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from vision.db import SharedFile, immediate
from vision.dispatch.signed import capped_body
from vision.dispatch.signing import API_KEY_ENV

MAX_FORM = 64 * 1024  # bytes of one service request
DESCRIPTION_MAX = 4000  # characters, as the spec limits description
SERVICES = (
    {"service_code": "litter", "service_name": "Litter on the street"},
    {"service_code": "bike_parking", "service_name": "Bicycle parked in the way"},
    {"service_code": "fishing", "service_name": "Fishing where it is forbidden"},
    {"service_code": "crowd", "service_name": "Crowd"},
)
COLUMNS = (
    "service_request_id",
    "token",
    "service_code",
    "lat",
    "long",
    "description",
    "media_url",
    "attributes",
    "status",
    "status_notes",
    "requested_datetime",
    "updated_datetime",
)
SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    service_request_id INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL UNIQUE,
    service_code TEXT NOT NULL,
    lat REAL,
    long REAL,
    description TEXT,
    media_url TEXT,
    attributes TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    status_notes TEXT,
    requested_datetime TEXT NOT NULL,
    updated_datetime TEXT NOT NULL
);
"""


class Open311Error(Exception):
    """A request refused in the spec's form."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Requests(SharedFile):
    """The service requests in one SQLite file, behind one connection that requests take in turn."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, SCHEMA)

    def file(
        self, code: str, lat: float | None, long: float | None, fields: dict[str, str]
    ) -> tuple[int, str]:
        """Keep a new open request; its id and token."""
        attributes = {k[len("attribute[") : -1]: v for k, v in fields.items() if k.startswith("attribute[")}
        token, now = uuid.uuid4().hex, _now()
        with self.connection() as db, immediate(db):
            row = db.execute(
                "INSERT INTO requests (token, service_code, lat, long, description, media_url, attributes, "
                "status, requested_datetime, updated_datetime) VALUES (?,?,?,?,?,?,?,'open',?,?) "
                "RETURNING service_request_id",
                (
                    token,
                    code,
                    lat,
                    long,
                    fields.get("description"),
                    fields.get("media_url"),
                    json.dumps(attributes),
                    now,
                    now,
                ),
            ).fetchone()
        return int(row[0]), token

    def get(self, request_id: str) -> dict[str, Any] | None:
        if not request_id.isdigit():
            return None
        with self.connection() as db:
            row = db.execute(
                f"SELECT {', '.join(COLUMNS)} FROM requests WHERE service_request_id = ?", (int(request_id),)
            ).fetchone()
        return None if row is None else dict(zip(COLUMNS, row, strict=True))

    def by_token(self, token: str) -> int | None:
        with self.connection() as db:
            row = db.execute("SELECT service_request_id FROM requests WHERE token = ?", (token,)).fetchone()
        return None if row is None else int(row[0])

    def all(self, status: str | None = None) -> list[dict[str, Any]]:
        where = "" if status is None else " WHERE status = ?"
        with self.connection() as db:
            rows = db.execute(
                f"SELECT {', '.join(COLUMNS)} FROM requests{where} ORDER BY service_request_id",
                () if status is None else (status,),
            ).fetchall()
        return [dict(zip(COLUMNS, row, strict=True)) for row in rows]

    def update(self, request_id: int, status: str, notes: str | None) -> bool:
        """What the city's staff do: note progress (status stays open) or close a request; False when there
        is no such request."""
        if status not in ("open", "closed"):
            raise ValueError(f"status must be open or closed, not {status!r}")
        with self.connection() as db, immediate(db):
            changed = db.execute(
                "UPDATE requests SET status = ?, status_notes = ?, updated_datetime = ? "
                "WHERE service_request_id = ?",
                (status, notes, _now(), request_id),
            ).rowcount
        return changed == 1


def _described(request: dict[str, Any], services: dict[str, str]) -> dict[str, Any]:
    """A request as ``GET requests/{id}.json`` shows it (the spec's field names)."""
    return {
        "service_request_id": str(request["service_request_id"]),
        "status": request["status"],
        "status_notes": request["status_notes"],
        "service_name": services.get(request["service_code"]),
        "service_code": request["service_code"],
        "description": request["description"],
        "agency_responsible": None,
        "service_notice": None,
        "requested_datetime": request["requested_datetime"],
        "updated_datetime": request["updated_datetime"],
        "expected_datetime": None,
        "address": None,
        "address_id": None,
        "zipcode": None,
        "lat": request["lat"],
        "long": request["long"],
        "media_url": request["media_url"],
    }


def _coordinate(fields: dict[str, str], name: str, limit: float) -> float:
    try:
        value = float(fields[name])
    except ValueError:
        raise Open311Error(400, f"{name} must be a number in decimal degrees") from None
    if not -limit <= value <= limit:
        raise Open311Error(400, f"{name} must be between -{limit:g} and {limit:g}")
    return value


def check(fields: dict[str, str], api_key: str, services: dict[str, str]) -> tuple[str, float, float]:
    """The spec's checks of a new request, in its order of importance: api_key, service_code, location."""
    if not hmac.compare_digest(fields.get("api_key", "").encode(), api_key.encode()):
        raise Open311Error(403, "api_key is missing or not valid")
    code = fields.get("service_code", "")
    if not code:
        raise Open311Error(400, "service_code was not provided")
    if code not in services:
        raise Open311Error(404, f"service_code {code!r} not found")
    if not fields.get("lat") or not fields.get("long"):
        has_address = fields.get("address_string") or fields.get("address_id")
        raise Open311Error(
            400,
            "lat & long required (this server places requests by coordinates only)"
            if has_address
            else "lat & long, address_string, or address_id required",
        )
    if len(fields.get("description", "")) > DESCRIPTION_MAX:
        raise Open311Error(400, f"description is over {DESCRIPTION_MAX} characters")
    return code, _coordinate(fields, "lat", 90), _coordinate(fields, "long", 180)


def _error(code: int, description: str) -> JSONResponse:
    return JSONResponse([{"code": code, "description": description}], status_code=code)


def create_app(
    db_path: Path,
    api_key: str,
    services: tuple[dict[str, str], ...] = SERVICES,
    tokens: bool = False,
    prefix: str = "",
) -> FastAPI:
    """The server over ``db_path``; ``tokens``: answer a new request with a token, its id coming from
    ``GET tokens/{token}.json`` (the spec's deferred ids); ``prefix``: the endpoint's base path."""
    if not api_key:
        raise ValueError(f"the server needs an api_key ({API_KEY_ENV})")
    store = Requests(db_path)
    names = {s["service_code"]: s["service_name"] for s in services}
    app = FastAPI(title="GeoReport v2 test server", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.requests = store

    @app.exception_handler(Open311Error)
    async def refused(_: Request, exc: Open311Error) -> JSONResponse:
        return _error(exc.code, exc.description)

    @app.get(f"{prefix}/services.json")
    async def service_list() -> list[dict[str, Any]]:
        return [
            {
                **s,
                "description": s["service_name"],
                "metadata": False,
                "type": "realtime",
                "keywords": "",
                "group": "",
            }
            for s in services
        ]

    @app.post(f"{prefix}/requests.json", status_code=201)
    async def post_request(request: Request) -> list[dict[str, Any]]:
        if (
            request.headers.get("content-type", "").split(";")[0].strip()
            != "application/x-www-form-urlencoded"
        ):
            raise Open311Error(400, "the body must be application/x-www-form-urlencoded")
        try:
            raw = await capped_body(request, MAX_FORM)
            parsed = parse_qs(raw.decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            raise Open311Error(400, "the body is not UTF-8") from None
        except HTTPException as exc:  # over MAX_FORM: said in the spec's form
            raise Open311Error(exc.status_code, str(exc.detail)) from None
        fields = {key: values[-1] for key, values in parsed.items()}
        code, lat, long = check(fields, api_key, names)
        request_id, token = store.file(code, lat, long, fields)
        if tokens:
            return [{"token": token, "service_notice": ""}]
        return [{"service_request_id": str(request_id), "service_notice": "", "account_id": None}]

    @app.get(f"{prefix}/tokens/{{token}}.json")
    async def token_id(token: str) -> list[dict[str, Any]]:
        found = store.by_token(token)
        if found is None:
            raise Open311Error(404, f"token {token!r} not found")
        return [{"service_request_id": str(found), "token": token}]

    @app.get(f"{prefix}/requests/{{request_id}}.json")
    async def get_request(request_id: str) -> list[dict[str, Any]]:
        found = store.get(request_id)
        if found is None:
            raise Open311Error(404, f"service request {request_id!r} not found")
        return [_described(found, names)]

    @app.get(f"{prefix}/requests.json")
    async def list_requests(status: str | None = None) -> list[dict[str, Any]]:
        if status not in (None, "open", "closed"):
            raise Open311Error(400, "status must be open or closed")
        return [_described(r, names) for r in store.all(status)]

    return app
