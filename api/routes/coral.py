"""Coral's external moderation phase: `POST /v1/integrations/coral/{site}`.

A Coral admin adds an external moderation phase (Configure > Moderation > Phases) with this URL and
gives Moderato the phase's signing secret (`moderato site coral-secret SITE --secret S`). Following
coralproject/talk EXTERNAL_MODERATION_PHASES.md and WEBHOOKS.md:

    request   {"action": "NEW"|"EDIT", "comment": {"body": <HTML or text>, "parentID": str|null},
               "author": {"id", "role"}, "story": {"id", "url"}, "site": {"id"}, "tenantID", "tenantDomain"}
              X-Coral-Signature: sha256=<hex HMAC-SHA256 of the raw body>[,sha256=<...>]
    response  204 (no body)      the comment may be published: Coral carries on with its own phases
              200 {"status": "SYSTEM_WITHHELD"|"REJECTED",
                   "actions": [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_SPAM", "additionalDetails": ...}]}

held -> SYSTEM_WITHHELD (Coral's pending queue), rejected -> REJECTED; spam is flagged
COMMENT_DETECTED_SPAM and toxicity COMMENT_DETECTED_TOXIC (Coral has no off-topic reason: an off-topic
comment is withheld without a flag). A bad or missing signature is a 401 and nothing is stored.
Verdicts are stored like `/v1/moderate` (source `coral`) but stay out of Moderato's queue: Coral's
moderators decide in Coral. Coral sends no comment id, so an EDIT is linked to the latest NEW by the
same author on the same story under the same parent.
"""

from __future__ import annotations

import json
import logging
from html.parser import HTMLParser
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session

from api.db import Database
from api.moderation import Moderation
from api.schemas import ArticleIn, CleanStr, CommentIn, ExternalId, ModerateRequest, PathId, Site
from api.store.comments import StoredVerdict, article_for_scoring
from api.store.coral import coral_site, record_coral_comment, signature_valid
from api.store.integrations import store_integration_comment
from classifier import Article, Assessment

log = logging.getLogger("moderato.coral")
router = APIRouter(prefix="/v1/integrations", tags=["coral"])

SOURCE = "coral"
SIGNATURE_HEADER = "X-Coral-Signature"
STATUS_BY_DECISION = {"hold": "SYSTEM_WITHHELD", "reject": "REJECTED"}
FLAG_BY_LABEL = {"spam": "COMMENT_DETECTED_SPAM", "toxicity": "COMMENT_DETECTED_TOXIC"}
DETAILS_CHARS = 500


# ---------------------------------------------------------------------------------------------
# The External Moderation Request (extra fields ignored: Coral versions differ, e.g. `tenant: {id, domain}`)


class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CoralCommentIn(_Shape):
    body: CleanStr = Field(max_length=200_000)
    parentID: ExternalId | None = Field(default=None, max_length=255)


class CoralAuthor(_Shape):
    id: ExternalId = Field(min_length=1, max_length=255)
    role: CleanStr | None = Field(default=None, max_length=32)


class CoralStory(_Shape):
    id: ExternalId = Field(min_length=1, max_length=255)
    url: CleanStr | None = Field(default=None, max_length=2048)


class CoralRef(_Shape):
    id: ExternalId | None = Field(default=None, max_length=255)


class CoralModerationRequest(_Shape):
    action: Literal["NEW", "EDIT"]
    comment: CoralCommentIn
    author: CoralAuthor
    story: CoralStory
    site: CoralRef | None = None
    tenantID: ExternalId | None = Field(default=None, max_length=255)
    tenant: CoralRef | None = None


class _Text(HTMLParser):
    """Coral's comment HTML (div, p, br, b, i, a, blockquote, span) as the text a reader sees;
    a link's address is kept next to its words, since where a link goes is what spam is about."""

    BLOCKS = frozenset({"br", "div", "p", "blockquote", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.href: list[str | None] = []
        self.link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n")
        if tag == "a":
            self.href.append(dict(attrs).get("href"))
            self.link_text.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.href:
            href, words = self.href.pop(), self.link_text.pop()
            if href and href.strip() and href.strip() not in words:
                self.parts.append(f" ({href.strip()})")
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        if self.link_text:
            self.link_text[-1] += data


def html_to_text(body: str) -> str:
    parser = _Text()
    parser.feed(body)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    return "\n".join(line for line in lines if line)


def _problem(status: int, errors: list[dict[str, Any]] | str) -> JSONResponse:
    return JSONResponse({"detail": errors}, status_code=status)


def _invalid(
    exc: ValidationError, prefix: tuple[str, ...] = ("body",), names: dict[str, str] | None = None
) -> JSONResponse:
    """A 422 naming the fields as Coral sent them: `names` renames our schema's fields to Coral's."""
    names = names or {}
    errors = [
        {
            "type": e.get("type"),
            "loc": [*prefix, *(names.get(str(p), p) for p in e.get("loc", ()))],
            "msg": e.get("msg"),
        }
        for e in exc.errors()
    ]
    return _problem(422, errors)


def _lookup(db: Database, name: str) -> tuple[Site, list[str]] | None:
    with db.read_session() as session:
        return coral_site(session=session, name=name)


def _article(db: Database, site_id: int, article_in: ArticleIn) -> Article | None:
    with db.read_session() as session:
        return article_for_scoring(session=session, site_id=site_id, article_in=article_in)


def _response(assessment: Assessment) -> Response:
    status = STATUS_BY_DECISION.get(assessment.decision)
    if status is None:
        return Response(status_code=204)
    actions = []
    for reason in assessment.reasons:
        flag = FLAG_BY_LABEL.get(reason.label)
        if flag is None:
            continue
        evidence = " | ".join(s.text for s in reason.spans if s.text)
        details = f"Moderato {reason.label} {reason.score:.2f}" + (f": {evidence}" if evidence else "")
        actions.append({"actionType": "FLAG", "reason": flag, "additionalDetails": details[:DETAILS_CHARS]})
    body: dict[str, Any] = {"status": status}
    if actions:
        body["actions"] = actions
    return JSONResponse(body)


@router.post(
    "/coral/{site}",
    status_code=204,
    responses={
        200: {"description": "Coral External Moderation Response: the comment is withheld or rejected"},
        204: {"description": "The comment may be published"},
        401: {"description": "Bad or missing X-Coral-Signature"},
    },
)
async def coral_phase(site: Annotated[PathId, Path(max_length=63)], request: Request) -> Response:
    """Coral's external moderation phase for the Moderato site `site`."""
    raw = await request.body()
    db: Database = request.app.state.db
    found = await run_in_threadpool(_lookup, db, site)
    if found is None or not signature_valid(secrets=found[1], body=raw, header=request.headers.get(SIGNATURE_HEADER)):
        log.warning("coral signature rejected", extra={"event": "coral.unauthenticated", "site": site})
        return _problem(401, f"Invalid or missing {SIGNATURE_HEADER}")
    moderato_site = found[0]
    assert moderato_site.id is not None
    site_id = moderato_site.id
    request.state.site_name = moderato_site.name

    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _problem(422, [{"type": "json_invalid", "loc": ["body"], "msg": "Request body is not valid JSON"}])
    try:
        coral = CoralModerationRequest.model_validate(data)
    except ValidationError as exc:
        return _invalid(exc)
    try:
        comment_in = CommentIn(text=html_to_text(coral.comment.body), parent_id=coral.comment.parentID)
    except ValidationError as exc:  # e.g. HTML with no text in it
        return _invalid(exc, ("body", "comment"), {"text": "body", "parent_id": "parentID"})
    try:
        article_in = ArticleIn(id=coral.story.id, url=coral.story.url)
    except ValidationError as exc:
        return _invalid(exc, ("body", "story"))

    moderation: Moderation = request.app.state.moderation
    moderation.current_engine()  # 503 before anything is stored when no bundle is loaded
    article = await run_in_threadpool(_article, db, site_id, article_in)
    tenant_id = coral.tenantID or (coral.tenant.id if coral.tenant else None)

    def store(session: Session, assessment: Assessment) -> StoredVerdict:
        stored = store_integration_comment(
            session=session,
            site=moderato_site,
            comment_in=comment_in,
            article_in=article_in,
            assessment=assessment,
            source=SOURCE,
            queueable=False,
        )
        record_coral_comment(
            session=session,
            site_id=site_id,
            comment_id=stored.verdict.id,
            action=coral.action,
            story_id=coral.story.id,
            author_id=coral.author.id,
            author_role=coral.author.role,
            parent_id=coral.comment.parentID,
            coral_site_id=coral.site.id if coral.site else None,
            tenant_id=tenant_id,
        )
        return stored

    moderate = ModerateRequest(comment=comment_in, article=article_in)
    assessment, _ = await moderation.assess_and_store(
        site=moderato_site, request=moderate, article=article, store=store
    )
    return _response(assessment)
