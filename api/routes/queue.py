"""The moderator queue API: people (moderator secrets), not platforms (site keys get 403).

GET  /v1/queue                       filtered, sorted, keyset-paginated comments + counts
POST /v1/queue/{id}/decision         approve | reject | reopen (undo) one comment
POST /v1/queue/decisions             the same for many ids at once
GET  /v1/comments/{id}/history       the engine's verdict and every decision: who, when
GET/POST /v1/moderators, DELETE /v1/moderators/{id}    accounts of the site (admins only)
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from sqlmodel import Session

from api.deps import ModeratorDep, SessionDep, WriterDep
from api.errors import Forbidden, InvalidRequest
from api.schemas import (
    MAX_ROW_ID,
    BulkDecisionCreate,
    BulkDecisionResponse,
    CommentHistory,
    DecisionCreate,
    DecisionPublic,
    DecisionRequest,
    Moderator,
    ModeratorCreate,
    ModeratorCreated,
    ModeratorPublic,
    QueueLabel,
    QueuePage,
    QueueSort,
    QueueStatus,
    error_responses,
)
from api.store.decisions import record_decision
from api.store.queue import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    QueueFilters,
    comment_history,
    decide_many,
    disable_moderator,
    list_moderators,
    moderator_public,
    queue_counts,
    queue_page,
    utc_instant,
)
from api.store.sites import create_moderator, site_by_id

router = APIRouter(prefix="/v1", tags=["queue"], responses=error_responses(401, 403, 503))
CommentId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


def _utc_query(name: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    try:
        return utc_instant(value)
    except ValueError as exc:
        raise InvalidRequest(str(exc), loc=("query", name)) from exc


def queue_filters(
    status: QueueStatus = "pending",
    label: QueueLabel | None = None,
    min_score: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
    max_score: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
    article_id: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
    author: Annotated[str | None, Query(min_length=1, max_length=320)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QueueFilters:
    """Query parameters shared by the API and the page; contradictions are a 422 naming the field."""
    if min_score is not None and max_score is not None and min_score > max_score:
        raise InvalidRequest("min_score must not exceed max_score", loc=("query", "min_score"))
    since, until = _utc_query("since", since), _utc_query("until", until)
    if since is not None and until is not None and since >= until:
        raise InvalidRequest("since must be before until", loc=("query", "since"))
    for name, text in (("article_id", article_id), ("author", author)):
        if text is not None and "\x00" in text:
            raise InvalidRequest("must not contain NUL characters", loc=("query", name))
    return QueueFilters(
        status=status,
        label=label,
        min_score=min_score,
        max_score=max_score,
        article_id=article_id,
        author=author,
        since=since,
        until=until,
    )


FiltersDep = Annotated[QueueFilters, Depends(queue_filters)]
Cursor = Annotated[str | None, Query(max_length=512)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.get("/queue", response_model=QueuePage)
def get_queue(
    moderator: ModeratorDep,
    session: SessionDep,
    filters: FiltersDep,
    sort: QueueSort = "score",
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> QueuePage:
    """The moderator's site's comments (default: pending, highest score first) and counts by status.

    `min_score`/`max_score` bound the comment's highest score; `author` matches name or email
    exactly; `since`/`until` bound the time it was received. Pass `next_cursor` back as `cursor`."""
    return queue_page(
        session=session, site_id=moderator.site_id, filters=filters, sort=sort, cursor=cursor, limit=limit
    )


@router.post("/queue/{comment_id}/decision", response_model=DecisionPublic, responses=error_responses(404, 409, 413))
def decide(comment_id: CommentId, body: DecisionRequest, moderator: ModeratorDep, writer: WriterDep) -> DecisionPublic:
    """Decide any comment of the site; `reopen` undoes (back to pending). A later decision supersedes,
    history keeps all. The site's webhook fires and the decision becomes a retraining label, unless
    the comment's text was erased: then it only settles the status, and spans are a 409."""
    return writer.run_sync(
        lambda s: record_decision(
            session=s, site_id=moderator.site_id, comment_id=comment_id, decision=body, moderator_id=moderator.id
        )
    )


@router.post("/queue/decisions", response_model=BulkDecisionResponse, responses=error_responses(413))
def decide_bulk(body: BulkDecisionCreate, moderator: ModeratorDep, writer: WriterDep) -> BulkDecisionResponse:
    """One action on up to 500 comments; each id succeeds or fails (404, 422) on its own."""
    decision = DecisionCreate(action=body.action, label=body.label, note=body.note)

    def job(s: Session) -> BulkDecisionResponse:
        results = decide_many(
            session=s, site_id=moderator.site_id, ids=body.ids, decision=decision, moderator_id=moderator.id
        )
        return BulkDecisionResponse(results=results, counts=queue_counts(session=s, site_id=moderator.site_id))

    return writer.run_sync(job)


@router.get("/comments/{comment_id}/history", response_model=CommentHistory, responses=error_responses(404))
def get_history(comment_id: CommentId, moderator: ModeratorDep, session: SessionDep) -> CommentHistory:
    return comment_history(session=session, site_id=moderator.site_id, comment_id=comment_id)


# ---------------------------------------------------------------------------------------------
# Moderator accounts (role admin)


def _require_admin(moderator: Moderator) -> None:
    if moderator.role != "admin":
        raise Forbidden("Only a site admin can manage moderators")


@router.get("/moderators", response_model=list[ModeratorPublic])
def get_moderators(moderator: ModeratorDep, session: SessionDep) -> list[ModeratorPublic]:
    """Every account of the site, oldest first; disabled ones stay listed with `disabled: true`."""
    _require_admin(moderator)
    return list_moderators(session=session, site_id=moderator.site_id)


@router.post("/moderators", response_model=ModeratorCreated, status_code=201, responses=error_responses(409, 413))
def post_moderator(body: ModeratorCreate, moderator: ModeratorDep, writer: WriterDep) -> ModeratorCreated:
    """A new account on the admin's site; the secret is in this response only."""
    _require_admin(moderator)

    def create(s: Session) -> ModeratorCreated:
        site = site_by_id(session=s, site_id=moderator.site_id)
        created, secret = create_moderator(session=s, site_name=site.name, name=body.name, role=body.role)
        return ModeratorCreated(**moderator_public(created).model_dump(), secret=secret)

    return writer.run_sync(create)


@router.delete("/moderators/{moderator_id}", response_model=ModeratorPublic, responses=error_responses(404, 409, 413))
def delete_moderator(moderator_id: CommentId, moderator: ModeratorDep, writer: WriterDep) -> ModeratorPublic:
    """Disable an account of the site: its secret and page sessions stop working at once. Idempotent:
    an account already disabled answers 200 with `disabled: true` and its original `disabled_at`.
    Disabling oneself or the site's last active admin is a 409."""
    _require_admin(moderator)
    return writer.run_sync(
        lambda s: disable_moderator(
            session=s, site_id=moderator.site_id, moderator_id=moderator_id, acting_id=moderator.id
        )
    )
