"""The /moderate page: a server-rendered queue moderators work from with the keyboard.

    GET  /moderate/login, POST /moderate/login      the moderator secret -> a session cookie
    POST /moderate/logout
    GET  /moderate                                  the queue (same filters as GET /v1/queue)
    GET  /moderate/comments/{id}                    one comment: the engine's verdict and every decision
    POST /moderate/decide                           a form post (303 back) or fetch (JSON answer)

Comment text is hostile: templates autoescape everything, evidence highlights are built from
plain-text segments that Jinja escapes one by one (no `|safe` anywhere), and a strict
Content-Security-Policy allows only our own script file, as a second wall.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Annotated, Any, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from pydantic import BeforeValidator, Field
from sqlmodel import Session

from api.deps import DatabaseDep, WriterDep
from api.errors import NotAuthenticated, NotFound
from api.moderator_sessions import (
    COOKIE,
    LIFETIME,
    LOGIN_CSRF_COOKIE,
    csrf_matches,
    csrf_token,
    end_sessions,
    issue_session,
    session_moderator_id,
    verify_session,
)
from api.routes.queue import CommentId, Cursor, Limit, queue_filters
from api.schemas import (
    MAX_BULK_IDS,
    MAX_ROW_ID,
    Article,
    BulkDecisionResult,
    Comment,
    DecisionCreate,
    Moderator,
    QueueItem,
    QueueLabel,
    QueueSort,
    QueueStatus,
    ReasonPublic,
    Site,
    Status,
    utcnow,
)
from api.store.comments import find_comment
from api.store.queue import (
    DEFAULT_LIMIT,
    QueueFilters,
    decide_many,
    named_decisions,
    queue_counts,
    queue_item,
    queue_page,
)
from api.store.sites import authenticate_moderator

router = APIRouter(prefix="/moderate", tags=["page"], include_in_schema=False)

_env = Environment(
    loader=FileSystemLoader(str(resources.files("api") / "templates")),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates = Jinja2Templates(env=_env)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
PAGE_ACTIONS = {
    "approve": ("approve", None),
    "reject": ("reject", None),
    "spam": ("reject", "spam"),
    "toxicity": ("reject", "toxicity"),
    "off_topic": ("reject", "off_topic"),
    "reopen": ("reopen", None),
}
_SAFE_NEXT = re.compile(r"/moderate(/comments/\d{1,18})?(\?[^\r\n\\]*)?")
#: A comment id in a form field: form values are text, so digits are parsed (not strict), within the
#: same bounds as ids in paths and JSON bodies.
FormId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
# "id:status" of a card the page showed: the no-JavaScript bulk form's `expect` (see `decide_from_page`).
FormShown = Annotated[str, Field(pattern=rf"^[1-9][0-9]{{0,18}}:({'|'.join(get_args(Status))})$")]


# ---------------------------------------------------------------------------------------------
# Evidence highlighting


@dataclass(frozen=True)
class Segment:
    """A run of comment text; `label` is set when it is evidence for that label."""

    text: str
    label: str | None = None


def highlight_segments(text: str, reasons: Sequence[ReasonPublic]) -> list[Segment]:
    """Split `text` into plain and evidence runs. Spans outside the text are ignored; where spans of
    two labels overlap, the label with the higher score wins the overlapping characters."""
    owner: list[str | None] = [None] * len(text)
    for reason in sorted(reasons, key=lambda r: -r.score):
        for span in reason.spans:
            if 0 <= span.start < span.end <= len(text):
                for i in range(span.start, span.end):
                    if owner[i] is None:
                        owner[i] = reason.label
    segments: list[Segment] = []
    start = 0
    for i in range(1, len(text) + 1):
        if i == len(text) or owner[i] != owner[start]:
            segments.append(Segment(text[start:i], owner[start]))
            start = i
    return segments


@dataclass(frozen=True)
class Row:
    item: QueueItem
    segments: list[Segment]
    scores: list[tuple[str, float]]


def _row(item: QueueItem) -> Row:
    segments = highlight_segments(item.text, item.reasons) if item.text is not None else []
    scores = [(name, value) for name, value in item.scores.items() if value is not None]
    return Row(item=item, segments=segments, scores=scores)


# ---------------------------------------------------------------------------------------------
# Sessions


@dataclass(frozen=True)
class PageSession:
    moderator: Moderator
    site: Site
    token: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.token, self.moderator)


def _load_session(request: Request, db: DatabaseDep) -> PageSession | None:
    token = request.cookies.get(COOKIE)
    moderator_id = session_moderator_id(token)
    if token is None or moderator_id is None:
        return None
    with db.read_session() as session:
        moderator = session.get(Moderator, moderator_id)
        if moderator is None or not verify_session(token, moderator, now=utcnow()):
            return None
        site = session.get(Site, moderator.site_id)
    if site is None:
        return None
    request.state.moderator_id = moderator.id
    return PageSession(moderator=moderator, site=site, token=token)


PageSessionDep = Annotated[PageSession | None, Depends(_load_session)]


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _html(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def _to_login() -> RedirectResponse:
    return RedirectResponse("/moderate/login", status_code=303)


def _login_page(request: Request, error: str | None = None, status_code: int = 200) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = _html(request, "login.html", {"csrf": token, "error": error}, status_code=status_code)
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, path="/moderate", httponly=True, samesite="strict", secure=_secure(request)
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return _login_page(request)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    db: DatabaseDep,
    secret: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected.encode(), csrf.encode()):
        return _login_page(request, "Your login form expired; please try again.", status_code=403)
    with db.read_session() as session:
        try:
            moderator = authenticate_moderator(session=session, secret=secret.strip() or None)
        except NotAuthenticated:
            return _login_page(request, "That moderator secret is not valid.", status_code=401)
    response = RedirectResponse("/moderate", status_code=303)
    response.set_cookie(
        COOKIE,
        issue_session(moderator, now=utcnow()),
        max_age=int(LIFETIME.total_seconds()),
        path="/moderate",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/moderate")
    return response


@router.post("/logout")
def logout(page: PageSessionDep, writer: WriterDep, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    """End the moderator's sessions: this cookie, any copy of it, and the other devices' cookies."""
    if page is not None:
        if not csrf_matches(page.token, page.moderator, csrf):
            return JSONResponse({"detail": "CSRF token missing or invalid"}, status_code=403)
        moderator_id = page.moderator.id

        def end(s: Session) -> None:
            moderator = s.get(Moderator, moderator_id)
            if moderator is not None:
                end_sessions(moderator)
                s.add(moderator)

        writer.run_sync(end)
    response = _to_login()
    response.delete_cookie(COOKIE, path="/moderate")
    return response


# ---------------------------------------------------------------------------------------------
# The queue


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


#: The filter bar is a plain GET form, which sends every field, left empty or not: `label=` ("any"),
#: `min_score=`, `article_id=` and `author=` mean "no filter" on the page (the JSON API refuses them).
Blank = BeforeValidator(_blank_is_none)


Score = Annotated[float, Field(ge=0.0, le=1.0)]


def page_filters(
    status: QueueStatus = "pending",
    label: Annotated[QueueLabel | None, Blank] = None,
    min_score: Annotated[Score | None, Blank] = None,
    max_score: Annotated[Score | None, Blank] = None,
    article_id: Annotated[Annotated[str, Field(max_length=255)] | None, Blank] = None,
    author: Annotated[Annotated[str, Field(max_length=320)] | None, Blank] = None,
    since: Annotated[datetime | None, Blank] = None,
    until: Annotated[datetime | None, Blank] = None,
) -> QueueFilters:
    """The queue filters of GET /v1/queue (same checks), with empty form fields read as absent."""
    return queue_filters(status, label, min_score, max_score, article_id, author, since, until)


PageFiltersDep = Annotated[QueueFilters, Depends(page_filters)]


def _query_string(filters: QueueFilters, sort: str, limit: int, cursor: str | None = None) -> str:
    params: dict[str, Any] = {"status": filters.status, "sort": sort}
    for name in ("label", "min_score", "max_score", "article_id", "author", "since", "until"):
        value = getattr(filters, name)
        if value is not None:
            params[name] = value.isoformat() if isinstance(value, datetime) else value
    if limit != DEFAULT_LIMIT:
        params["limit"] = limit
    if cursor:
        params["cursor"] = cursor
    return urlencode(params)


@router.get("", response_class=HTMLResponse)
def moderate_page(
    request: Request,
    page: PageSessionDep,
    db: DatabaseDep,
    filters: PageFiltersDep,
    sort: QueueSort = "score",
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Response:
    if page is None:
        return _to_login()
    with db.read_session() as session:
        result = queue_page(
            session=session, site_id=page.site.id or 0, filters=filters, sort=sort, cursor=cursor, limit=limit
        )
    here = "/moderate?" + _query_string(filters, sort, limit, cursor)
    context = {
        "page": page,
        "rows": [_row(item) for item in result.items],
        "counts": result.counts,
        "filters": filters,
        "sort": sort,
        "here": here,
        "first_page": "/moderate?" + _query_string(filters, sort, limit),
        "next_page": "/moderate?" + _query_string(filters, sort, limit, result.next_cursor)
        if result.next_cursor
        else None,
    }
    return _html(request, "moderate.html", context)


@router.get("/comments/{comment_id}", response_class=HTMLResponse)
def comment_page(request: Request, page: PageSessionDep, db: DatabaseDep, comment_id: CommentId) -> Response:
    """One comment of the site: the card as in the queue (decidable from here too), then its
    history: the engine's verdict and every decision since, who and when (GET /v1/comments/{id}/history)."""
    if page is None:
        return _to_login()
    here = f"/moderate/comments/{comment_id}"
    context: dict[str, Any] = {"page": page, "comment_id": comment_id, "here": here, "row": None, "decisions": []}
    site_id = page.moderator.site_id
    with db.read_session() as session:
        try:
            comment = find_comment(session=session, site_id=site_id, comment_id=comment_id)
        except NotFound:
            return _html(request, "comment.html", context, status_code=404)
        article = session.get(Article, comment.article_id) if comment.article_id is not None else None
        decisions = named_decisions(session=session, site_id=site_id, comment_id=comment_id)
        context.update(row=_row(queue_item(comment, article)), decisions=decisions)
    return _html(request, "comment.html", context)


@router.post("/decide")
def decide_from_page(
    request: Request,
    page: PageSessionDep,
    writer: WriterDep,
    ids: Annotated[list[FormId], Form(min_length=1, max_length=MAX_BULK_IDS)],
    action: Annotated[str, Form(max_length=16)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    next_url: Annotated[str, Form(alias="next", max_length=4000)] = "/moderate",
    expect: Annotated[list[Status] | None, Form(max_length=MAX_BULK_IDS)] = None,
    shown: Annotated[list[FormShown] | None, Form(max_length=MAX_BULK_IDS)] = None,
) -> Response:
    """Decide the given comments. A fetch (Accept: application/json) gets JSON; a plain form, a 303 back.

    `expect` (optional, one per id) is the status the page showed for each comment. A comment whose
    status has changed since (another moderator, another tab, a second keystroke) is not decided
    again: its result is a 409 with the status it has now, so a stale page never silently overrides
    a colleague's decision. A plain form post with any refused id gets that status with the JSON results,
    or, from a browser (Accept: text/html), a page naming what was not decided.
    The bulk form cannot pair a ticked box with its status without JavaScript, so every card also
    sends `shown` ("id:status") with it; without `expect`, the selected ids are checked against those.
    """
    wants_json = "application/json" in request.headers.get("accept", "")
    if page is None:
        if wants_json:
            return JSONResponse({"detail": "Not logged in"}, status_code=401)
        return _to_login()
    token = request.headers.get("x-csrf-token") or csrf
    if not csrf_matches(page.token, page.moderator, token):
        return JSONResponse({"detail": "CSRF token missing or invalid"}, status_code=403)
    if action not in PAGE_ACTIONS:
        detail = [{"type": "value_error", "loc": ["body", "action"], "msg": f"unknown action {action!r}"}]
        return JSONResponse({"detail": detail}, status_code=422)
    if expect is not None and len(expect) != len(ids):
        detail = [{"type": "value_error", "loc": ["body", "expect"], "msg": "give one expected status per id"}]
        return JSONResponse({"detail": detail}, status_code=422)
    kind, label = PAGE_ACTIONS[action]
    decision = DecisionCreate.model_validate({"action": kind, "label": label})
    moderator, site_id = page.moderator, page.moderator.site_id
    if expect:
        expected: dict[int, str] = dict(zip(ids, expect, strict=True))
    else:
        on_page = {key: status for key, _, status in (item.partition(":") for item in shown or ())}
        expected = {i: on_page[str(i)] for i in ids if str(i) in on_page}

    def job(s: Session) -> tuple[list[dict[str, Any]], Any]:
        changed = _changed_since_shown(s, site_id, expected)
        fresh = [i for i in dict.fromkeys(ids) if i not in changed]
        decided = decide_many(session=s, site_id=site_id, ids=fresh, decision=decision, moderator_id=moderator.id)
        by_id = {r.id: _result(r) for r in decided} | changed
        return [by_id[i] for i in dict.fromkeys(ids)], queue_counts(session=s, site_id=site_id)

    results, counts = writer.run_sync(job)
    payload = {"results": results, "counts": counts.model_dump()}
    refused = [r for r in results if r.get("error")]
    target = next_url if _SAFE_NEXT.fullmatch(next_url) else "/moderate"
    if refused and not wants_json and "text/html" in request.headers.get("accept", ""):
        # A browser without JavaScript: say what was not decided, in a page, with the way back.
        context = {"refused": refused, "back": target}
        return _html(request, "refused.html", context, status_code=refused[0]["error"]["status"])
    if wants_json or refused:
        status_code = 200 if wants_json else refused[0]["error"]["status"]
        return JSONResponse(payload, status_code=status_code, headers={"Cache-Control": "no-store"})
    return RedirectResponse(target, status_code=303)


def _result(result: BulkDecisionResult) -> dict[str, Any]:
    if result.decision is not None:
        return {"id": result.id, "status": result.decision.status, "label": result.decision.label}
    return {"id": result.id, "error": result.error.model_dump() if result.error else None}


def _changed_since_shown(session: Session, site_id: int, expected: dict[int, str]) -> dict[int, dict[str, Any]]:
    """The 409 results of the comments whose status is no longer the one the page showed. The row is
    locked (PostgreSQL) so that a decision from another worker cannot slip in between check and write."""
    changed: dict[int, dict[str, Any]] = {}
    for comment_id, status in expected.items():
        comment = session.get(Comment, comment_id, with_for_update=True)
        if comment is None or comment.site_id != site_id or comment.status == status:
            continue  # unknown ids get their 404 from `decide_many`
        detail = f"Comment {comment_id} is {comment.status} now, not {status}: decided since this page loaded"
        changed[comment_id] = {
            "id": comment_id,
            "error": {"status": 409, "detail": detail},
            "current": {"status": comment.status, "label": comment.label},
        }
    return changed


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    """The page's own script and stylesheet (the CSP allows nothing else)."""
    if not re.fullmatch(r"[a-z_]+\.(js|css)", name):
        return Response(status_code=404)
    path = resources.files("api") / "static" / name
    if not path.is_file():
        return Response(status_code=404)
    media_type = "text/javascript" if name.endswith(".js") else "text/css"
    headers = {"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"}
    return Response(path.read_bytes(), media_type=media_type, headers=headers)
