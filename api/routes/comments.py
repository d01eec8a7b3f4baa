"""POST /v1/moderate (+ /batch), GET/DELETE /v1/comments/{id}, PUT/GET /v1/articles/{id}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import ValidationError

from api.deps import ModerationDep, SessionDep, SiteDep, WriterDep
from api.errors import NotFound
from api.schemas import (
    MAX_ROW_ID,
    ArticleCreate,
    ArticlePublic,
    BatchItemError,
    BatchItemFailure,
    BatchRequest,
    BatchResponse,
    CommentPublic,
    ModerateRequest,
    PathId,
    VerdictPublic,
    error_responses,
)
from api.store.comments import comment_public, erase_comment, find_article, find_comment, upsert_article

router = APIRouter(prefix="/v1", tags=["moderation"], responses=error_responses(401, 503))
CommentId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
ArticleId = Annotated[PathId, Path(min_length=1, max_length=255)]


@router.post("/moderate", response_model=VerdictPublic, responses=error_responses(413))
async def moderate(body: ModerateRequest, site: SiteDep, moderation: ModerationDep) -> VerdictPublic:
    """Score a comment under the site's policy, store it, and answer with the verdict.

    Re-sending the same `comment.id` returns the stored verdict; nothing is stored twice."""
    return await moderation.moderate_async(site=site, request=body)


@router.post("/moderate/batch", response_model=BatchResponse, responses=error_responses(413))
def moderate_batch(body: BatchRequest, site: SiteDep, moderation: ModerationDep) -> BatchResponse:
    """Up to 100 moderate bodies; results in order, a bad item answered by its own 422."""
    results: list[VerdictPublic | BatchItemFailure | None] = [None] * len(body.items)
    valid: list[tuple[int, ModerateRequest]] = []
    for i, item in enumerate(body.items):
        try:
            valid.append((i, ModerateRequest.model_validate(item)))
        except ValidationError as exc:
            detail = [
                {"type": e["type"], "loc": ["body", "items", i, *e["loc"]], "msg": e["msg"]} for e in exc.errors()
            ]
            results[i] = BatchItemFailure(error=BatchItemError(status=422, detail=detail))
    verdicts = moderation.moderate_many(site=site, requests=[request for _, request in valid])
    for (i, _), verdict in zip(valid, verdicts, strict=True):
        results[i] = verdict
    return BatchResponse(results=[r for r in results if r is not None])


@router.get("/comments/{comment_id}", response_model=CommentPublic, responses=error_responses(404))
def get_comment(comment_id: CommentId, site: SiteDep, session: SessionDep) -> CommentPublic:
    assert site.id is not None
    comment = find_comment(session=session, site_id=site.id, comment_id=comment_id)
    return comment_public(session=session, comment=comment)


@router.delete("/comments/{comment_id}", response_model=CommentPublic, responses=error_responses(404, 413))
def delete_comment(comment_id: CommentId, site: SiteDep, writer: WriterDep) -> CommentPublic:
    """Erase the comment's text and author fields (privacy request); scores and decisions stay."""
    site_id = site.id
    assert site_id is not None
    return writer.run_sync(
        lambda s: comment_public(session=s, comment=erase_comment(session=s, site_id=site_id, comment_id=comment_id))
    )


@router.put("/articles/{article_id}", response_model=ArticlePublic, responses=error_responses(413))
def put_article(article_id: ArticleId, body: ArticleCreate, site: SiteDep, writer: WriterDep) -> ArticlePublic:
    """Register (or update) an article, so comments can refer to it by id alone."""
    site_id = site.id
    assert site_id is not None
    article = writer.run_sync(
        lambda s: upsert_article(session=s, site_id=site_id, external_id=article_id, article_in=body)
    )
    return ArticlePublic(
        **article.model_dump(include={"url", "title", "body", "created_at", "updated_at"}), id=article_id
    )


@router.get("/articles/{article_id}", response_model=ArticlePublic, responses=error_responses(404))
def get_article(article_id: ArticleId, site: SiteDep, session: SessionDep) -> ArticlePublic:
    assert site.id is not None
    article = find_article(session=session, site_id=site.id, external_id=article_id)
    if article is None:
        raise NotFound("Article not found")
    return ArticlePublic(
        **article.model_dump(include={"url", "title", "body", "created_at", "updated_at"}), id=article_id
    )
