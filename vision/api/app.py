"""The FastAPI app: routers per resource, bearer auth, a body limit, the page as static files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from vision.api import cameras, events, outbox, zones
from vision.api.auth import Reader, Tokens
from vision.api.config_file import ConfigFile
from vision.api.limits import MAX_BODY, BodyLimit, validation_failed
from vision.api.metrics import Metrics
from vision.api.models import Healthz
from vision.api.state import Service, ServiceDep
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
    for module in (cameras, zones, events, outbox):
        app.include_router(module.router)

    @app.get("/healthz", response_model=Healthz, tags=["service"])
    def healthz(svc: ServiceDep) -> Healthz:
        """Liveness, without a token: the service answers, whether the pipeline runs, each camera's state."""
        states = {k: h.state.value for k, h in svc.runtime.pipeline.health().items()}
        running = pipeline_alive is None or pipeline_alive()
        return Healthz(status="ok" if running else "pipeline stopped", cameras=states)

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
