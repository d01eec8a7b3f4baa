"""The calling site's own settings and policy: /v1/sites/me, /v1/sites/me/policy."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ModerationDep, SiteCacheDep, SiteDep, WriterDep
from api.schemas import PolicyPublic, PolicyUpdate, Site, SitePublic, SiteUpdate
from api.store.sites import policy_public, site_by_id, update_policy, update_site

router = APIRouter(prefix="/v1/sites", tags=["sites"])


@router.get("/me", response_model=SitePublic)
def get_me(site: SiteDep) -> Site:
    return site


@router.patch("/me", response_model=SitePublic)
def patch_me(body: SiteUpdate, site: SiteDep, writer: WriterDep, cache: SiteCacheDep) -> Site:
    """Change the site's URL, webhook URL or retention (days of text kept; null keeps forever)."""
    updated = writer.run_sync(
        lambda s: update_site(session=s, site=site_by_id(session=s, site_id=site.id), update=body)
    )
    cache.forget_site(site.id)
    return updated


@router.get("/me/policy", response_model=PolicyPublic)
def get_policy(site: SiteDep, moderation: ModerationDep) -> PolicyPublic:
    engine = moderation.current_engine()
    return policy_public(site=site, base=engine.policy, bundle_version=engine.version)


@router.patch("/me/policy", response_model=PolicyPublic)
def patch_policy(
    body: PolicyUpdate, site: SiteDep, moderation: ModerationDep, writer: WriterDep, cache: SiteCacheDep
) -> PolicyPublic:
    """Set hold/reject thresholds per label (null drops an override) and/or the mode."""
    engine = moderation.current_engine()
    updated = writer.run_sync(
        lambda s: update_policy(session=s, site=site_by_id(session=s, site_id=site.id), update=body, base=engine.policy)
    )
    cache.forget_site(site.id)
    return policy_public(site=updated, base=engine.policy, bundle_version=engine.version)
