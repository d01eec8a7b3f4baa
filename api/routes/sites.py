"""The calling site's own settings and policy: /v1/sites/me, /v1/sites/me/policy."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ModerationDep, SiteCacheDep, SiteDep, WriterDep
from api.schemas import PolicyPublic, PolicyUpdate, Site, SitePatched, SitePublic, SiteUpdate, error_responses
from api.store.sites import patch_site, policy_public, site_by_id, update_policy

router = APIRouter(prefix="/v1/sites", tags=["sites"], responses=error_responses(401, 503))


@router.get("/me", response_model=SitePublic)
def get_me(site: SiteDep) -> Site:
    return site


@router.patch("/me", response_model=SitePatched, response_model_exclude_unset=True, responses=error_responses(413))
def patch_me(body: SiteUpdate, site: SiteDep, writer: WriterDep, cache: SiteCacheDep) -> SitePatched:
    """Change the site's URL, webhook URL (null or "" removes it) or retention (1-36500 days of text
    kept; null keeps forever). The first webhook URL of a site created without one issues its signing
    secret, answered once as `webhook_secret` (nobody could verify the deliveries otherwise)."""
    updated = writer.run_sync(lambda s: patch_site(session=s, site_id=site.id, update=body))
    cache.forget_site(site.id)
    # Built from SitePublic's fields only, so the stored secret never leaks; exclude_unset leaves
    # `webhook_secret` out of every answer but the one that issued it.
    public = SitePublic.model_validate(updated.site).model_dump()
    if updated.webhook_secret is not None:
        public["webhook_secret"] = updated.webhook_secret
    return SitePatched.model_validate(public)


@router.get("/me/policy", response_model=PolicyPublic)
def get_policy(site: SiteDep, moderation: ModerationDep) -> PolicyPublic:
    engine = moderation.current_engine()
    return policy_public(site=site, base=engine.policy, bundle_version=engine.version)


@router.patch("/me/policy", response_model=PolicyPublic, responses=error_responses(413))
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
