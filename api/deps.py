"""FastAPI dependencies as `Annotated` aliases: handlers declare `site: SiteDep`, `session: SessionDep`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from api.config import Settings
from api.db import Database
from api.errors import Forbidden, NotAuthenticated
from api.moderation import Moderation
from api.schemas import Moderator, Site
from api.site_cache import SiteCache
from api.store.sites import KEY_KIND, authenticate_moderator, authenticate_site
from api.writer import Writer


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_session(db: Annotated[Database, Depends(get_database)]) -> Iterator[Session]:
    with db.read_session() as session:
        yield session


def get_writer(request: Request) -> Writer:
    writer: Writer = request.app.state.writer
    return writer


def get_moderation(request: Request) -> Moderation:
    moderation: Moderation = request.app.state.moderation
    return moderation


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _lookup_site(db: Database, token: str) -> Site:
    with db.read_session() as session:
        return authenticate_site(session=session, api_key=token)


async def get_site(request: Request) -> Site:
    """The site whose API key is in `Authorization: Bearer KEY` (401 otherwise).

    Served from the short-lived key cache when possible; otherwise looked up in a worker thread
    with a session of its own, so no connection is held while the request is scored and stored."""
    token = bearer_token(request)
    if token is None:
        raise NotAuthenticated()
    cache: SiteCache = request.app.state.site_cache
    site = cache.get(token)
    if site is None:
        site = await run_in_threadpool(_lookup_site, request.app.state.db, token)
        cache.put(token, site)
    request.state.site_name = site.name
    return site


def _lookup_moderator(db: Database, token: str | None) -> Moderator:
    with db.read_session() as session:
        try:
            return authenticate_moderator(session=session, secret=token)
        except NotAuthenticated:
            if token is not None and token.startswith(KEY_KIND + "_"):
                try:
                    authenticate_site(session=session, api_key=token)
                except NotAuthenticated:
                    pass
                else:
                    raise Forbidden("Site API keys cannot use the moderator queue; use a moderator secret") from None
            raise


async def get_moderator(request: Request) -> Moderator:
    """The person whose secret is in `Authorization: Bearer SECRET` (401; a site API key gets 403)."""
    moderator = await run_in_threadpool(_lookup_moderator, request.app.state.db, bearer_token(request))
    request.state.moderator_id = moderator.id
    return moderator


def get_site_cache(request: Request) -> SiteCache:
    cache: SiteCache = request.app.state.site_cache
    return cache


DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[Session, Depends(get_session)]
WriterDep = Annotated[Writer, Depends(get_writer)]
ModerationDep = Annotated[Moderation, Depends(get_moderation)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SiteDep = Annotated[Site, Depends(get_site)]
SiteCacheDep = Annotated[SiteCache, Depends(get_site_cache)]
ModeratorDep = Annotated[Moderator, Depends(get_moderator)]
