"""Akismet-compatible endpoints: existing integrations switch by pointing at this host.

Form-encoded, Akismet's field names, plain-text bodies (`valid`/`invalid`, `true`/`false`,
"Thanks for making the web a better place."). A held or rejected comment is spam (`true`); blatant
spam (rejected for spam) adds `X-akismet-pro-tip: discard`. Problems are explained in
`X-akismet-debug-help`. submit-spam / submit-ham record labels for retraining.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from pydantic import ValidationError
from sqlmodel import Session

from api.deps import get_moderation, get_session
from api.errors import NotAuthenticated
from api.moderation import Moderation, record_feedback
from api.schemas import ModerateRequest, Site
from api.store.sites import authenticate_site
from classifier.text import is_blank

router = APIRouter(prefix="/1.1", tags=["akismet"])
THANKS = "Thanks for making the web a better place."
DEBUG = "X-akismet-debug-help"

ModerationDep = Annotated[Moderation, Depends(get_moderation)]


def _text(body: str, *, status: int = 200, headers: dict[str, str] | None = None) -> PlainTextResponse:
    return PlainTextResponse(body, status_code=status, headers=headers)


def _invalid_key() -> PlainTextResponse:
    return _text("invalid", headers={DEBUG: "We were unable to find a site for the API key you passed."})


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _authenticate(session: Session, key: str | None) -> Site | None:
    try:
        return authenticate_site(session=session, api_key=key)
    except NotAuthenticated:
        return None


def _to_moderate_request(fields: dict[str, str]) -> ModerateRequest:
    author = {
        "name": fields.get("comment_author"),
        "email": fields.get("comment_author_email"),
        "url": fields.get("comment_author_url"),
        "ip": fields.get("user_ip"),
        "user_agent": fields.get("user_agent"),
    }
    body: dict[str, Any] = {"comment": {"text": fields.get("comment_content", ""), "author": author}}
    if fields.get("permalink"):
        body["article"] = {"url": fields["permalink"]}
    return ModerateRequest.model_validate(body)


def _missing(fields: dict[str, str], *names: str) -> PlainTextResponse | None:
    for name in names:
        if not fields.get(name, "").strip():
            message = f"Missing required field: {name}."
            return _text(message, status=400, headers={DEBUG: message})
    return None


def _unusable(exc: ValidationError) -> PlainTextResponse:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    message = f"Invalid field {where}: {first['msg']}"
    return _text(message, status=400, headers={DEBUG: message})


@router.post("/verify-key", response_class=PlainTextResponse)
async def verify_key(request: Request, session: Annotated[Session, Depends(get_session)]) -> PlainTextResponse:
    fields = await _form(request)
    site = await run_in_threadpool(_authenticate, session, fields.get("key"))
    return _text("valid") if site is not None else _invalid_key()


@router.post("/comment-check", response_class=PlainTextResponse)
async def comment_check(
    request: Request, session: Annotated[Session, Depends(get_session)], moderation: ModerationDep
) -> PlainTextResponse:
    fields = await _form(request)
    site = await run_in_threadpool(_authenticate, session, fields.get("api_key"))
    if site is None:
        return _invalid_key()
    request.state.site_name = site.name
    if problem := _missing(fields, "blog", "user_ip"):
        return problem
    if is_blank(fields.get("comment_content", "")):
        return _text("false", headers={DEBUG: "Empty comment_content: nothing to check."})
    try:
        body = _to_moderate_request(fields)
    except ValidationError as exc:
        return _unusable(exc)
    verdict = await run_in_threadpool(lambda: moderation.moderate(site=site, request=body, source="akismet"))
    headers = {"X-akismet-guid": str(verdict.id)}
    if verdict.decision == "approve":
        return _text("false", headers=headers)
    if verdict.decision == "reject" and verdict.reasons and verdict.reasons[0].label == "spam":
        headers["X-akismet-pro-tip"] = "discard"
    return _text("true", headers=headers)


async def _submit(request: Request, session: Session, moderation: Moderation, label: str) -> PlainTextResponse:
    fields = await _form(request)
    site = await run_in_threadpool(_authenticate, session, fields.get("api_key"))
    if site is None:
        return _invalid_key()
    request.state.site_name = site.name
    if problem := _missing(fields, "blog", "user_ip", "comment_content"):
        return problem
    try:
        body = _to_moderate_request(fields)
    except ValidationError as exc:
        return _unusable(exc)
    await run_in_threadpool(lambda: record_feedback(moderation, site=site, request=body, label=label))
    return _text(THANKS)


@router.post("/submit-spam", response_class=PlainTextResponse)
async def submit_spam(
    request: Request, session: Annotated[Session, Depends(get_session)], moderation: ModerationDep
) -> PlainTextResponse:
    return await _submit(request, session, moderation, "spam")


@router.post("/submit-ham", response_class=PlainTextResponse)
async def submit_ham(
    request: Request, session: Annotated[Session, Depends(get_session)], moderation: ModerationDep
) -> PlainTextResponse:
    return await _submit(request, session, moderation, "ham")
