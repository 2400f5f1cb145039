"""What an API request may be: a capped body (enforced while it is read, so a lying Content-Length
does not help), strict JSON (no NaN or Infinity), and 422 answers that name the field and never
echo the input back."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 64 * 1024  # bytes: a zone with hundreds of points is a few KiB


class BodyLimit:
    """Answer 413 to any request whose body is over ``limit`` bytes."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    def _detail(self) -> str:
        return f"request body over {self.limit} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            body = json.dumps({"detail": self._detail()}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 413, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # FastAPI passes an HTTPException raised while reading the body on
                raise HTTPException(413, self._detail())
            return message

        await self.app(scope, limited_receive, send)


class NonFinite:
    """What ``NaN``, ``Infinity`` and ``-Infinity`` in a body parse to: no field accepts it, so the
    422 names the field (Python's json module would hand pydantic a float nan)."""

    def __init__(self, token: str) -> None:
        self.token = token


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), parse_constant=NonFinite)
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose JSON body is parsed strictly (RFC 8259 numbers only)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict


async def validation_failed(request: Request, exc: Exception) -> JSONResponse:
    """422 with where and what for each problem; the input is not sent back (it may be huge, or not
    valid JSON, as a NaN is)."""
    assert isinstance(exc, RequestValidationError)
    detail = [
        {
            "loc": list(error["loc"]),
            "msg": "must be a finite number: NaN and Infinity are not JSON numbers"
            if isinstance(error.get("input"), NonFinite)
            else str(error["msg"]),
            "type": str(error["type"]),
        }
        for error in exc.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)
