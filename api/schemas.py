"""Every SQLModel class: tables and the API's input/output shapes, one family per entity.

Families follow `Base -> Table / Create / Public (/ Update)`; API shapes never inherit from a table,
and only `*Public` classes leave the service, so internal columns (key hashes, secrets) never leak.

Tables (all rows belong to a site):

    site ─┬─ site_key            hashed API keys; a rotated key keeps working until expires_at
          ├─ moderator           people with a hashed secret and a role (queue issue)
          ├─ article             registered once by (site, external id), then referred to by id
          ├─ comment ─┬─ decision            every human verdict (moderator or Akismet feedback)
          │           ├─ webhook_delivery ── webhook_attempt   outbox + every attempt
          │           └─ coral_comment       Coral's story/author/parent for a comment (EDIT -> its NEW)
          └─ coral_secret        Coral external-moderation signing secrets (old ones valid until expires_at)
    bundle_promotion             which bundle version is promoted (retraining issue)
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, ConfigDict, StrictInt, WithJsonSchema, field_validator
from sqlalchemy import JSON, Column, DateTime, Index, Text, TypeDecorator, UniqueConstraint
from sqlmodel import Field, SQLModel

from api.config import MAX_BATCH_ITEMS, MAX_TEXT_CHARS
from classifier.text import is_blank

# Named constraints, so later migrations (SQLite batch mode included) can alter them.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# Input hygiene: text that SQLite accepts but PostgreSQL or a UTF-8 encoder would not.


def _clean(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode (no lone surrogates)") from exc
    return value


def _id_string(value: Any) -> Any:
    # Platforms use numeric or string ids; both are stored as text.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _not_bool(value: Any) -> Any:
    # JSON `true` is not the number 1: a threshold or score sent as a boolean is a client's bug.
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


def _comment_text(value: str) -> str:
    if is_blank(value):
        raise ValueError("must not be empty")
    if len(value) > MAX_TEXT_CHARS:
        raise ValueError(f"must be at most {MAX_TEXT_CHARS} characters")
    return value


def _cleanly_decoded(value: str) -> str:
    # Servers decode a path's %-escapes with errors="replace": `a%FFb` and `a%FEb` both arrive as
    # "a\ufffdb", so two platform ids would name one row. Refused rather than guessed at.
    if "\ufffd" in value:
        raise ValueError("must be valid percent-encoded UTF-8 (no U+FFFD replacement character)")
    return value


CleanStr = Annotated[str, AfterValidator(_clean)]
ExternalId = Annotated[
    str,
    BeforeValidator(_id_string),
    AfterValidator(_clean),
    WithJsonSchema({"anyOf": [{"type": "string", "maxLength": 255}, {"type": "integer"}]}),
]
#: A probability a client sends (a threshold, a suggested score): a JSON number in [0, 1].
Probability = Annotated[float, Field(ge=0.0, le=1.0), BeforeValidator(_not_bool)]
#: An id taken from a URL path (e.g. `/v1/articles/{id}`): the body's rules plus no bad %-escapes.
PathId = Annotated[str, AfterValidator(_clean), AfterValidator(_cleanly_decoded)]
CommentText = Annotated[str, AfterValidator(_clean), AfterValidator(_comment_text)]
Label = Literal["spam", "toxicity", "off_topic"]
Mode = Literal["enforce", "log_only"]
Status = Literal["approved", "pending", "rejected"]

STATUS_BY_DECISION: dict[str, str] = {"approve": "approved", "hold": "pending", "reject": "rejected"}


# ---------------------------------------------------------------------------------------------
# Sites and credentials


SITE_NAME = re.compile(r"[a-z0-9-]+")
#: The longest retention a site may set: 100 years (null keeps text forever). Beyond it
#: `now - timedelta(days=N)` overflows, and so does the database's integer column.
MAX_RETENTION_DAYS = 36500


def _webhook_url(value: Any) -> Any:
    """An absolute http(s) URL with a host, or None; "" means None (no webhook), as in the CLI."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return value  # the str type check names the error
    _clean(value)
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError for a port out of range
    except ValueError as exc:
        raise ValueError("must be an absolute http:// or https:// URL with a host") from exc
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        raise ValueError("must be an absolute http:// or https:// URL with a host")
    return value


#: Shared by every input that sets a site's webhook URL (API and CLI), so delivery never meets a
#: URL httpx cannot send to (file://, no host, ...).
WebhookUrl = Annotated[str | None, BeforeValidator(_webhook_url)]
RetentionDays = Annotated[int | None, Field(ge=1, le=MAX_RETENTION_DAYS)]


class SiteBase(SQLModel):
    name: str = Field(index=True, unique=True, max_length=63)
    url: str | None = Field(default=None, max_length=2048)
    webhook_url: str | None = Field(default=None, max_length=2048)
    retention_days: int | None = Field(default=None, ge=1)

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SITE_NAME.fullmatch(value):
            raise ValueError("site name must be a slug: lowercase letters, digits and '-'")
        return value


class Site(SiteBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    webhook_secret: str | None = Field(default=None, max_length=128)
    policy_mode: str = Field(default="enforce", max_length=16)
    #: Only the thresholds this site overrides, e.g. {"spam": {"hold": 0.4}}; the rest follow the bundle.
    policy_overrides: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SiteCreate(SiteBase):
    # Input-only bounds (SiteBase stays lenient, so a row stored before them still reads back).
    webhook_url: WebhookUrl = Field(default=None, max_length=2048)
    retention_days: RetentionDays = None


class SiteUpdate(SQLModel):
    url: CleanStr | None = Field(default=None, max_length=2048)
    #: null or "" removes the webhook.
    webhook_url: WebhookUrl = Field(default=None, max_length=2048)
    retention_days: RetentionDays = None


class SitePublic(SiteBase):
    created_at: datetime


class SitePatched(SitePublic):
    """PATCH /v1/sites/me's answer: `webhook_secret` only when this PATCH issued it (shown once)."""

    webhook_secret: str | None = Field(
        default=None,
        description="The webhook signing secret, present only in the answer to the PATCH that first set a "
        "webhook URL (the site had no secret yet): keep it to verify X-Moderato-Signature.",
    )


class SiteKey(SQLModel, table=True):
    __tablename__ = "site_key"

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    #: The non-secret start of the key, used to find candidates; the hash is compared in constant time.
    prefix: str = Field(index=True, max_length=32)
    key_hash: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    #: None while current; set when rotated out (the grace period ends then).
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ModeratorBase(SQLModel):
    name: str = Field(max_length=100)
    role: str = Field(default="moderator", max_length=16)


class Moderator(ModeratorBase, table=True):
    __table_args__ = (UniqueConstraint("site_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    secret_prefix: str = Field(index=True, max_length=32)
    secret_hash: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Signed into every page session (`api.moderator_sessions`); logging out moves it on, which
    # ends every session cookie issued before, copies included.
    session_epoch: int = 0


class ModeratorPublic(ModeratorBase):
    id: int
    created_at: datetime
    #: A disabled account keeps its row (its decisions name it) but its secret and sessions no longer work.
    disabled: bool
    disabled_at: datetime | None


# ---------------------------------------------------------------------------------------------
# Policy


class ThresholdsUpdate(SQLModel):
    hold: Probability | None = None
    reject: Probability | None = None


class PolicyUpdate(SQLModel):
    """PATCH body: a missing key keeps its value; a label set to null drops the site's override."""

    model_config = ConfigDict(  # type: ignore[assignment]
        json_schema_extra={"examples": [{"mode": "enforce", "thresholds": {"spam": {"hold": 0.5, "reject": 0.9}}}]}
    )

    mode: Mode | None = None
    thresholds: dict[Label, ThresholdsUpdate | None] | None = None


class ThresholdsPublic(SQLModel):
    hold: float
    reject: float


class PolicyPublic(SQLModel):
    mode: Mode
    #: The thresholds in force: the bundle's, with this site's overrides applied.
    thresholds: dict[str, ThresholdsPublic]
    overrides: dict[str, dict[str, float]]
    bundle_version: str | None


# ---------------------------------------------------------------------------------------------
# Articles


class ArticleBase(SQLModel):
    url: CleanStr | None = Field(default=None, max_length=2048)
    title: CleanStr | None = Field(default=None, max_length=1000)
    body: CleanStr | None = Field(default=None, sa_type=Text)


class Article(ArticleBase, table=True):
    __table_args__ = (UniqueConstraint("site_id", "external_id"), Index("ix_article_site_url", "site_id", "url"))

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id")
    external_id: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ArticleCreate(ArticleBase):
    pass


class ArticleIn(ArticleBase):
    """The `article` of a moderate request: an id alone refers to one registered before."""

    id: ExternalId | None = Field(default=None, max_length=255)


class ArticlePublic(ArticleBase):
    id: str | None
    created_at: datetime
    updated_at: datetime


# ---------------------------------------------------------------------------------------------
# Comments and verdicts


class AuthorIn(SQLModel):
    name: CleanStr | None = Field(default=None, max_length=255)
    email: CleanStr | None = Field(default=None, max_length=320)
    url: CleanStr | None = Field(default=None, max_length=2048)
    ip: CleanStr | None = Field(default=None, max_length=64)
    user_agent: CleanStr | None = Field(default=None, max_length=1024)


class CommentIn(SQLModel):
    id: ExternalId | None = Field(default=None, min_length=1, max_length=255)
    text: CommentText
    author: AuthorIn | None = None
    parent_id: ExternalId | None = Field(default=None, max_length=255)


class ModerateRequest(SQLModel):
    model_config = ConfigDict(  # type: ignore[assignment]
        json_schema_extra={
            "examples": [
                {
                    "comment": {
                        "id": "c-1001",
                        "text": "Great piece! I made $500/day with crypto-wins.example, check it out.",
                        "author": {"name": "Sam", "email": "sam@example.com", "ip": "203.0.113.9"},
                    },
                    "article": {"id": "a-42", "title": "City council approves bike lanes", "body": "..."},
                    "mode": "enforce",
                }
            ]
        }
    )

    comment: CommentIn
    article: ArticleIn | None = None
    mode: Mode | None = None


class BatchRequest(SQLModel):
    """Items are validated one by one, so a bad item gets its own 422 and the rest still run."""

    items: list[Any] = Field(max_length=MAX_BATCH_ITEMS)


class SpanPublic(SQLModel):
    start: int
    end: int
    text: str | None


class ReasonPublic(SQLModel):
    label: str
    score: float
    spans: list[SpanPublic]
    signals: list[str]


class VerdictPublic(SQLModel):
    id: int
    comment_id: str | None
    status: Status
    decision: Literal["approve", "hold", "reject"]
    scores: dict[str, float | None]
    attributes: dict[str, float]
    reasons: list[ReasonPublic]
    model_version: str
    created_at: datetime


class BatchItemError(SQLModel):
    status: int
    detail: Any


class BatchItemFailure(SQLModel):
    error: BatchItemError


class BatchResponse(SQLModel):
    results: list[VerdictPublic | BatchItemFailure]


class AuthorPublic(SQLModel):
    name: str | None
    email: str | None
    url: str | None
    ip: str | None
    user_agent: str | None


class CommentPublic(VerdictPublic):
    """A stored comment as its site sees it; `text` and `author` are null once erased."""

    parent_id: str | None
    article_id: str | None
    label: str | None
    text: str | None
    author: AuthorPublic | None
    decided_at: datetime | None
    erased: bool


class Comment(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("site_id", "external_id"),
        Index("ix_comment_site_status_created", "site_id", "status", "created_at"),
        Index("ix_comment_site_status_score", "site_id", "status", "max_score"),
        # Queue counts by status: covering, so counting 10,000 pending comments reads only this index.
        Index("ix_comment_site_queueable_status", "site_id", "queueable", "status"),
        Index("ix_comment_site_text_sha256", "site_id", "text_sha256"),
    )

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id")
    external_id: str | None = Field(default=None, max_length=255)
    parent_id: str | None = Field(default=None, max_length=255)
    article_id: int | None = Field(default=None, foreign_key="article.id", index=True)
    #: The platform's article id as sent (kept even when the article was never registered).
    article_ref: str | None = Field(default=None, max_length=255)
    source: str = Field(default="api", max_length=16)
    #: False for comments moderated elsewhere (Coral sites decide in Coral's queue) or kept without
    #: text (Perspective `doNotStore`): Moderato's review queue never lists them.
    queueable: bool = True

    text: str | None = Field(default=None, sa_type=Text)
    text_sha256: str | None = Field(default=None, max_length=64)
    author_name: str | None = Field(default=None, max_length=255)
    author_email: str | None = Field(default=None, max_length=320)
    author_url: str | None = Field(default=None, max_length=2048)
    author_ip: str | None = Field(default=None, max_length=64)
    author_user_agent: str | None = Field(default=None, max_length=1024)
    erased_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    mode: str = Field(default="enforce", max_length=16)
    #: The engine's verdict (approve|hold|reject), never changed afterwards.
    decision: str = Field(max_length=16)
    #: approved|pending|rejected: the engine's verdict until a person decides.
    status: str = Field(max_length=16)
    #: The most severe flagged label, or the moderator's label once decided (spam|toxicity|off_topic|ham).
    label: str | None = Field(default=None, max_length=16)
    score_spam: float
    score_toxicity: float
    score_off_topic: float | None = None
    max_score: float = 0.0
    attributes: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    reasons: list[Any] = Field(default_factory=list, sa_type=JSON)
    #: The engine's evidence for every label (flagged or not): {label: reason dict}.
    evidence: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    model_version: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), index=True))
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# ---------------------------------------------------------------------------------------------
# Human decisions: the queue's verdicts and Akismet submit-spam/submit-ham, i.e. retraining labels


class SpanIn(SQLModel):
    start: int = Field(ge=0)
    end: int = Field(ge=0)

    @field_validator("end")
    @classmethod
    def _ordered(cls, end: int, info: Any) -> int:
        if end < info.data.get("start", 0):
            raise ValueError("end must not be before start")
        return end


Action = Literal["approve", "reject", "reopen"]
DecisionLabel = Literal["spam", "toxicity", "off_topic", "ham"]


class DecisionBase(SQLModel):
    action: str = Field(max_length=16)
    label: str | None = Field(default=None, max_length=16)
    note: str | None = Field(default=None, max_length=2000)


class ModeratorDecision(DecisionBase, table=True):
    __tablename__ = "decision"

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id")
    comment_id: int = Field(foreign_key="comment.id", index=True)
    moderator_id: int | None = Field(default=None, foreign_key="moderator.id")
    #: moderator | akismet (a platform's submit-spam / submit-ham)
    source: str = Field(default="moderator", max_length=16)
    #: The comment's status after this decision.
    status: str = Field(max_length=16)
    #: Evidence the person confirmed, as [{"start", "end"}] offsets into the comment text.
    spans: list[Any] = Field(default_factory=list, sa_type=JSON)
    model_version: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), index=True))


class DecisionCreate(DecisionBase):
    """A moderator's verdict; `spans` defaults to the engine's evidence for the label."""

    action: Action
    label: DecisionLabel | None = None
    note: CleanStr | None = Field(default=None, max_length=2000)
    spans: list[SpanIn] | None = None


class DecisionRequest(DecisionCreate):
    """The body of POST /v1/queue/{id}/decision: a moderator's own spans must each cover some text.

    Only the HTTP body refuses empty spans: `SpanIn` also reads stored decisions back (rows written
    before this rule must still load) and `DecisionCreate` is built by other sources (Perspective's
    suggestscore), which check their spans in their own error format."""

    @field_validator("spans")
    @classmethod
    def _not_empty(cls, spans: list[SpanIn] | None) -> list[SpanIn] | None:
        for span in spans or []:
            if span.end == span.start:
                raise ValueError("a span must cover at least one character (end > start)")
        return spans


class DecisionPublic(DecisionBase):
    id: int
    comment_id: int
    status: str
    source: str
    moderator_id: int | None
    spans: list[SpanIn]
    created_at: datetime


# ---------------------------------------------------------------------------------------------
# Webhooks: an outbox row per event, one attempt row per HTTP try


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_delivery"
    __table_args__ = (Index("ix_webhook_delivery_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    comment_id: int = Field(foreign_key="comment.id", index=True)
    decision_id: int | None = Field(default=None, foreign_key="decision.id")
    event: str = Field(max_length=64)
    url: str = Field(max_length=2048)
    #: The exact bytes sent (and signed) on every attempt.
    payload: str = Field(sa_type=Text)
    #: pending | delivered | failed
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    #: A worker that claimed the delivery holds it until then (several workers share the outbox).
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookAttempt(SQLModel, table=True):
    __tablename__ = "webhook_attempt"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="webhook_delivery.id", index=True)
    number: int
    started_at: datetime = Field(sa_type=UTCDateTime)
    duration_ms: float
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=500)


# ---------------------------------------------------------------------------------------------
# Coral external moderation phase: signing secrets and what Coral says about each comment


class CoralSecret(SQLModel, table=True):
    """A signing secret Coral uses for X-Coral-Signature; kept in clear (it keys an HMAC)."""

    __tablename__ = "coral_secret"

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    secret: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    #: None while current; set when rotated out (still accepted until then).
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CoralComment(SQLModel, table=True):
    """Coral sends no comment id: an EDIT is tied to its NEW by (story, author, parent)."""

    __tablename__ = "coral_comment"
    __table_args__ = (Index("ix_coral_comment_thread", "site_id", "story_id", "author_id"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id")
    comment_id: int = Field(foreign_key="comment.id", index=True)
    #: NEW | EDIT
    action: str = Field(max_length=8)
    story_id: str = Field(max_length=255)
    author_id: str = Field(max_length=255)
    author_role: str | None = Field(default=None, max_length=32)
    parent_id: str | None = Field(default=None, max_length=255)
    coral_site_id: str | None = Field(default=None, max_length=255)
    tenant_id: str | None = Field(default=None, max_length=255)
    #: For an EDIT: the comment row of the NEW it edits (None when no NEW was found).
    revision_of: int | None = Field(default=None, foreign_key="comment.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# ---------------------------------------------------------------------------------------------
# Bundles


class BundlePromotion(SQLModel, table=True):
    """Append-only: the newest row names the promoted bundle version every worker should serve."""

    __tablename__ = "bundle_promotion"

    id: int | None = Field(default=None, primary_key=True)
    version: str = Field(max_length=64, index=True)
    promoted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    promoted_by: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, max_length=2000)


class BundleReloadPublic(SQLModel):
    """POST /v1/admin/reload: the version this worker serves now and whether the call swapped it."""

    version: str | None
    previous: str | None
    promoted: str | None
    changed: bool


class HealthPublic(SQLModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)


class ErrorPublic(SQLModel):
    """Every error of the JSON API: `detail` is a sentence, or for 422 a list of
    `{"type", "loc", "msg"}` whose `loc` names the field (the input is never echoed back)."""

    detail: str | list[dict[str, Any]]


_ERROR_MEANING = {
    401: "No valid credential: missing, unknown, revoked or expired",
    403: "A valid credential of the wrong kind (a site key on a moderator route; not a site admin)",
    404: "No such row for this site (another site's is just as unknown)",
    409: "The request contradicts what is stored",
    413: "Request body over the limit (64 KiB; 1 MiB for /v1/moderate/batch)",
    503: "No bundle loaded, or the database is unreachable",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error statuses a route can answer, so generated clients know them."""
    return {code: {"model": ErrorPublic, "description": _ERROR_MEANING[code]} for code in codes}


# ---------------------------------------------------------------------------------------------
# The moderator queue (GET /v1/queue, decisions, history, moderator accounts)

QueueStatus = Literal["pending", "approved", "rejected", "all"]
QueueSort = Literal["score", "oldest", "newest"]
QueueLabel = Literal["spam", "toxicity", "off_topic", "ham"]
Role = Literal["moderator", "admin"]
MAX_BULK_IDS = 500
#: The largest row id accepted anywhere a client names one (paths, bodies, forms, cursors): inside a
#: signed 64-bit integer, the widest id SQLite and PostgreSQL store, so a larger number is a 422 here
#: instead of an overflow in the database driver; and JavaScript's largest exact integer, so every JSON
#: client reads our ids exactly and the OpenAPI bound (a JSON number) states it exactly.
MAX_ROW_ID = 2**53 - 1
#: A row id in a JSON body: strict, so `true`, `"5"` and `5.0` are refused rather than read as ids.
RowId = Annotated[StrictInt, Field(ge=1, le=MAX_ROW_ID)]


class QueueCounts(SQLModel):
    pending: int = 0
    approved: int = 0
    rejected: int = 0


class QueueItem(CommentPublic):
    """A comment as a moderator sees it: the stored comment plus its article's title and URL."""

    article_title: str | None
    article_url: str | None


class QueuePage(SQLModel):
    items: list[QueueItem]
    #: Pass as `cursor=` for the next page; null on the last page.
    next_cursor: str | None
    #: Comments of the site by status, under the same filters (except `status`).
    counts: QueueCounts


class BulkDecisionCreate(SQLModel):
    """One action on many comments. Spans belong to one comment's text, so unknown fields such as
    `spans` are refused (422) rather than silently dropped."""

    model_config = ConfigDict(  # type: ignore[assignment]
        extra="forbid",
        json_schema_extra={"examples": [{"ids": [101, 102, 107], "action": "reject", "label": "spam"}]},
    )

    ids: list[RowId] = Field(min_length=1, max_length=MAX_BULK_IDS)
    action: Action
    label: DecisionLabel | None = None
    note: CleanStr | None = Field(default=None, max_length=2000)


class BulkDecisionError(SQLModel):
    status: int
    detail: Any


class BulkDecisionResult(SQLModel):
    id: int
    decision: DecisionPublic | None = None
    error: BulkDecisionError | None = None


class BulkDecisionResponse(SQLModel):
    results: list[BulkDecisionResult]
    counts: QueueCounts


class HistoryDecision(DecisionPublic):
    #: Who decided: the moderator's name, or null for Akismet feedback.
    moderator_name: str | None


class CommentHistory(SQLModel):
    """The engine's verdict (scores, reasons, model version) and every human decision since, oldest first."""

    comment: CommentPublic
    decisions: list[HistoryDecision]


class ModeratorCreate(SQLModel):
    name: CleanStr = Field(min_length=1, max_length=100)
    role: Role = "moderator"

    @field_validator("name")
    @classmethod
    def _not_blank(cls, name: str) -> str:
        # Surrounding spaces would make "cy" and "cy " two accounts that look the same in every list.
        name = name.strip()
        if not name:
            raise ValueError("must not be blank")
        return name


class ModeratorCreated(ModeratorPublic):
    #: Shown once; only its hash is stored.
    secret: str
