"""The GeoReport v2 test server (vision/dispatch/open311_server.py) on 127.0.0.1, down until started."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vision.dispatch.open311_server import create_app

from .dispatch_support import Loopback

API_KEY = "open311-key-3141592653"
PREFIX = "/open311/v2"
SERVICES = (
    {"service_code": "SAN-7", "service_name": "Litter and dumped rubbish"},
    {"service_code": "BIKE-2", "service_name": "Abandoned or misparked bicycle"},
)


class Open311Server(Loopback):
    """The server with its requests file; ``url`` is the endpoint's base (what a target's url names)."""

    def __init__(self, db: Path, api_key: str = API_KEY, tokens: bool = False) -> None:
        app = create_app(db, api_key, SERVICES, tokens=tokens, prefix=PREFIX)
        super().__init__(app)
        self.requests = app.state.requests
        self.url = f"{self.base}{PREFIX}"

    def all(self) -> list[dict[str, Any]]:
        return self.requests.all()

    def stop(self) -> None:
        super().stop()
        self.requests.close()
