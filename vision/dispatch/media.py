"""Links to an event's annotated snapshot that a ticketing system can fetch without an API token.

An Open311 request carries its picture as ``media_url``: the city's system (and whoever
opens the request there) fetches it without our bearer token. So the link names one
snapshot file and carries an HMAC of it: ``{public_url}/media/{event id}/{file}?sig=...``.
The key is 32 random bytes in ``data_dir/media.key``, made on first use, so every
process on the same data folder signs alike and no config secret is needed; deleting the
file revokes every link given out.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_FILE = "media.key"


class MediaLinks:
    """Signs and checks snapshot links under ``public_url``."""

    def __init__(self, public_url: str, data_dir: Path) -> None:
        self.public_url = public_url.rstrip("/")
        self.data_dir = data_dir

    def url(self, event_id: str, name: str) -> str:
        return f"{self.public_url}/media/{event_id}/{name}?sig={self.signature(event_id, name)}"

    def signature(self, event_id: str, name: str) -> str:
        return hmac.new(self._key(), f"{event_id}/{name}".encode(), hashlib.sha256).hexdigest()

    def valid(self, event_id: str, name: str, signature: str) -> bool:
        if not (self.data_dir / KEY_FILE).is_file():  # no link was ever given out
            return False
        return hmac.compare_digest(self.signature(event_id, name).encode(), signature.encode())

    def _key(self) -> bytes:
        path = self.data_dir / KEY_FILE
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # exclusive create: two processes starting at once keep the same key
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes()
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))
        return path.read_bytes()
