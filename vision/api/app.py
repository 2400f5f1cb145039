"""The FastAPI app: routers per resource, bearer auth, a body limit, the page as static files."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from vision.api import cameras, events, figures, media, outbox, reports, review, zones
from vision.api.auth import Reader, Tokens
from vision.api.config_file import ConfigFile
from vision.api.limits import MAX_BODY, BodyLimit, validation_failed
from vision.api.metrics import Metrics
from vision.api.models import Healthz
from vision.api.state import Service, ServiceDep
from vision.ingest.health import CameraState
from vision.runtime import Runtime

STATIC = Path(__file__).parent / "static"


def create_app(
    runtime: Runtime,
    config_path: Path,
    tokens: Tokens,
    metrics: Metrics | None = None,
    cors_origins: list[str] | None = None,
    max_body: int = MAX_BODY,
    pipeline_alive: Callable[[], bool] | None = None,
) -> FastAPI:
    """The API over a built runtime; ``metrics`` should be the one whose latency hook the runtime got,
    and ``pipeline_alive`` tells /healthz whether the thread running the pipeline still runs."""
    metrics = metrics or Metrics()
    metrics.watch(runtime)
    app = FastAPI(
        title="street-vision",
        summary="Cameras, zones, events and the ticket outbox of one running street-vision service.",
        version="1",
    )
    app.state.service = Service(runtime, ConfigFile(config_path), metrics)
    app.state.tokens = tokens
    app.add_middleware(BodyLimit, limit=max_body)
    app.add_exception_handler(RequestValidationError, validation_failed)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    for module in (cameras, zones, events, reports, review, figures, outbox, media):
        app.include_router(module.router)

    @app.get(
        "/healthz",
        response_model=Healthz,
        response_model_exclude_unset=True,  # shards and replicas only on a cluster
        tags=["service"],
        responses={
            503: {"model": Healthz, "description": "the pipeline has stopped or a camera keeps failing"}
        },
    )
    def healthz(svc: ServiceDep, response: Response) -> Healthz:
        """Liveness, without a token: 503 when the pipeline has stopped or a camera has been in error
        longer than ``health.error_grace``, with each camera's state (the errors: /api/cameras), and on a
        cluster a line per shard and per detector replica."""
        health = svc.runtime.pipeline.health()
        problems = [] if pipeline_alive is None or pipeline_alive() else ["the pipeline has stopped"]
        grace, now = svc.runtime.config.health.error_grace, time.time()
        problems += [
            f"camera {camera_id} has been failing for {now - h.since:.0f} s"
            for camera_id, h in health.items()
            if h.state is CameraState.ERROR and now - h.since > grace
        ]
        if problems:
            response.status_code = 503
        states = {camera_id: h.state.value for camera_id, h in health.items()}
        members = svc.runtime.pipeline.members() or {}  # a cluster's shards and replicas
        return Healthz(status="failing" if problems else "ok", problems=problems, cameras=states, **members)

    @app.get(
        "/metrics",
        response_class=Response,
        dependencies=[Reader],
        tags=["service"],
        responses={200: {"content": {"text/plain": {}}}},
    )
    def prometheus(svc: ServiceDep) -> Response:
        """Prometheus text format."""
        return Response(svc.metrics.text(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
