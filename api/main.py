"""The ASGI app: `create_app()` wires settings, database, writer, engine, routes and error handlers.

    uvicorn --factory api.main:create_app          # or: moderato serve

The lifespan migrates the database (unless MODERATO_AUTO_MIGRATE=false), starts the single writer,
loads the bundle (MODERATO_BUNDLE, else the promoted version in the data directory, else the
packaged default) and starts background work (webhook delivery, retention purge).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.background import PeriodicTask
from api.config import Settings
from api.db import Database, migrate
from api.errors import ModeratoError
from api.limits import BodySizeLimit
from api.moderation import Moderation
from api.observability import Metrics, RequestMetrics, configure_logging
from api.reload import BundleReloader, bundle_dir
from api.routes import admin, akismet, comments, coral, health, moderation_ui, perspective, queue, sites
from api.site_cache import SiteCache
from api.store.bundles import promoted_version
from api.store.comments import purge_expired_text
from api.store.webhooks import WEBHOOKS_QUEUED
from api.webhooks import WebhookSender
from api.writer import Writer
from classifier import Engine
from classifier.errors import BundleError, InputError

log = logging.getLogger("moderato.app")

DESCRIPTION = """Moderato scores comments for spam (including plugs hidden in real comments), toxicity and
off-topic, explains every verdict with evidence spans, remembers it, and tells the platform when a
moderator decides. Authenticate with `Authorization: Bearer <site API key>`."""


def load_engine(settings: Settings, db: Database) -> Engine:
    """MODERATO_BUNDLE, else the promoted version under the data directory, else the packaged default."""
    if settings.bundle is not None:
        return Engine.load(settings.bundle)
    with db.read_session() as session:
        version = promoted_version(session=session)
    if version is not None:
        path = bundle_dir(settings, version)
        if path.is_dir():
            try:
                return Engine.load(path)
            except BundleError as exc:
                # e.g. a bundle of an older format after an upgrade: serve the packaged bundle and
                # say loudly what to do, rather than refuse to start the moderation service.
                log.error(
                    "promoted bundle cannot be loaded; serving the packaged bundle",
                    extra={"event": "bundle.load_failed", "version": version, "error": str(exc)},
                )
                return Engine.load(None)
        log.warning("promoted bundle missing", extra={"event": "bundle.missing", "version": version})
    return Engine.load(None)


def allowed_methods(app: FastAPI, request: Request) -> str:
    """Every method some route takes at this path. Starlette's 405 names only the first route that
    matched the path, and GET and DELETE /v1/comments/{id} are two routes."""
    allowed = []
    for method in ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the service. `engine` skips bundle loading (tests pass a tiny bundle's engine)."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(level=settings.log_level, json_lines=settings.log_json)
        if settings.gil_switch_interval:
            sys.setswitchinterval(settings.gil_switch_interval)
        if settings.auto_migrate:
            migrate(settings.database_url)
        db = Database.from_url(settings.database_url)
        writer = Writer(db.writer, max_batch=settings.writer_max_batch)
        writer.on_batch = metrics.record_batch
        writer.start()
        moderation = Moderation(db=db, writer=writer, settings=settings, metrics=metrics, engine=engine)
        reloader = BundleReloader(moderation=moderation, db=db, settings=settings)
        reloader.prime()  # before loading, so a promotion made meanwhile is picked up by the first check
        if moderation.engine is None:
            try:
                moderation.engine = load_engine(settings, db)
            except BundleError:
                log.exception("no usable bundle", extra={"event": "bundle.load_failed"})
        sender = WebhookSender(db=db, writer=writer, settings=settings, metrics=metrics)
        webhooks = PeriodicTask("webhooks", interval=settings.webhook_poll_seconds, fn=sender.deliver_due)
        writer.on_commit(WEBHOOKS_QUEUED, webhooks.wake)
        retention = PeriodicTask(
            "retention",
            interval=settings.retention_check_seconds,
            fn=lambda: writer.run_sync(lambda s: purge_expired_text(session=s)),
        )
        app.state.db, app.state.writer, app.state.moderation = db, writer, moderation
        app.state.webhooks, app.state.webhook_sender = webhooks, sender
        reload_task = PeriodicTask("bundle-reload", interval=settings.bundle_check_seconds, fn=reloader.check)
        app.state.reloader = reloader
        webhooks.start()
        retention.start()
        reload_task.start()
        log.info(
            "service started",
            extra={
                "event": "service.started",
                "bundle": moderation.engine.version if moderation.engine else None,
                "database": db.reader.url.get_backend_name(),
            },
        )
        try:
            yield
        finally:
            reload_task.stop()
            webhooks.stop()
            retention.stop()
            sender.close()
            writer.stop()
            db.dispose()

    app = FastAPI(
        title="Moderato",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.site_cache = SiteCache(settings.auth_cache_seconds)
    app.include_router(health.router)
    app.include_router(comments.router)
    app.include_router(sites.router)
    app.include_router(akismet.router)
    app.include_router(perspective.router)
    app.include_router(coral.router)
    app.include_router(admin.router)
    app.include_router(queue.router)
    app.include_router(moderation_ui.router)
    _register_error_handlers(app)
    app.add_middleware(BodySizeLimit)
    app.add_middleware(RequestMetrics, metrics=metrics)
    return app


def _register_error_handlers(app: FastAPI) -> None:
    """Every domain error becomes an HTTP response here, and only here."""

    @app.exception_handler(ModeratoError)
    async def _domain(_: Request, exc: ModeratoError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(InputError)
    async def _engine_input(_: Request, exc: InputError) -> JSONResponse:
        loc: list[Any] = ["body", "comment", exc.field or "text"]
        return JSONResponse({"detail": [{"type": "value_error", "loc": loc, "msg": str(exc)}]}, status_code=422)

    @app.exception_handler(BundleError)
    async def _bundle(_: Request, exc: BundleError) -> JSONResponse:
        return JSONResponse({"detail": "Bundle unavailable"}, status_code=503)

    @app.exception_handler(SQLAlchemyError)
    async def _database(_: Request, exc: SQLAlchemyError) -> JSONResponse:
        log.error("database error", extra={"event": "database.error", "error": type(exc).__name__})
        return JSONResponse({"detail": "Database unavailable"}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Name the field and the problem; never echo the input back (it may be a megabyte of text).
        errors = [{"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            detail: Any = [{"type": "body_invalid", "loc": ["body"], "msg": "Request body is not valid UTF-8 JSON"}]
            return JSONResponse({"detail": detail}, status_code=422)
        headers = exc.headers
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(app, request)}
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)
