"""Bearer tokens: a read-only one and an admin one (writes), both from the environment.

Tokens are compared in constant time and never logged or returned; a request without a
token, or with one that matches neither, gets 401, and a read token on a write 403.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

READ_ENV = "STREET_VISION_API_TOKEN"
ADMIN_ENV = "STREET_VISION_ADMIN_TOKEN"
MIN_LENGTH = 16


class Role(StrEnum):
    READ = "read"
    ADMIN = "admin"


@dataclass(frozen=True)
class Tokens:
    """The accepted tokens; either may be absent, not both."""

    read: str | None
    admin: str | None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Tokens:
        """Read both variables; raise ValueError naming what to set when they are missing or weak."""
        env = dict(os.environ) if env is None else env
        tokens = cls(env.get(READ_ENV) or None, env.get(ADMIN_ENV) or None)
        if tokens.read is None and tokens.admin is None:
            raise ValueError(
                f"set {ADMIN_ENV} (read and write) and/or {READ_ENV} (read only): "
                "every API request but /healthz needs a bearer token"
            )
        for name, value in ((READ_ENV, tokens.read), (ADMIN_ENV, tokens.admin)):
            if value is not None and len(value) < MIN_LENGTH:
                raise ValueError(f"{name} is too short: use at least {MIN_LENGTH} random characters")
        if tokens.read is not None and tokens.read == tokens.admin:
            raise ValueError(f"{READ_ENV} and {ADMIN_ENV} must differ")
        return tokens

    def role(self, token: str) -> Role | None:
        """The role of ``token``; both comparisons always run, in constant time."""
        given = token.encode()
        admin = self.admin is not None and hmac.compare_digest(given, self.admin.encode())
        read = self.read is not None and hmac.compare_digest(given, self.read.encode())
        return Role.ADMIN if admin else Role.READ if read else None


bearer = HTTPBearer(auto_error=False, description=f"{READ_ENV} (read only) or {ADMIN_ENV} (read and write)")


def role(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Role:
    """Any valid token."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise HTTPException(401, "missing bearer token: send 'Authorization: Bearer <token>'", challenge)
    found = request.app.state.tokens.role(credentials.credentials)
    if found is None:
        raise HTTPException(401, "invalid bearer token", challenge)
    return found


def admin(found: Annotated[Role, Depends(role)]) -> Role:
    """The admin token: for every request that changes something."""
    if found is not Role.ADMIN:
        raise HTTPException(403, f"this request changes something: it needs the admin token ({ADMIN_ENV})")
    return found


Reader = Depends(role)
Admin = Depends(admin)
