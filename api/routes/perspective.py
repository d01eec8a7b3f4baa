"""Perspective API compatibility: `POST /v1alpha1/comments:analyze` and `:suggestscore`.

A site that called `https://commentanalyzer.googleapis.com/v1alpha1/comments:analyze?key=KEY` points the
same request at Moderato with its Moderato site key (`?key=` or `Authorization: Bearer`). Request,
response and errors follow conversationai/perspectiveapi `2-api/methods.md` and `limits.md`:

    {"comment": {"text": ...}, "requestedAttributes": {"TOXICITY": {}, "SPAM": {}},
     "context": {"entries": [{"text": <article>}]}, "spanAnnotations": true, "languages": ["en"],
     "doNotStore": false, "clientToken": "..."}
    -> {"attributeScores": {"TOXICITY": {"summaryScore": {"value": 0.02, "type": "PROBABILITY"},
                                         "spanScores": [{"begin": 0, "end": 31, "score": {...}}]}},
        "languages": ["en"], "clientToken": "..."}

Attributes: Perspective's TOXICITY, SEVERE_TOXICITY, IDENTITY_ATTACK, INSULT, PROFANITY, THREAT and SPAM,
plus Moderato's OFF_TOPIC (scored against `context.entries`, which Perspective never used). Only English
is supported. Errors are Google API errors: `{"error": {"code": 400, "message": ..., "status":
"INVALID_ARGUMENT", "details": [{"@type": ..., "errorType": ...}]}}`.

Every analyzed comment is stored like `/v1/moderate` stores it (source `perspective`); with
`doNotStore: true` only scores, decision and span offsets are kept, never the text, and the comment
stays out of the review queue and the retraining feedback. `suggestscore` records the suggested
scores as a decision (label spam / toxicity / off_topic / ham), i.e. as retraining feedback.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError
from sqlmodel import Session

from api.config import MAX_TEXT_CHARS
from api.deps import bearer_token
from api.errors import NotAuthenticated, google_error
from api.moderation import Moderation
from api.schemas import CleanStr, CommentIn, DecisionCreate, ModerateRequest, Probability, Site, SpanIn
from api.site_cache import SiteCache
from api.store.comments import StoredVerdict, find_by_text, text_digest
from api.store.decisions import record_decision
from api.store.integrations import store_integration_comment
from api.store.sites import authenticate_site
from classifier import Article, Assessment, InputError
from classifier.text import is_blank

#: Perspective's answers are a Google API error (`{"error": {"code", "message", "status", "details"}}`).
GOOGLE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Google API error: a request Perspective would refuse (INVALID_ARGUMENT)"},
    401: {"description": "Google API error: the `key` parameter is not a site's API key (UNAUTHENTICATED)"},
    413: {"description": "Google API error: request body over 64 KiB (INVALID_ARGUMENT)"},
    503: {"description": "Google API error: no bundle loaded or the database is unreachable (UNAVAILABLE)"},
}
router = APIRouter(prefix="/v1alpha1", tags=["perspective"], responses=GOOGLE_ERRORS)

SOURCE = "perspective"
PROBABILITY = "PROBABILITY"
SUPPORTED_LANGUAGES = ("en",)
#: Perspective attribute -> where its score comes from: ("scores" | "attributes", engine name), and
#: which evidence spans answer `spanAnnotations`.
ATTRIBUTES: dict[str, tuple[str, str, str | None]] = {
    "TOXICITY": ("scores", "toxicity", "toxicity"),
    "SEVERE_TOXICITY": ("attributes", "severe_toxicity", "toxicity"),
    "IDENTITY_ATTACK": ("attributes", "identity_attack", "toxicity"),
    "INSULT": ("attributes", "insult", "toxicity"),
    "PROFANITY": ("attributes", "obscene", "toxicity"),
    "THREAT": ("attributes", "threat", "toxicity"),
    "SPAM": ("scores", "spam", "spam"),
    "OFF_TOPIC": ("scores", "off_topic", None),
}
#: suggestscore: which label a suggested high score stands for.
LABEL_OF = {name: "toxicity" if evidence == "toxicity" else key for name, (_, key, evidence) in ATTRIBUTES.items()}
FEEDBACK_CUT = 0.5


class PerspectiveError(Exception):
    """A request Perspective would refuse; answered as a Google API error."""

    def __init__(self, message: str, *, code: int = 400, error_type: str = "INVALID_REQUEST", **detail: Any) -> None:
        super().__init__(message)
        self.message, self.code, self.error_type, self.detail = message, code, error_type, detail

    def response(self) -> JSONResponse:
        body = google_error(self.code, self.message, error_type=self.error_type, **self.detail)
        return JSONResponse(body, status_code=self.code)


# ---------------------------------------------------------------------------------------------
# Request shapes (unknown fields are ignored, as Perspective's own proto parsing would not be). Every
# string is a CleanStr: no NUL (PostgreSQL refuses it in text) and no lone surrogate (it could not be
# encoded into the answer, which echoes clientToken, languages and attribute names).


class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextEntry(_Shape):
    text: CleanStr | None = None
    type: CleanStr | None = None


class ContextIn(_Shape):
    entries: list[TextEntry] = Field(default_factory=list, max_length=100)


class AttributeParameters(_Shape):
    scoreType: CleanStr | None = None
    scoreThreshold: Probability | None = None


class AnalyzeRequest(_Shape):
    comment: TextEntry | None = None
    context: ContextIn | None = None
    requestedAttributes: dict[CleanStr, AttributeParameters | None] | None = None
    spanAnnotations: StrictBool = False  # JSON true/false only: "yes" is an error, not a guess
    languages: list[CleanStr] | None = Field(default=None, max_length=20)
    doNotStore: StrictBool = False
    clientToken: CleanStr | None = Field(default=None, max_length=1000)
    sessionId: CleanStr | None = None
    communityId: CleanStr | None = None


class ScoreIn(_Shape):
    value: Probability
    type: CleanStr | None = None


class SpanScoreIn(_Shape):
    begin: int = Field(ge=0)
    end: int = Field(ge=0)
    score: ScoreIn


class SuggestedScores(_Shape):
    summaryScore: ScoreIn | None = None
    spanScores: list[SpanScoreIn] = Field(default_factory=list, max_length=1000)


class SuggestRequest(_Shape):
    comment: TextEntry | None = None
    context: ContextIn | None = None
    attributeScores: dict[CleanStr, SuggestedScores] | None = None
    languages: list[CleanStr] | None = Field(default=None, max_length=20)
    communityId: CleanStr | None = None
    clientToken: CleanStr | None = Field(default=None, max_length=1000)


# ---------------------------------------------------------------------------------------------
# Shared steps


def _lookup_site(request: Request, token: str) -> Site | None:
    try:
        with request.app.state.db.read_session() as session:
            return authenticate_site(session=session, api_key=token)
    except NotAuthenticated:
        return None


async def _site(request: Request) -> Site:
    token = request.query_params.get("key") or bearer_token(request)
    site = None
    if token:
        cache: SiteCache = request.app.state.site_cache
        site = cache.get(token)
        if site is None:
            site = await run_in_threadpool(_lookup_site, request, token)
            if site is not None:
                cache.put(token, site)
    if site is None:
        message = "API key not valid. Please pass a valid API key."
        raise PerspectiveError(message, code=401, error_type="API_KEY_INVALID")
    request.state.site_name = site.name
    return site


async def _body(request: Request, shape: type[BaseModel]) -> Any:
    try:
        raw = json.loads(await request.body())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PerspectiveError(f"Invalid JSON payload received. {exc}") from exc
    if not isinstance(raw, dict):
        raise PerspectiveError("Invalid JSON payload received. Expected an object.")
    try:
        return shape.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PerspectiveError(f"Invalid value at '{where}': {first['msg']}") from exc


def _comment_text(comment: TextEntry | None) -> str:
    text = comment.text if comment is not None else None
    if comment is not None and comment.type not in (None, "PLAIN_TEXT"):
        if comment.type == "HTML":
            raise PerspectiveError("Currently, only 'PLAIN_TEXT' comments are supported")
        raise PerspectiveError("Unknown text type")
    if text is None or is_blank(text):
        raise PerspectiveError("Comment must be non-empty.", error_type="COMMENT_EMPTY")
    if len(text) > MAX_TEXT_CHARS:
        raise PerspectiveError("Comment text too long.", error_type="COMMENT_TOO_LONG")
    try:
        return CommentIn(text=text).text
    except ValidationError as exc:
        raise PerspectiveError(f"Invalid comment text: {exc.errors()[0]['msg']}") from exc


def _languages(languages: list[str] | None, attributes: list[str]) -> list[str]:
    if not languages:
        return ["en"]  # no detection: Moderato's bundles are English
    unsupported = [lang for lang in languages if lang.split("-")[0].split("_")[0].lower() not in SUPPORTED_LANGUAGES]
    if unsupported:
        attribute = attributes[0] if attributes else "TOXICITY"
        raise PerspectiveError(
            f"Attribute {attribute} does not support request languages: {', '.join(unsupported)}",
            error_type="LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE",
            languageNotSupportedByAttributeError={"requestedLanguages": languages, "attribute": attribute},
        )
    return languages


def _article(context: ContextIn | None) -> Article | None:
    texts = [e.text for e in (context.entries if context else []) if e.text and e.text.strip()]
    if not texts:
        return None
    body = "\n\n".join(texts)
    if len(body) > 1_000_000 or "\x00" in body:
        raise PerspectiveError("Invalid context: entries must be text of at most 1MB")
    return Article(body=body)


def _value(assessment: Assessment, name: str) -> float:
    where, key, _ = ATTRIBUTES[name]
    value = assessment.scores.get(key) if where == "scores" else assessment.attributes.get(key)
    return round(float(value or 0.0), 6)


def _score(value: float) -> dict[str, Any]:
    return {"value": value, "type": PROBABILITY}


# ---------------------------------------------------------------------------------------------
# Routes


@router.post("/comments:analyze")
async def analyze(request: Request) -> JSONResponse:
    """Perspective's AnalyzeComment, answered by Moderato's engine."""
    try:
        site = await _site(request)
        body: AnalyzeRequest = await _body(request, AnalyzeRequest)
        text = _comment_text(body.comment)
        requested = body.requestedAttributes or {}
        if not requested:
            raise PerspectiveError("Missing requested_attributes", error_type="NO_REQUESTED_ATTRIBUTES")
        for name, params in requested.items():
            if name not in ATTRIBUTES:
                raise PerspectiveError(f"Unknown requested attribute: {name}")
            if params is not None and params.scoreType not in (None, PROBABILITY):
                raise PerspectiveError(f"Requested score type {params.scoreType} is not supported by attribute {name}")
        languages = _languages(body.languages, list(requested))
        article = _article(body.context)
        if "OFF_TOPIC" in requested and article is None:
            raise PerspectiveError("Attribute OFF_TOPIC needs the article as context.entries[].text")
        assessment = await _assess_and_store(request, site, text, article, keep_text=not body.doNotStore)
    except InputError as exc:
        return PerspectiveError(str(exc)).response()
    except PerspectiveError as exc:
        return exc.response()

    scores: dict[str, Any] = {}
    for name, params in requested.items():
        value = _value(assessment, name)
        threshold = params.scoreThreshold if params is not None else None
        if threshold is not None and value < threshold:
            continue
        entry: dict[str, Any] = {"summaryScore": _score(value)}
        evidence_label = ATTRIBUTES[name][2]
        if body.spanAnnotations and evidence_label is not None:
            evidence = assessment.evidence.get(evidence_label)
            spans = evidence.spans if evidence is not None else ()
            entry["spanScores"] = [{"begin": s.start, "end": s.end, "score": _score(value)} for s in spans]
        scores[name] = entry
    response: dict[str, Any] = {"attributeScores": scores, "languages": languages}
    if body.clientToken is not None:
        response["clientToken"] = body.clientToken
    return JSONResponse(response)


async def _assess_and_store(
    request: Request, site: Site, text: str, article: Article | None, *, keep_text: bool
) -> Assessment:
    moderation: Moderation = request.app.state.moderation
    if moderation.engine is None:
        raise PerspectiveError("The service is currently unavailable.", code=503, error_type="UNAVAILABLE")
    moderate = ModerateRequest(comment=CommentIn(text=text))

    def store(session: Session, assessment: Assessment) -> StoredVerdict:
        return store_integration_comment(
            session=session,
            site=site,
            comment_in=moderate.comment,
            article_in=None,  # the context is scored, never stored
            assessment=assessment,
            source=SOURCE,
            queueable=keep_text,
            keep_text=keep_text,
        )

    assessment, _ = await moderation.assess_and_store(
        site=site, request=moderate, article=article, store=store, log_text=keep_text
    )
    return assessment


@router.post("/comments:suggestscore")
async def suggest_score(request: Request) -> JSONResponse:
    """Perspective's SuggestCommentScore: the suggested scores become a decision (retraining feedback)."""
    try:
        site = await _site(request)
        body: SuggestRequest = await _body(request, SuggestRequest)
        text = _comment_text(body.comment)
        suggested = body.attributeScores or {}
        if not suggested:
            raise PerspectiveError("Missing attribute_scores")
        for name in suggested:
            if name not in ATTRIBUTES:
                raise PerspectiveError(f"Unknown requested attribute: {name}")
        _languages(body.languages, list(suggested))
        label, spans = _suggested_label(suggested, len(text))
        moderation: Moderation = request.app.state.moderation
        if moderation.engine is None:
            raise PerspectiveError("The service is currently unavailable.", code=503, error_type="UNAVAILABLE")
        await run_in_threadpool(_record_suggestion, moderation, site, text, label, spans)
    except PerspectiveError as exc:
        return exc.response()
    return JSONResponse({"clientToken": body.clientToken} if body.clientToken is not None else {})


def _suggested_label(suggested: dict[str, SuggestedScores], text_length: int) -> tuple[str, list[SpanIn]]:
    """The label the suggestion stands for: the highest suggested score at or above 0.5, else ham;
    its high-scoring spans become the decision's evidence."""
    best: tuple[float, str] | None = None
    for name, scores in suggested.items():
        values = [scores.summaryScore.value] if scores.summaryScore is not None else []
        values += [s.score.value for s in scores.spanScores]
        top = max(values, default=0.0)
        if top >= FEEDBACK_CUT and (best is None or top > best[0]):
            best = (top, name)
    if best is None:
        return "ham", []
    spans = []
    for span in suggested[best[1]].spanScores:
        if span.score.value >= FEEDBACK_CUT:
            if span.end <= span.begin or span.end > text_length:
                message = f"Invalid span [{span.begin}, {span.end}) for a comment of {text_length} characters"
                raise PerspectiveError(message)
            spans.append(SpanIn(start=span.begin, end=span.end))
    return LABEL_OF[best[1]], spans


def _record_suggestion(moderation: Moderation, site: Site, text: str, label: str, spans: list[SpanIn]) -> None:
    """Decide the site's latest stored comment with this text (storing it first when unknown)."""
    assert site.id is not None
    site_id = site.id
    with moderation.db.read_session() as session:
        comment = find_by_text(session=session, site_id=site_id, digest=text_digest(text))
    comment_id = comment.id if comment is not None else None
    if comment_id is None:
        request = ModerateRequest(comment=CommentIn(text=text))
        comment_id = moderation.moderate(site=site, request=request, source=SOURCE).id
    decision = DecisionCreate(
        action="approve" if label == "ham" else "reject",
        label=label,  # type: ignore[arg-type]
        spans=spans if label != "ham" else None,
    )
    moderation.writer.run_sync(
        lambda s: record_decision(
            session=s, site_id=site_id, comment_id=comment_id, decision=decision, source=SOURCE, notify=False
        )
    )
