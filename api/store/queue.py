"""The moderator queue: filtered, keyset-paginated reads of a site's comments, counts, history.

    filters = QueueFilters(status="pending", label="spam", min_score=0.5)
    page = queue_page(session=s, site_id=1, filters=filters, sort="score", cursor=None, limit=50)
    page.items, page.next_cursor, page.counts

Pagination is by keyset, never OFFSET: the cursor carries the sort key and id of the last row, so
page 200 costs what page 1 costs. `sort=score` walks `ix_comment_site_status_score`
(site, status, max_score [, rowid]) backwards, `oldest`/`newest` walk
`ix_comment_site_status_created`; `id` breaks ties, so no row is skipped or repeated.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import and_, func, or_
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from api.errors import Conflict, InvalidRequest, ModeratoError, NotFound
from api.schemas import (
    Article,
    BulkDecisionError,
    BulkDecisionResult,
    Comment,
    CommentHistory,
    DecisionCreate,
    HistoryDecision,
    Moderator,
    ModeratorPublic,
    QueueCounts,
    QueueItem,
    QueuePage,
    RowId,
    utcnow,
)
from api.store.comments import author_public, comment_public, find_comment, verdict_public
from api.store.decisions import decision_history, decision_public, record_decision

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class QueueFilters:
    """What a moderator narrows the queue to; every field is optional except the status."""

    status: str = "pending"
    label: str | None = None
    #: Bounds on the comment's highest score (the same value `sort=score` orders by).
    min_score: float | None = None
    max_score: float | None = None
    #: The platform's article id.
    article_id: str | None = None
    #: The author's exact name or email.
    author: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def utc_instant(value: datetime) -> datetime:
    """`value` in UTC; ValueError if it has no timezone or leaves Python's years 1-9999 once in UTC.

    The database compares UTC instants (`UTCDateTime`), and a naive or out-of-range value would only
    fail there, as a driver error; checked here, it is a 422 naming the parameter."""
    if value.utcoffset() is None:
        raise ValueError("must include a timezone, e.g. 2024-05-01T00:00:00Z")
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+05:00 is before year 1 in UTC
        raise ValueError("is out of range once converted to UTC") from exc


def _conditions(site_id: int, filters: QueueFilters, *, with_status: bool) -> list[ColumnElement[bool]]:
    # Comments moderated elsewhere (Coral) or kept without text (Perspective doNotStore) are never queued.
    where: list[ColumnElement[bool]] = [col(Comment.site_id) == site_id, col(Comment.queueable).is_(True)]
    if with_status and filters.status != "all":
        where.append(col(Comment.status) == filters.status)
    if filters.label is not None:
        where.append(col(Comment.label) == filters.label)
    if filters.min_score is not None:
        where.append(col(Comment.max_score) >= filters.min_score)
    if filters.max_score is not None:
        where.append(col(Comment.max_score) <= filters.max_score)
    if filters.article_id is not None:
        where.append(col(Comment.article_ref) == filters.article_id)
    if filters.author is not None:
        where.append(or_(col(Comment.author_name) == filters.author, col(Comment.author_email) == filters.author))
    if filters.since is not None:
        where.append(col(Comment.created_at) >= filters.since)
    if filters.until is not None:
        where.append(col(Comment.created_at) < filters.until)
    return where


# ---------------------------------------------------------------------------------------------
# Cursors: opaque to clients, base64url of [sort, key, id]


def encode_cursor(sort: str, key: float | str, comment_id: int) -> str:
    raw = json.dumps([sort, key, comment_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_ROW_ID: TypeAdapter[int] = TypeAdapter(RowId)


def decode_cursor(cursor: str, sort: str) -> tuple[float | datetime, int]:
    """The (sort key, id) a cursor carries; a cursor made for another sort or tampered with is a 422.

    Clients can send any bytes, so every part is checked before it reaches a query: the id is a row
    id (1..MAX_ROW_ID), a score a finite number in [0, 1], a time an ISO 8601 instant with a timezone."""
    bad = InvalidRequest("invalid cursor", loc=("query", "cursor"))
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        raise bad from exc
    if not isinstance(parts, list) or len(parts) != 3 or parts[0] != sort:
        raise bad
    try:
        return _cursor_key(sort, parts[1]), _ROW_ID.validate_python(parts[2])
    except (ValidationError, ValueError, TypeError) as exc:
        raise bad from exc


def _cursor_key(sort: str, key: Any) -> float | datetime:
    if sort != "score":
        if not isinstance(key, str):
            raise TypeError("a time cursor's key is an ISO 8601 string")
        return utc_instant(datetime.fromisoformat(key))
    if not isinstance(key, int | float) or isinstance(key, bool):
        raise TypeError("a score cursor's key is a number")
    try:
        score = float(key)
    except OverflowError as exc:  # an integer beyond the float range
        raise ValueError("score out of range") from exc
    if not (math.isfinite(score) and 0.0 <= score <= 1.0):
        raise ValueError("score out of range")
    return score


def _after_cursor(sort: str, key: Any, comment_id: int) -> ColumnElement[bool]:
    column: Any
    if sort == "score":
        column, descending = col(Comment.max_score), True
    else:
        column, descending = col(Comment.created_at), sort == "newest"
    if descending:
        return or_(column < key, and_(column == key, col(Comment.id) < comment_id))
    return or_(column > key, and_(column == key, col(Comment.id) > comment_id))


def _order(sort: str) -> list[Any]:
    if sort == "score":
        return [col(Comment.max_score).desc(), col(Comment.id).desc()]
    if sort == "newest":
        return [col(Comment.created_at).desc(), col(Comment.id).desc()]
    return [col(Comment.created_at).asc(), col(Comment.id).asc()]


def _cursor_for(sort: str, comment: Comment) -> str:
    assert comment.id is not None
    if sort == "score":
        return encode_cursor(sort, comment.max_score, comment.id)
    return encode_cursor(sort, comment.created_at.isoformat(), comment.id)


# ---------------------------------------------------------------------------------------------
# Reads


def queue_item(comment: Comment, article: Article | None) -> QueueItem:
    author = author_public(comment)
    return QueueItem(
        **verdict_public(comment).model_dump(),
        parent_id=comment.parent_id,
        article_id=comment.article_ref or (article.external_id if article else None),
        label=comment.label,
        text=comment.text,
        author=author,
        decided_at=comment.decided_at,
        erased=comment.erased_at is not None,
        article_title=article.title if article else None,
        article_url=article.url if article else None,
    )


def queue_counts(*, session: Session, site_id: int, filters: QueueFilters | None = None) -> QueueCounts:
    """How many of the site's comments are pending / approved / rejected (under `filters`, status aside)."""
    where = _conditions(site_id, filters or QueueFilters(), with_status=False)
    rows = session.exec(
        select(col(Comment.status), func.count()).where(*where).group_by(col(Comment.status))  # type: ignore[call-overload]
    ).all()
    counts: dict[str, int] = {status: n for status, n in rows}  # noqa: C416
    return QueueCounts(
        pending=counts.get("pending", 0), approved=counts.get("approved", 0), rejected=counts.get("rejected", 0)
    )


def queue_page(
    *,
    session: Session,
    site_id: int,
    filters: QueueFilters,
    sort: str = "score",
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> QueuePage:
    """One page of the site's queue, the cursor of the next one, and the counts."""
    where = _conditions(site_id, filters, with_status=True)
    if cursor:
        where.append(_after_cursor(sort, *decode_cursor(cursor, sort)))
    query = (
        select(Comment, Article)
        .join(Article, col(Article.id) == col(Comment.article_id), isouter=True)
        .where(*where)
        .order_by(*_order(sort))
        .limit(limit + 1)
    )
    rows = session.exec(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = _cursor_for(sort, rows[-1][0]) if more and rows else None
    return QueuePage(
        items=[queue_item(comment, article) for comment, article in rows],
        next_cursor=next_cursor,
        counts=queue_counts(session=session, site_id=site_id, filters=filters),
    )


def comment_history(*, session: Session, site_id: int, comment_id: int) -> CommentHistory:
    """The engine's verdict and every human decision on the comment (who and when), oldest first."""
    comment = find_comment(session=session, site_id=site_id, comment_id=comment_id)
    return CommentHistory(
        comment=comment_public(session=session, comment=comment),
        decisions=named_decisions(session=session, site_id=site_id, comment_id=comment_id),
    )


def named_decisions(*, session: Session, site_id: int, comment_id: int) -> list[HistoryDecision]:
    """Every human decision on the comment, oldest first, each with its moderator's name."""
    decisions = decision_history(session=session, site_id=site_id, comment_id=comment_id)
    moderator_ids = {d.moderator_id for d in decisions if d.moderator_id is not None}
    names: dict[int, str] = {}
    if moderator_ids:
        for moderator in session.exec(select(Moderator).where(col(Moderator.id).in_(moderator_ids))):
            assert moderator.id is not None
            names[moderator.id] = moderator.name
    return [
        HistoryDecision(
            **decision_public(d).model_dump(),
            moderator_name=names.get(d.moderator_id) if d.moderator_id is not None else None,
        )
        for d in decisions
    ]


def moderator_public(moderator: Moderator) -> ModeratorPublic:
    assert moderator.id is not None
    return ModeratorPublic(
        id=moderator.id,
        name=moderator.name,
        role=moderator.role,
        created_at=moderator.created_at,
        disabled=moderator.disabled_at is not None,
        disabled_at=moderator.disabled_at,
    )


def list_moderators(*, session: Session, site_id: int) -> list[ModeratorPublic]:
    """Every account of the site, disabled ones included (marked), oldest first."""
    rows = session.exec(select(Moderator).where(Moderator.site_id == site_id).order_by(col(Moderator.id))).all()
    return [moderator_public(m) for m in rows]


# ---------------------------------------------------------------------------------------------
# Writes (run inside the writer thread)


def disable_moderator(*, session: Session, site_id: int, moderator_id: int, acting_id: int | None) -> ModeratorPublic:
    """Disable an account of the site (idempotent: an already disabled one is returned as it is).

    An admin cannot disable their own account, nor the site's last active admin: either would leave
    the site with nobody who can manage its moderators over HTTP. The active admins are locked
    (FOR UPDATE on PostgreSQL), so two admins disabling each other at once cannot both succeed."""
    target = session.get(Moderator, moderator_id)
    if target is None or target.site_id != site_id:
        raise NotFound("Moderator not found")
    if target.disabled_at is not None:
        return moderator_public(target)
    if target.id == acting_id:
        raise Conflict("An admin cannot disable their own account; ask another admin of the site")
    if target.role == "admin":
        admins = session.exec(
            select(Moderator.id)
            .where(Moderator.site_id == site_id, Moderator.role == "admin", col(Moderator.disabled_at).is_(None))
            .with_for_update()
        ).all()
        if all(admin_id == target.id for admin_id in admins):
            raise Conflict("The site's last active admin cannot be disabled")
    target.disabled_at = utcnow()
    session.add(target)
    session.flush()
    return moderator_public(target)


def decide_many(
    *, session: Session, site_id: int, ids: Sequence[int], decision: DecisionCreate, moderator_id: int | None
) -> list[BulkDecisionResult]:
    """`record_decision` for each id, each in its own savepoint: a bad id fails alone, in order."""
    results: list[BulkDecisionResult] = []
    for comment_id in dict.fromkeys(ids):
        try:
            with session.begin_nested():
                done = record_decision(
                    session=session,
                    site_id=site_id,
                    comment_id=comment_id,
                    decision=decision,
                    moderator_id=moderator_id,
                )
            results.append(BulkDecisionResult(id=comment_id, decision=done))
        except ModeratoError as exc:
            results.append(
                BulkDecisionResult(id=comment_id, error=BulkDecisionError(status=exc.status_code, detail=exc.detail))
            )
    return results
