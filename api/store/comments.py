"""Comments, their engine verdicts, articles, erasure and retention."""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.errors import CommentNotFound
from api.schemas import (
    MAX_RETENTION_DAYS,
    STATUS_BY_DECISION,
    Article,
    ArticleBase,
    ArticleIn,
    AuthorPublic,
    Comment,
    CommentIn,
    CommentPublic,
    Site,
    VerdictPublic,
    utcnow,
)
from classifier import Article as EngineArticle
from classifier import Assessment

PURGE_CHUNK = 500
log = logging.getLogger("moderato.retention")


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------
# Articles


def find_article(
    *, session: Session, site_id: int, external_id: str | None = None, url: str | None = None
) -> Article | None:
    if external_id is not None:
        return session.exec(
            select(Article).where(Article.site_id == site_id, Article.external_id == external_id)
        ).first()
    if url is not None:
        return session.exec(
            select(Article).where(Article.site_id == site_id, Article.url == url).order_by(col(Article.id).desc())
        ).first()
    return None


def upsert_article(
    *, session: Session, site_id: int, external_id: str | None, article_in: ArticleBase, now: datetime | None = None
) -> Article:
    """Register or update an article; fields left out keep their stored value."""
    now = now or utcnow()
    data = article_in.model_dump(include={"url", "title", "body"}, exclude_unset=True)
    existing = find_article(
        session=session, site_id=site_id, external_id=external_id, url=None if external_id else data.get("url")
    )
    if existing is None:
        try:
            with session.begin_nested():
                article = Article(site_id=site_id, external_id=external_id, created_at=now, updated_at=now, **data)
                session.add(article)
                session.flush()
            return article
        except IntegrityError:
            # Another process registered it in the meantime: update theirs.
            existing = find_article(session=session, site_id=site_id, external_id=external_id)
            if existing is None:
                raise
    existing.sqlmodel_update(data)
    existing.updated_at = now
    session.add(existing)
    session.flush()
    return existing


def article_for_scoring(*, session: Session, site_id: int, article_in: ArticleIn | None) -> EngineArticle | None:
    """What the engine measures off-topic against: the text sent now, else the registered article."""
    if article_in is None:
        return None
    if article_in.title or article_in.body:
        return EngineArticle(title=article_in.title or "", body=article_in.body or "")
    stored = find_article(session=session, site_id=site_id, external_id=article_in.id, url=article_in.url)
    if stored is None or not (stored.title or stored.body):
        return None
    return EngineArticle(title=stored.title or "", body=stored.body or "")


# ---------------------------------------------------------------------------------------------
# Comments


def find_comment(*, session: Session, site_id: int, comment_id: int) -> Comment:
    """The site's comment; another site's id is indistinguishable from a missing one."""
    comment = session.get(Comment, comment_id)
    if comment is None or comment.site_id != site_id:
        raise CommentNotFound()
    return comment


def find_by_external_id(*, session: Session, site_id: int, external_id: str) -> Comment | None:
    return session.exec(select(Comment).where(Comment.site_id == site_id, Comment.external_id == external_id)).first()


def find_by_text(*, session: Session, site_id: int, digest: str) -> Comment | None:
    """The site's newest comment whose text has this SHA-256 (erased comments have none)."""
    return session.exec(
        select(Comment)
        .where(Comment.site_id == site_id, Comment.text_sha256 == digest)
        .order_by(col(Comment.id).desc())
    ).first()


@dataclass(frozen=True)
class StoredVerdict:
    verdict: VerdictPublic
    #: False when (site, comment id) was already stored and the old verdict is returned.
    created: bool
    label: str | None


def store_assessment(
    *,
    session: Session,
    site: Site,
    comment_in: CommentIn,
    article_in: ArticleIn | None,
    assessment: Assessment,
    mode: str,
    source: str = "api",
    now: datetime | None = None,
) -> StoredVerdict:
    """Store a scored comment (and its article), or return the verdict stored for its id before."""
    assert site.id is not None
    now = now or utcnow()
    article_id: int | None = None
    if article_in is not None and (article_in.title or article_in.body or article_in.url):
        article_id = upsert_article(
            session=session, site_id=site.id, external_id=article_in.id, article_in=article_in, now=now
        ).id
    elif article_in is not None and article_in.id:
        found = find_article(session=session, site_id=site.id, external_id=article_in.id)
        article_id = found.id if found else None

    author = comment_in.author
    scores = assessment.scores
    present = [v for v in scores.values() if v is not None]
    label = assessment.reasons[0].label if assessment.reasons else None
    attributes = {k: round(v, 6) for k, v in assessment.attributes.items()}
    reasons = [reason.to_dict() for reason in assessment.reasons]
    row = {
        "site_id": site.id,
        "external_id": comment_in.id,
        "parent_id": comment_in.parent_id,
        "article_id": article_id,
        "article_ref": article_in.id if article_in else None,
        "source": source,
        "text": comment_in.text,
        "text_sha256": text_digest(comment_in.text),
        "author_name": author.name if author else None,
        "author_email": author.email if author else None,
        "author_url": author.url if author else None,
        "author_ip": author.ip if author else None,
        "author_user_agent": author.user_agent if author else None,
        "mode": mode,
        "decision": assessment.decision,
        "status": STATUS_BY_DECISION[assessment.decision],
        "label": label,
        "score_spam": round(float(scores.get("spam") or 0.0), 6),
        "score_toxicity": round(float(scores.get("toxicity") or 0.0), 6),
        "score_off_topic": None if scores.get("off_topic") is None else round(float(scores["off_topic"] or 0.0), 6),
        "max_score": max(present) if present else 0.0,
        "attributes": attributes,
        "reasons": reasons,
        "evidence": {name: reason.to_dict() for name, reason in assessment.evidence.items()},
        "model_version": assessment.model_version,
        "created_at": now,
        "updated_at": now,
    }
    # One statement per comment (this is the hot path of the single writer): insert unless the
    # platform's id is already stored for this site, in which case the stored verdict wins.
    new_id = session.execute(_insert_comment(session.get_bind().dialect.name), row).scalar()
    if new_id is None:
        assert comment_in.id is not None
        existing = find_by_external_id(session=session, site_id=site.id, external_id=comment_in.id)
        assert existing is not None
        return StoredVerdict(verdict_public(existing), created=False, label=existing.label)
    verdict = VerdictPublic.model_validate(
        {
            "id": new_id,
            "comment_id": comment_in.id,
            "status": row["status"],
            "decision": assessment.decision,
            "scores": {k: row[f"score_{k}"] for k in ("spam", "toxicity", "off_topic")},
            "attributes": attributes,
            "reasons": reasons,
            "model_version": assessment.model_version,
            "created_at": now,
        }
    )
    return StoredVerdict(verdict, created=True, label=label)


@functools.cache
def _insert_comment(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (site_id, external_id) DO NOTHING RETURNING id, built once per dialect."""
    table = Comment.__table__  # type: ignore[attr-defined]
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return insert(table).on_conflict_do_nothing(index_elements=["site_id", "external_id"]).returning(table.c.id)


def _scores(comment: Comment) -> dict[str, float | None]:
    return {"spam": comment.score_spam, "toxicity": comment.score_toxicity, "off_topic": comment.score_off_topic}


def verdict_public(comment: Comment) -> VerdictPublic:
    assert comment.id is not None
    return VerdictPublic(
        id=comment.id,
        comment_id=comment.external_id,
        status=comment.status,  # type: ignore[arg-type]
        decision=comment.decision,  # type: ignore[arg-type]
        scores=_scores(comment),
        attributes=comment.attributes,
        reasons=comment.reasons,  # type: ignore[arg-type]
        model_version=comment.model_version,
        created_at=comment.created_at,
    )


def author_public(comment: Comment) -> AuthorPublic | None:
    """The author fields a client may see; None once the comment was erased (privacy request)."""
    if comment.erased_at is not None:
        return None
    return AuthorPublic(
        name=comment.author_name,
        email=comment.author_email,
        url=comment.author_url,
        ip=comment.author_ip,
        user_agent=comment.author_user_agent,
    )


def comment_public(*, session: Session, comment: Comment) -> CommentPublic:
    article_ref = comment.article_ref
    if article_ref is None and comment.article_id is not None:
        article = session.get(Article, comment.article_id)
        article_ref = article.external_id if article else None
    author = author_public(comment)
    return CommentPublic(
        **verdict_public(comment).model_dump(),
        parent_id=comment.parent_id,
        article_id=article_ref,
        label=comment.label,
        text=comment.text,
        author=author,
        decided_at=comment.decided_at,
        erased=comment.erased_at is not None,
    )


# ---------------------------------------------------------------------------------------------
# Privacy: erase on request, purge after the retention period. Scores and decisions stay.


def _scrub_spans(reason: dict[str, Any]) -> dict[str, Any]:
    spans = [{"start": s.get("start"), "end": s.get("end"), "text": None} for s in reason.get("spans", [])]
    return {**reason, "spans": spans}


def erase_comment_fields(comment: Comment, *, now: datetime) -> None:
    comment.text = None
    comment.text_sha256 = None
    comment.author_name = comment.author_email = comment.author_url = None
    comment.author_ip = comment.author_user_agent = None
    comment.reasons = [_scrub_spans(r) for r in comment.reasons]
    comment.evidence = {k: _scrub_spans(v) for k, v in comment.evidence.items()}
    comment.erased_at = comment.erased_at or now
    comment.updated_at = now


def erase_comment(*, session: Session, site_id: int, comment_id: int, now: datetime | None = None) -> Comment:
    """Erase a comment's text and author fields (a privacy request); idempotent."""
    comment = find_comment(session=session, site_id=site_id, comment_id=comment_id)
    erase_comment_fields(comment, now=now or utcnow())
    session.add(comment)
    session.flush()
    return comment


def purge_expired_text(*, session: Session, now: datetime | None = None) -> int:
    """Erase text and author fields older than each site's retention period; returns how many."""
    now = now or utcnow()
    purged = 0
    sites = session.exec(select(Site).where(col(Site.retention_days).is_not(None))).all()
    for site in sites:
        assert site.retention_days is not None
        # The API bounds it to 1..MAX_RETENTION_DAYS, but a row may predate the bound or be edited by
        # hand: a huge value is clamped (it would overflow the date and stop every site's purge), and
        # one below 1 skipped (it would erase every comment's text at once).
        if not 1 <= site.retention_days <= MAX_RETENTION_DAYS:
            log.warning(
                "site retention out of range",
                extra={"event": "retention.invalid", "site": site.name, "retention_days": site.retention_days},
            )
            if site.retention_days < 1:
                continue
        cutoff = now - timedelta(days=min(site.retention_days, MAX_RETENTION_DAYS))
        while True:
            batch = session.exec(
                select(Comment)
                .where(Comment.site_id == site.id, col(Comment.erased_at).is_(None), Comment.created_at < cutoff)
                .limit(PURGE_CHUNK)
            ).all()
            for comment in batch:
                erase_comment_fields(comment, now=now)
                session.add(comment)
            session.flush()
            purged += len(batch)
            if len(batch) < PURGE_CHUNK:
                break
    return purged
