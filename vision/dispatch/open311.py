"""The Open311 (GeoReport v2) target: an event becomes a service request, and its status is read back.

GeoReport v2 knows only two verbs for a client: file a request (``POST requests.json``)
and read one (``GET requests/{id}.json``, ``GET tokens/{token}.json``). So:

- ``open`` files a request: the event type's ``service_code``, the zone's (or camera's)
  lat/long, a description, the ``api_key``, ``attribute[event_id]`` and, with
  ``dispatch.public_url``, the annotated snapshot as ``media_url``;
- ``reopen`` (the problem came back, or the camera did not confirm a reported fix) files
  a new request, which then stands for the event at this target (a closed request
  cannot be reopened in v2);
- ``update`` and ``close`` are not sent: v2 has no verb for them. They are marked
  delivered without a request, so they never hold anything back. The city closes its
  own request; a request of an event that closed by itself stays open there.

The answer's ``service_request_id`` is the ticket id; an endpoint that answers with a
``token`` instead gets ``token:<token>`` stored, which the status poll turns into the
request id later (:mod:`vision.dispatch.open311_status`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from vision.dispatch.media import MediaLinks
from vision.dispatch.outbox import Message
from vision.dispatch.targets import Location, TargetConfig
from vision.dispatch.webhook import Answer, refused, unreachable
from vision.secrets import redact_url

TOKEN = "token:"  # prefix of a stored ticket id that is still a token
DESCRIPTION_MAX = 4000  # characters, as GeoReport v2 limits description
Places = dict[tuple[str, str], Location]  # (camera, zone) -> where it is; (camera, "") -> the camera's


@dataclass(frozen=True, slots=True)
class RequestStatus:
    """A service request as ``GET requests/{id}.json`` describes it."""

    status: str  # open or closed
    notes: str | None


class Open311Client:
    """Files service requests at one GeoReport v2 endpoint and reads them back; never raises for
    network or HTTP trouble (an :class:`Answer`, or a reason beside None, says what happened)."""

    def __init__(self, target: TargetConfig, places: Places, media: MediaLinks | None) -> None:
        self.base = target.url.rstrip("/")
        self.shown = redact_url(self.base)
        self.target = target
        self.places = places
        self.media = media
        self.timeout = target.timeout
        self._http = httpx.Client(timeout=target.timeout, follow_redirects=False)

    def send(self, message: Message) -> Answer:
        """File a request for an open or reopen (or an event's first message that is an update, when it
        was routed here only then); anything else has no verb in GeoReport v2 and is not sent."""
        files = message.kind in ("open", "reopen") or (message.kind == "update" and message.ticket_id is None)
        if not files:
            return Answer(True)
        stored = json.loads(message.payload)
        event = stored["event"]
        if self.place(event["camera"], event["zone"]) is None:  # a zone added since the config was read
            where = f"zone {event['zone']} of camera {event['camera']} has no location"
            fix = f"set cameras.{event['camera']}.location, then: street-vision outbox resend CONFIG"
            return Answer(False, error=f"{where}: {fix}", final=True)
        form = self.form(stored, message.kind == "reopen")
        request = f"POST {self.shown}/requests.json"
        try:
            response = self._http.post(f"{self.base}/requests.json", data=form)
        except httpx.HTTPError as exc:
            return Answer(False, error=f"{request}: {unreachable(exc, self.timeout)}")
        if not response.is_success:
            return refused(response, request, "the target's url", _errors(response))
        ticket = _filed(response)
        if ticket is None:  # filed, perhaps, but unknown: sending it again could only file it twice
            excerpt = " ".join(response.text[:200].split())
            said = f"HTTP {response.status_code} without a service_request_id or token: {excerpt}"
            return Answer(False, error=f"{request}: {said}", status=response.status_code, final=True)
        return Answer(True, ticket_id=ticket, replace=message.kind != "open")

    def form(self, stored: dict[str, Any], reopen: bool) -> dict[str, str]:
        """The form fields of one service request (the api_key among them: never logged)."""
        event = stored["event"]
        place = self.place(event["camera"], event["zone"])
        assert place is not None, "send() checks the place first"
        what = f"{event['type'].replace('_', ' ')} in zone {event['zone']} of camera {event['camera']}"
        seen = f"{event['count']} seen" if event.get("count") else "seen"
        again = "Reported again: the camera still sees it. " if reopen else ""
        form = {
            "service_code": self.target.service_codes[event["type"]],
            "lat": f"{place.lat:.7f}",
            "long": f"{place.long:.7f}",
            "description": f"{again}{what}: {seen} (street-vision event {event['event_id']})"[
                :DESCRIPTION_MAX
            ],
            "attribute[event_id]": event["event_id"],
        }
        if self.target.api_key is not None:
            form["api_key"] = self.target.api_key.get_secret_value()
        if self.target.jurisdiction_id:
            form["jurisdiction_id"] = self.target.jurisdiction_id
        annotated = (stored.get("snapshots") or {}).get("annotated")
        if self.media is not None and annotated:
            form["media_url"] = self.media.url(event["event_id"], annotated.rsplit("/", 1)[-1])
        return form

    def place(self, camera: str, zone: str) -> Location | None:
        """The zone's own location, else its camera's."""
        return self.places.get((camera, zone)) or self.places.get((camera, ""))

    def status(self, request_id: str) -> tuple[RequestStatus | None, str | None]:
        """The request's status, or None and why it could not be read."""
        found, error = self._get(f"requests/{request_id}.json")
        if found is None:
            return None, error
        status = found.get("status")
        if status not in ("open", "closed"):
            return (
                None,
                f"GET {self.shown}/requests/{request_id}.json: no status open or closed in the answer",
            )
        notes = found.get("status_notes")
        return RequestStatus(str(status), str(notes) if notes else None), None

    def request_id(self, token: str) -> tuple[str | None, str | None]:
        """The service_request_id a token stands for (None while it has none), and why it could not be
        read (None: it could)."""
        found, error = self._get(f"tokens/{token}.json")
        value = None if found is None else found.get("service_request_id")
        return (None if value in (None, "") else str(value)), error

    def _get(self, path: str) -> tuple[dict[str, Any] | None, str | None]:
        """The first element of a GeoReport v2 answer (always an array), or None and why there is none."""
        request = f"GET {self.shown}/{path}"
        params = {"jurisdiction_id": self.target.jurisdiction_id} if self.target.jurisdiction_id else None
        try:
            response = self._http.get(f"{self.base}/{path}", params=params)
        except httpx.HTTPError as exc:
            return None, f"{request}: {unreachable(exc, self.timeout)}"
        if not response.is_success:
            return None, refused(response, request, "the target's url", _errors(response)).error
        first = _first(response)
        return (first, None) if first is not None else (None, f"{request}: not a GeoReport v2 answer")

    def close(self) -> None:
        self._http.close()


def _first(response: httpx.Response) -> dict[str, Any] | None:
    try:
        data = response.json()
    except ValueError:
        return None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return data[0]
    return None


def _filed(response: httpx.Response) -> str | None:
    """The ticket id of a filed request: its service_request_id, or ``token:<token>`` until it has one."""
    first = _first(response)
    if first is None:
        return None
    if first.get("service_request_id") not in (None, ""):
        return str(first["service_request_id"])
    if first.get("token") not in (None, ""):
        return f"{TOKEN}{first['token']}"
    return None


def _errors(response: httpx.Response) -> str | None:
    """GeoReport v2 errors (``[{"code": 400, "description": ...}]``) as one line; None: not that form."""
    try:
        data = response.json()
    except ValueError:
        return None
    if not isinstance(data, list):
        return None
    said = [str(e.get("description", "")) for e in data if isinstance(e, dict)]
    return "; ".join(s for s in said if s)[:200] or None
