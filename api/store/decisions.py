"""Human decisions on comments (moderators and Akismet feedback) and the labels they yield."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from api.errors import Conflict, InvalidRequest
from api.schemas import (
    Article,
    Comment,
    DecisionCreate,
    DecisionPublic,
    ModeratorDecision,
    Site,
    SpanIn,
    utcnow,
)
from api.store.comments import find_comment
from api.store.webhooks import enqueue_webhook
from classifier import LABELS

STATUS_BY_ACTION = {"approve": "approved", "reject": "rejected", "reopen": "pending"}


def record_decision(
    *,
    session: Session,
    site_id: int,
    comment_id: int,
    decision: DecisionCreate,
    moderator_id: int | None = None,
    source: str = "moderator",
    notify: bool = True,
    now: datetime | None = None,
) -> DecisionPublic:
    """Decide a comment: new status and label, a history row, and (if `notify`) a webhook.

    Any comment of the site may be decided, held or not; a later decision supersedes an earlier
    one and all are kept. `reopen` undoes: back to pending, with the engine's label. Without
    explicit `spans`, a reject keeps the engine's evidence spans for its label. The webhook is
    written to the outbox in the same transaction and sent after the commit.

    A comment without text (erased on request or by retention, or never stored) can still be
    decided: it stays in the queue and the platform waits for its status, so refusing would leave
    it pending for good. Such a decision carries no spans (explicit ones are a 409: nothing to
    check them against) and never becomes a training example (`feedback_rows` needs the text).
    """
    now = now or utcnow()
    comment = find_comment(session=session, site_id=site_id, comment_id=comment_id)
    label = _label_for(decision, comment)
    spans = _spans_for(decision, comment, label)
    status = STATUS_BY_ACTION[decision.action]

    row = ModeratorDecision(
        site_id=site_id,
        comment_id=comment_id,
        moderator_id=moderator_id,
        source=source,
        action=decision.action,
        label=label,
        note=decision.note,
        status=status,
        spans=[s.model_dump() for s in spans],
        model_version=comment.model_version,
        created_at=now,
    )
    session.add(row)
    comment.status = status
    comment.label = label if decision.action != "reopen" else _engine_label(comment)
    comment.decided_at = None if decision.action == "reopen" else now
    comment.updated_at = now
    session.add(comment)
    session.flush()
    assert row.id is not None

    site = session.get(Site, site_id)
    if notify and site is not None and site.webhook_url:
        enqueue_webhook(session=session, site=site, comment=comment, decision_id=row.id, now=now)
    return decision_public(row)


def _engine_label(comment: Comment) -> str | None:
    return comment.reasons[0]["label"] if comment.reasons else None


def _label_for(decision: DecisionCreate, comment: Comment) -> str | None:
    if decision.action == "reopen":
        if decision.label is not None:
            raise InvalidRequest("reopen takes no label", loc=("body", "label"))
        return None
    if decision.action == "approve":
        if decision.label not in (None, "ham"):
            raise InvalidRequest("approve takes label 'ham' (or none)", loc=("body", "label"))
        return "ham"
    if decision.label == "ham":
        raise InvalidRequest("reject needs a label other than 'ham'", loc=("body", "label"))
    if decision.label is not None:
        return decision.label
    engine_label = _engine_label(comment)
    return engine_label if engine_label in LABELS else "spam"


def _spans_for(decision: DecisionCreate, comment: Comment, label: str | None) -> list[SpanIn]:
    if comment.text is None:
        if decision.spans:
            why = "was erased" if comment.erased_at is not None else "was never stored"
            raise Conflict(f"The comment's text {why}: a decision on it cannot carry spans")
        return []  # the engine's offsets would point into text that no longer exists
    if decision.spans is not None:
        for i, span in enumerate(decision.spans):
            if span.end > len(comment.text):
                raise InvalidRequest("span ends after the comment text", loc=("body", "spans", i, "end"))
        return list(decision.spans)
    if decision.action != "reject" or label is None:
        return []
    evidence = comment.evidence.get(label) or {}
    return [SpanIn(start=s["start"], end=s["end"]) for s in evidence.get("spans", [])]


def decision_public(row: ModeratorDecision) -> DecisionPublic:
    assert row.id is not None
    return DecisionPublic(
        id=row.id,
        comment_id=row.comment_id,
        action=row.action,
        label=row.label,
        note=row.note,
        status=row.status,
        source=row.source,
        moderator_id=row.moderator_id,
        spans=[SpanIn.model_validate(s) for s in row.spans],
        created_at=row.created_at,
    )


def decision_history(*, session: Session, site_id: int, comment_id: int) -> list[ModeratorDecision]:
    """Every decision on a comment, oldest first (the comment row holds the engine's verdict)."""
    find_comment(session=session, site_id=site_id, comment_id=comment_id)
    return list(
        session.exec(
            select(ModeratorDecision)
            .where(ModeratorDecision.comment_id == comment_id)
            .order_by(col(ModeratorDecision.id))
        )
    )


# ---------------------------------------------------------------------------------------------
# Retraining labels


@dataclass(frozen=True)
class FeedbackRow:
    """One labeled example from people: the latest decision on a comment whose text is kept."""

    comment_id: int
    site_id: int
    text: str
    label: str
    spans: tuple[tuple[int, int], ...]
    article_title: str | None
    article_body: str | None
    source: str
    decided_at: datetime
    model_version: str


def feedback_rows(
    *, session: Session, site_id: int | None = None, since: datetime | None = None
) -> Iterator[FeedbackRow]:
    """Latest decision per comment (reopened ones excluded, erased comments skipped), oldest first."""
    latest = select(func.max(ModeratorDecision.id).label("id")).group_by(col(ModeratorDecision.comment_id))
    if site_id is not None:
        latest = latest.where(ModeratorDecision.site_id == site_id)
    latest_ids = latest.subquery()
    query = (
        select(ModeratorDecision, Comment, Article)
        .join(latest_ids, col(ModeratorDecision.id) == latest_ids.c.id)
        .join(Comment, col(Comment.id) == col(ModeratorDecision.comment_id))
        .join(Article, col(Article.id) == col(Comment.article_id), isouter=True)
        .where(col(Comment.text).is_not(None), ModeratorDecision.action != "reopen")
        .order_by(col(ModeratorDecision.created_at), col(ModeratorDecision.id))
    )
    if since is not None:
        query = query.where(ModeratorDecision.created_at >= since)
    for decision, comment, article in session.exec(query):
        assert comment.text is not None and decision.label is not None and comment.id is not None
        yield FeedbackRow(
            comment_id=comment.id,
            site_id=comment.site_id,
            text=comment.text,
            label=decision.label,
            spans=tuple((s["start"], s["end"]) for s in decision.spans),
            article_title=article.title if article else None,
            article_body=article.body if article else None,
            source=decision.source,
            decided_at=decision.created_at,
            model_version=decision.model_version,
        )
