"""/healthz (process alive), /readyz (bundle loaded and database reachable), /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from api.deps import DatabaseDep, ModerationDep
from api.observability import Metrics
from api.schemas import HealthPublic

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthPublic)
def healthz() -> HealthPublic:
    return HealthPublic(status="ok")


@router.get("/readyz", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
def readyz(db: DatabaseDep, moderation: ModerationDep) -> Response:
    checks: dict[str, str] = {}
    engine = moderation.engine
    checks["bundle"] = engine.version if engine is not None else "not loaded"
    try:
        db.ping()
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    checks["writer"] = "ok" if moderation.writer.running else "stopped"
    ready = engine is not None and checks["database"] == "ok" and checks["writer"] == "ok"
    body = HealthPublic(status="ready" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    registry: Metrics = request.app.state.metrics
    return Response(registry.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")
