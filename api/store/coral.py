"""Coral's external moderation phase: the site's signing secrets and Coral's view of each comment.

Coral signs each request with every secret still active (`X-Coral-Signature: sha256=<hex>,sha256=<hex>`
while an old secret is kept during a rotation). Moderato keeps the same overlap: setting a new secret
leaves the previous one valid until its grace period ends.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from sqlmodel import Session, col, or_, select

from api.errors import InvalidRequest
from api.schemas import CoralComment, CoralSecret, Site, utcnow
from api.security import new_webhook_secret
from api.store.sites import get_site

MAX_SECRET_CHARS = 128
#: More signatures than this in one header is not a rotation but an attempt to make us hash a lot.
MAX_SIGNATURES = 8


def set_coral_secret(
    *, session: Session, name: str, secret: str | None, grace: timedelta, now: datetime | None = None
) -> tuple[str, datetime | None]:
    """Make `secret` (or a new random one) the site's active Coral secret; secrets that were active
    stay valid until `now + grace` (returned; None when there was none). Setting the active secret
    again changes nothing."""
    now = now or utcnow()
    if secret is not None:
        secret = secret.strip()
        if not secret or len(secret) > MAX_SECRET_CHARS or any(c.isspace() or c == "," for c in secret):
            raise InvalidRequest(
                f"a Coral secret is 1-{MAX_SECRET_CHARS} characters without spaces or commas", loc=("secret",)
            )
    site = get_site(session=session, name=name)
    current = session.exec(
        select(CoralSecret).where(CoralSecret.site_id == site.id, col(CoralSecret.expires_at).is_(None))
    ).all()
    if secret is not None and any(hmac.compare_digest(c.secret, secret) for c in current):
        return secret, None
    secret = secret or new_webhook_secret()
    until = now + grace if current else None
    for old in current:
        old.expires_at = until
        session.add(old)
    assert site.id is not None
    session.add(CoralSecret(site_id=site.id, secret=secret, created_at=now))
    session.flush()
    return secret, until


def coral_site(*, session: Session, name: str, now: datetime | None = None) -> tuple[Site, list[str]] | None:
    """The site called `name` and its Coral secrets still valid now (None for an unknown site)."""
    now = now or utcnow()
    site = session.exec(select(Site).where(Site.name == name)).first()
    if site is None:
        return None
    secrets = session.exec(
        select(CoralSecret.secret).where(
            CoralSecret.site_id == site.id,
            or_(col(CoralSecret.expires_at).is_(None), col(CoralSecret.expires_at) > now),
        )
    ).all()
    return site, list(secrets)


def signature_values(header: str) -> list[str]:
    """The `sha256=` values of an X-Coral-Signature header (WEBHOOKS.md, step 1)."""
    values = []
    for element in header.split(","):
        prefix, sep, value = element.strip().partition("=")
        if sep and prefix == "sha256" and value:
            values.append(value.strip())
    return values[:MAX_SIGNATURES]


def signature_valid(*, secrets: list[str], body: bytes, header: str | None) -> bool:
    """True when any signature in the header is the HMAC-SHA256 of the raw body under any active secret."""
    if not header or not secrets:
        return False
    given = [v.encode("ascii", "replace") for v in signature_values(header)]
    valid = False
    for secret in secrets:
        expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest().encode()
        for value in given:
            valid |= hmac.compare_digest(value, expected)  # no early exit: same work whichever matches
    return valid


def find_new_comment(
    *, session: Session, site_id: int, story_id: str, author_id: str, parent_id: str | None
) -> CoralComment | None:
    """The latest NEW by this author on this story under this parent: what an EDIT edits."""
    query = select(CoralComment).where(
        CoralComment.site_id == site_id,
        CoralComment.story_id == story_id,
        CoralComment.author_id == author_id,
        CoralComment.action == "NEW",
    )
    if parent_id is None:
        query = query.where(col(CoralComment.parent_id).is_(None))
    else:
        query = query.where(CoralComment.parent_id == parent_id)
    return session.exec(query.order_by(col(CoralComment.id).desc())).first()


def record_coral_comment(
    *,
    session: Session,
    site_id: int,
    comment_id: int,
    action: str,
    story_id: str,
    author_id: str,
    author_role: str | None,
    parent_id: str | None,
    coral_site_id: str | None,
    tenant_id: str | None,
) -> CoralComment:
    """Coral's side of a stored comment; an EDIT is linked to its NEW (`revision_of`)."""
    revision_of = None
    if action == "EDIT":
        new = find_new_comment(
            session=session, site_id=site_id, story_id=story_id, author_id=author_id, parent_id=parent_id
        )
        revision_of = new.comment_id if new is not None else None
    row = CoralComment(
        site_id=site_id,
        comment_id=comment_id,
        action=action,
        story_id=story_id,
        author_id=author_id,
        author_role=author_role,
        parent_id=parent_id,
        coral_site_id=coral_site_id,
        tenant_id=tenant_id,
        revision_of=revision_of,
    )
    session.add(row)
    session.flush()
    return row
