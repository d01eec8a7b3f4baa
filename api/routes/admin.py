"""Operator endpoints, authenticated by `Authorization: Bearer $MODERATO_ADMIN_TOKEN` (not a site key).

    POST /v1/admin/reload      load the promoted bundle now (workers also notice it on their own)

With MODERATO_ADMIN_TOKEN unset these endpoints answer 404, as if they did not exist.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from api.deps import SettingsDep, bearer_token
from api.errors import NotAuthenticated, NotFound, ServiceUnavailable
from api.reload import BundleReloader
from api.schemas import BundleReloadPublic, ErrorPublic, error_responses

router = APIRouter(prefix="/v1/admin", tags=["operations"])


def require_admin(request: Request, settings: SettingsDep) -> None:
    if settings.admin_token is None:
        raise NotFound("Not Found")
    token = bearer_token(request) or ""
    if not hmac.compare_digest(token.encode(), settings.admin_token.get_secret_value().encode()):
        raise NotAuthenticated("Invalid or missing admin token")


AdminDep = Annotated[None, Depends(require_admin)]


@router.post(
    "/reload",
    response_model=BundleReloadPublic,
    responses={
        **error_responses(401, 413, 503),
        404: {"model": ErrorPublic, "description": "No admin token is set (MODERATO_ADMIN_TOKEN): the route is off"},
    },
)
async def reload_bundle(request: Request, _: AdminDep) -> BundleReloadPublic:
    """Swap in the promoted bundle at once (this worker; the others notice within seconds)."""
    reloader: BundleReloader = request.app.state.reloader
    result = await run_in_threadpool(reloader.check, force=True)
    if result.error is not None:
        raise ServiceUnavailable(f"Promoted bundle {result.promoted} cannot be loaded")
    return BundleReloadPublic(
        version=result.version, previous=result.previous, promoted=result.promoted, changed=result.changed
    )
