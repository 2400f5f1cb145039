"""``street-vision serve CONFIG``: the pipeline in a background thread and the API in the foreground.

SIGINT or SIGTERM stops uvicorn, then the pipeline (waiting for its thread), then the
dispatcher (after its attempt in flight), and closes the store only then; the heatmaps
are written as after ``street-vision run``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from vision import collector
from vision.config import ConfigError, load_config

if TYPE_CHECKING:
    from vision.runtime import Runtime

log = logging.getLogger(__name__)
PIPELINE_JOIN_S = 15.0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``serve`` on the CLI's subcommand parser."""
    p = sub.add_parser(
        "serve",
        help="run the pipeline with the operator API and web page",
        description="Run every enabled camera with the REST API and the zone editor page. Bearer tokens "
        "come from the environment: STREET_VISION_ADMIN_TOKEN (read and write) and/or "
        "STREET_VISION_API_TOKEN (read only), at least 16 characters each.",
    )
    p.add_argument("config", type=Path)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow browser pages from this origin (repeatable); CORS is off without it",
    )
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from vision.api.app import create_app
    from vision.api.auth import Tokens
    from vision.api.metrics import Metrics
    from vision.runtime import Runtime, log_health
    from vision.secrets import redact_access_log

    config = load_config(args.config)
    try:
        tokens = Tokens.from_env()
    except ValueError as exc:
        raise ConfigError([str(exc)]) from None
    metrics = Metrics()
    if config.cluster is not None:  # the same API over the shards of a Ray cluster (docs/scaling.md)
        from vision.cluster.control import ClusterRuntime
        from vision.cluster.metrics import ClusterCollector

        runtime = ClusterRuntime.build(config, args.config)
        metrics.registry.register(ClusterCollector(runtime.cluster))
    else:
        runtime = Runtime.build(
            config, args.config, on_health=log_health, on_inference=metrics.observe_inference
        )
    pipeline = runtime.pipeline
    # uvicorn restores these after its own shutdown and re-raises the signal into them
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: pipeline.stop())

    def run_pipeline() -> None:
        try:
            summary = pipeline.run()
            log.info("pipeline ended: transitions %s", summary.transitions or "none")
        except Exception:
            log.exception("pipeline failed; the API keeps serving what the store holds")

    thread = threading.Thread(target=run_pipeline, name="pipeline", daemon=True)
    app = create_app(
        runtime, args.config.resolve(), tokens, metrics, args.cors_origin, pipeline_alive=thread.is_alive
    )
    if runtime.dispatcher:
        runtime.dispatcher.start()
    collector.settle()  # start-up is done (the app, the model, the cameras): out of the collector's walks
    thread.start()
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="info"))
    redact_access_log()  # after uvicorn.Config, which sets up its loggers
    try:
        server.run()
    finally:
        clean = shut_down(runtime, thread)
    log.info("stopped")
    return 0 if server.started and clean else 1


def shut_down(runtime: Runtime, thread: threading.Thread) -> bool:
    """After the web server: stop the pipeline and wait for its thread, then stop the dispatcher and close
    the store, so nothing writes to a closed store. A pipeline stuck past the join timeout keeps the
    store (what it committed is safe, SQLite is transactional); False then."""
    runtime.pipeline.stop()
    thread.join(PIPELINE_JOIN_S)
    if thread.is_alive():
        log.error("the pipeline did not stop within %.0f s; leaving the store open under it", PIPELINE_JOIN_S)
        return False
    runtime.close()
    runtime.write_heatmaps()
    return True
