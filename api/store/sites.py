"""Sites, their API keys, moderators and per-site policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from api.errors import Conflict, InvalidRequest, NotAuthenticated, SiteNotFound
from api.schemas import (
    Moderator,
    PolicyPublic,
    PolicyUpdate,
    Site,
    SiteCreate,
    SiteKey,
    SiteUpdate,
    ThresholdsPublic,
    utcnow,
)
from api.security import hash_secret, new_secret, new_webhook_secret, prefix_of, secret_matches
from classifier import LABELS, Policy

KEY_KIND = "mod"
MODERATOR_KIND = "mds"


@dataclass(frozen=True)
class NewSite:
    site: Site
    api_key: str
    webhook_secret: str | None


def get_site(*, session: Session, name: str) -> Site:
    site = session.exec(select(Site).where(Site.name == name)).first()
    if site is None:
        raise SiteNotFound(name)
    return site


def site_by_id(*, session: Session, site_id: int | None) -> Site:
    site = session.get(Site, site_id) if site_id is not None else None
    if site is None:
        raise SiteNotFound(str(site_id))
    return site


def list_sites(*, session: Session) -> list[Site]:
    return list(session.exec(select(Site).order_by(col(Site.name))))


def create_site(*, session: Session, site_in: SiteCreate, now: datetime | None = None) -> NewSite:
    """A new site with its first API key (and a webhook secret when it has a webhook URL)."""
    site_in = SiteCreate.model_validate(site_in.model_dump())
    if session.exec(select(Site.id).where(Site.name == site_in.name)).first() is not None:
        raise Conflict(f"Site already exists: {site_in.name}")
    secret = new_webhook_secret() if site_in.webhook_url else None
    site = Site.model_validate(site_in, update={"webhook_secret": secret, "created_at": now or utcnow()})
    session.add(site)
    session.flush()
    key = _add_key(session=session, site=site, now=now or utcnow())
    return NewSite(site=site, api_key=key, webhook_secret=secret)


def _add_key(*, session: Session, site: Site, now: datetime) -> str:
    key = new_secret(KEY_KIND)
    assert site.id is not None
    prefix = prefix_of(key)
    assert prefix is not None
    session.add(SiteKey(site_id=site.id, prefix=prefix, key_hash=hash_secret(key), created_at=now))
    return key


def rotate_key(*, session: Session, name: str, grace: timedelta, now: datetime | None = None) -> tuple[str, datetime]:
    """Issue a new key; keys that were current keep working until `now + grace` (returned)."""
    now = now or utcnow()
    site = get_site(session=session, name=name)
    until = now + grace
    current = session.exec(select(SiteKey).where(SiteKey.site_id == site.id, col(SiteKey.expires_at).is_(None))).all()
    for old in current:
        old.expires_at = until
        session.add(old)
    return _add_key(session=session, site=site, now=now), until


def authenticate_site(*, session: Session, api_key: str | None, now: datetime | None = None) -> Site:
    """The site owning `api_key` (current, or rotated out but within its grace period)."""
    prefix = prefix_of(api_key) if api_key else None
    if api_key is None or prefix is None or not prefix.startswith(KEY_KIND + "_"):
        raise NotAuthenticated()
    now = now or utcnow()
    candidates = session.exec(select(SiteKey).where(SiteKey.prefix == prefix)).all()
    for key in candidates:
        if secret_matches(api_key, key.key_hash) and (key.expires_at is None or key.expires_at > now):
            site = session.get(Site, key.site_id)
            if site is not None:
                return site
    raise NotAuthenticated()


@dataclass(frozen=True)
class UpdatedSite:
    site: Site
    #: The webhook secret this update issued (the first webhook URL of a site created without one), to
    #: show once; None when the site already had a secret (shown at creation, or by an earlier update).
    webhook_secret: str | None


def update_site(*, session: Session, site: Site, update: SiteUpdate) -> Site:
    data = update.model_dump(exclude_unset=True)
    site.sqlmodel_update(data)
    if site.webhook_url and not site.webhook_secret:
        site.webhook_secret = new_webhook_secret()
    session.add(site)
    return site


def patch_site(*, session: Session, site_id: int | None, update: SiteUpdate) -> UpdatedSite:
    """PATCH /v1/sites/me: apply `update`, and tell which webhook secret (if any) it issued."""
    site = site_by_id(session=session, site_id=site_id)
    had_secret = site.webhook_secret
    site = update_site(session=session, site=site, update=update)
    return UpdatedSite(site=site, webhook_secret=site.webhook_secret if site.webhook_secret != had_secret else None)


def rotate_webhook_secret(*, session: Session, name: str) -> str:
    site = get_site(session=session, name=name)
    site.webhook_secret = new_webhook_secret()
    session.add(site)
    return site.webhook_secret


# ---------------------------------------------------------------------------------------------
# Policy: the bundle's thresholds with the site's overrides (stored as overrides only, so a newly
# promoted bundle's re-tuned thresholds apply to every label a site did not pin).


def effective_policy(*, site: Site, base: Policy, mode: str | None = None) -> Policy:
    overrides: Mapping[str, Mapping[str, float]] = site.policy_overrides or {}
    known = {label: values for label, values in overrides.items() if label in base.thresholds}
    return base.with_overrides(known, mode=mode or site.policy_mode)


def policy_public(*, site: Site, base: Policy, bundle_version: str | None) -> PolicyPublic:
    policy = effective_policy(site=site, base=base)
    return PolicyPublic(
        mode=policy.mode,  # type: ignore[arg-type]
        thresholds={k: ThresholdsPublic(hold=v.hold, reject=v.reject) for k, v in policy.thresholds.items()},
        overrides={k: dict(v) for k, v in (site.policy_overrides or {}).items()},
        bundle_version=bundle_version,
    )


def update_policy(*, session: Session, site: Site, update: PolicyUpdate, base: Policy) -> Site:
    """Apply a PATCH: merge threshold overrides (null drops a label's), set the mode; validate."""
    overrides = {k: dict(v) for k, v in (site.policy_overrides or {}).items()}
    for label, values in (update.thresholds or {}).items():
        if label not in LABELS:
            raise InvalidRequest(f"unknown label {label!r}", loc=("body", "thresholds", label))
        if values is None:
            overrides.pop(label, None)
            continue
        merged = overrides.get(label, {}) | values.model_dump(exclude_none=True)
        if merged:
            overrides[label] = merged
    mode = update.mode or site.policy_mode
    candidate = Site(name=site.name, policy_mode=mode, policy_overrides=overrides)
    try:
        effective_policy(site=candidate, base=base)
    except ValueError as exc:
        raise InvalidRequest(str(exc), loc=("body", "thresholds")) from exc
    site.policy_overrides = overrides
    site.policy_mode = mode
    session.add(site)
    return site


# ---------------------------------------------------------------------------------------------
# Moderators (people; the queue issue authenticates them)


def create_moderator(*, session: Session, site_name: str, name: str, role: str = "moderator") -> tuple[Moderator, str]:
    """A moderator account for a site and its secret (shown once; only the hash is stored)."""
    if role not in ("moderator", "admin"):
        raise InvalidRequest(f"unknown role {role!r}", loc=("role",))
    site = get_site(session=session, name=site_name)
    exists = session.exec(select(Moderator.id).where(Moderator.site_id == site.id, Moderator.name == name)).first()
    if exists is not None:
        raise Conflict(f"Moderator already exists: {name}")
    secret = new_secret(MODERATOR_KIND)
    prefix = prefix_of(secret)
    assert site.id is not None and prefix is not None
    moderator = Moderator(site_id=site.id, name=name, role=role, secret_prefix=prefix, secret_hash=hash_secret(secret))
    session.add(moderator)
    session.flush()
    return moderator, secret


def authenticate_moderator(*, session: Session, secret: str | None) -> Moderator:
    """The active moderator owning `secret`; raises NotAuthenticated otherwise."""
    prefix = prefix_of(secret) if secret else None
    if secret is None or prefix is None or not prefix.startswith(MODERATOR_KIND + "_"):
        raise NotAuthenticated("Invalid or missing moderator secret")
    for moderator in session.exec(select(Moderator).where(Moderator.secret_prefix == prefix)).all():
        if secret_matches(secret, moderator.secret_hash) and moderator.disabled_at is None:
            return moderator
    raise NotAuthenticated("Invalid or missing moderator secret")
