"""Perspective API compatibility: the unchanged `perspectiveapi` client from PyPI (its blocking client,
whose private httpx client is swapped for one routed to the app) for the attributes it knows, and the
JSON of conversationai/perspectiveapi `2-api/methods.md` for the rest (SPAM, OFF_TOPIC, spans, errors)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from perspective import Attribute
from perspective.blocking import Perspective
from sqlalchemy import text as sql
from sqlmodel import select

from api.main import create_app
from api.schemas import Comment, ModeratorDecision
from api.security import prefix_of
from api.store.decisions import feedback_rows
from api.store.queue import QueueFilters, queue_page
from tests.api.conftest import FOUNDING_ARTICLE, FOUNDING_TEXT, HAM_TEXT, PLUG, auth, force_verdict

ANALYZE = "https://commentanalyzer.googleapis.com/v1alpha1/comments:analyze"
SUGGEST = "https://commentanalyzer.googleapis.com/v1alpha1/comments:suggestscore"
TOXIC_TEXT = "You are a pathetic worthless idiot and everyone here hates you, shut up."


def perspective_client(client: TestClient, key: str) -> Perspective:
    """The PyPI client as published; only its private httpx client is replaced by one that reaches the app."""
    perspective = Perspective(key)
    perspective._Perspective__client = client  # type: ignore[attr-defined]
    return perspective


def analyze(client: TestClient, key: str | None, body: dict[str, Any], **kwargs: Any):
    params = {"key": key} if key else None
    return client.post(ANALYZE, params=params, json=body, **kwargs)


def request_body(text: str = HAM_TEXT, *attributes: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "comment": {"text": text},
        "requestedAttributes": {name: {} for name in attributes or ("TOXICITY",)},
    }
    body.update(extra)
    return body


def comments(db) -> list[Comment]:
    with db.read_session() as session:
        return list(session.exec(select(Comment).order_by(Comment.id)))


# ---------------------------------------------------------------------------------------------
# The real client


def test_the_perspective_client_scores_the_attributes_it_knows(client, site, db):
    perspective = perspective_client(client, site.api_key)
    known = [Attribute.TOXICITY, Attribute.SEVERE_TOXICITY, Attribute.INSULT, Attribute.THREAT]
    toxic = perspective.score(TOXIC_TEXT, known)
    ham = perspective.score(HAM_TEXT, known)
    for score in (toxic, ham):
        for name in ("toxicity", "severe_toxicity", "insult", "threat"):
            value = getattr(score, name)
            assert isinstance(value, float) and 0.0 <= value <= 1.0
        assert score.sexually_explicit is None and score.flirtation is None  # not requested, not answered
    assert toxic.toxicity > ham.toxicity
    assert toxic.insult > ham.insult
    stored = comments(db)
    assert [c.source for c in stored] == ["perspective", "perspective"]
    assert stored[0].text == TOXIC_TEXT and stored[0].queueable


def test_the_perspective_client_default_request_and_bearer_key(client, site):
    perspective = perspective_client(client, site.api_key)
    assert 0.0 <= perspective.score(HAM_TEXT).toxicity <= 1.0
    response = client.post(ANALYZE, json=request_body(), headers=auth(site))
    assert response.status_code == 200


# ---------------------------------------------------------------------------------------------
# Documented JSON


def test_response_shape_languages_client_token_and_thresholds(client, site):
    body = request_body(
        HAM_TEXT,
        "TOXICITY",
        "PROFANITY",
        "IDENTITY_ATTACK",
        "SPAM",
        languages=["en"],
        clientToken="comment-53922",
    )
    body["requestedAttributes"]["PROFANITY"] = {"scoreType": "PROBABILITY", "scoreThreshold": 1.0}
    response = analyze(client, site.api_key, body)
    assert response.status_code == 200
    data = response.json()
    assert data["languages"] == ["en"] and data["clientToken"] == "comment-53922"
    assert set(data["attributeScores"]) == {"TOXICITY", "IDENTITY_ATTACK", "SPAM"}  # PROFANITY under its threshold
    for entry in data["attributeScores"].values():
        assert entry["summaryScore"]["type"] == "PROBABILITY"
        assert 0.0 <= entry["summaryScore"]["value"] <= 1.0
        assert "spanScores" not in entry  # only when spanAnnotations is asked for
    no_languages = analyze(client, site.api_key, request_body()).json()
    assert no_languages["languages"] == ["en"] and "clientToken" not in no_languages


@pytest.fixture
def default_client(settings, default_engine, db) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=default_engine)) as test_client:
        yield test_client


def test_founding_case_spam_with_the_plug_as_span(default_client, default_engine, site):
    body = request_body(FOUNDING_TEXT, "SPAM", "TOXICITY", "OFF_TOPIC", spanAnnotations=True)
    body["context"] = {"entries": [{"text": FOUNDING_ARTICLE["title"]}, {"text": FOUNDING_ARTICLE["body"]}]}
    response = analyze(default_client, site.api_key, body)
    assert response.status_code == 200, response.text
    scores = response.json()["attributeScores"]
    spam = scores["SPAM"]
    assert spam["summaryScore"]["value"] >= default_engine.policy.thresholds["spam"].hold
    assert spam["summaryScore"]["value"] > scores["TOXICITY"]["summaryScore"]["value"]
    spans = [(s["begin"], s["end"]) for s in spam["spanScores"]]
    assert any(FOUNDING_TEXT[b:e] == PLUG for b, e in spans), spans
    assert all(s["score"]["type"] == "PROBABILITY" for s in spam["spanScores"])
    assert "spanScores" not in scores["OFF_TOPIC"]  # like some Perspective attributes, no spans
    assert 0.0 <= scores["OFF_TOPIC"]["summaryScore"]["value"] <= 1.0


def test_off_topic_uses_context_entries_as_the_article(client, site):
    on_topic = "North Korea lost its internet connection; was the outage a cyber attack or a technical failure?"
    article = {"entries": [{"text": FOUNDING_ARTICLE["body"]}]}
    on = analyze(client, site.api_key, request_body(on_topic, "OFF_TOPIC", context=article)).json()
    off = analyze(
        client,
        site.api_key,
        request_body("My favourite pasta recipe uses basil and garlic.", "OFF_TOPIC", context=article),
    ).json()
    assert (
        off["attributeScores"]["OFF_TOPIC"]["summaryScore"]["value"]
        > on["attributeScores"]["OFF_TOPIC"]["summaryScore"]["value"]
    )
    missing = analyze(client, site.api_key, request_body(on_topic, "OFF_TOPIC"))
    assert missing.status_code == 400
    assert "context.entries" in missing.json()["error"]["message"]


def perspective_error(response, error_type: str | None = None) -> dict[str, Any]:
    assert response.status_code in (400, 401), response.text
    error = response.json()["error"]
    assert error["code"] == response.status_code and error["message"]
    assert error["status"] == ("INVALID_ARGUMENT" if response.status_code == 400 else "UNAUTHENTICATED")
    if error_type is not None:
        assert error["details"][0]["errorType"] == error_type
    return error


def test_languages_other_than_english_are_refused_like_perspective(client, site, db):
    response = analyze(client, site.api_key, request_body("Das ist ein Kommentar.", "TOXICITY", languages=["de"]))
    error = perspective_error(response, "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE")
    assert error["message"] == "Attribute TOXICITY does not support request languages: de"
    assert error["details"][0]["languageNotSupportedByAttributeError"]["attribute"] == "TOXICITY"
    ok = analyze(client, site.api_key, request_body(HAM_TEXT, "TOXICITY", languages=["en-US"]))
    assert ok.status_code == 200 and ok.json()["languages"] == ["en-US"]
    assert len(comments(db)) == 1  # the refused request stored nothing


@pytest.mark.parametrize(
    ("body", "error_type", "message"),
    [
        (
            request_body(HAM_TEXT, "TOXICITY", "FLIRTATION"),
            "INVALID_REQUEST",
            "Unknown requested attribute: FLIRTATION",
        ),
        ({"comment": {"text": HAM_TEXT}}, "NO_REQUESTED_ATTRIBUTES", "Missing requested_attributes"),
        ({"comment": {"text": HAM_TEXT}, "requestedAttributes": {}}, "NO_REQUESTED_ATTRIBUTES", None),
        (request_body("   "), "COMMENT_EMPTY", "Comment must be non-empty."),
        (request_body("\u200b\u200d\ufeff \u00ad"), "COMMENT_EMPTY", "Comment must be non-empty."),
        (request_body(spanAnnotations="yes"), None, None),
        (request_body(doNotStore=1), None, None),
        ({"requestedAttributes": {"TOXICITY": {}}}, "COMMENT_EMPTY", None),
        (request_body("x" * 20_001), "COMMENT_TOO_LONG", "Comment text too long."),
        ({"comment": {"text": "<b>hi</b>", "type": "HTML"}, "requestedAttributes": {"TOXICITY": {}}}, None, None),
        ({"comment": {"text": HAM_TEXT}, "requestedAttributes": {"TOXICITY": {"scoreType": "STD_DEV"}}}, None, None),
        ({"comment": {"text": HAM_TEXT}, "requestedAttributes": {"TOXICITY": {"scoreThreshold": 2}}}, None, None),
        ({"comment": {"text": HAM_TEXT}, "requestedAttributes": {"TOXICITY": {"scoreThreshold": True}}}, None, None),
        ({"comment": {"text": 5}, "requestedAttributes": {"TOXICITY": {}}}, None, None),
        ({"comment": {"text": "a\x00b"}, "requestedAttributes": {"TOXICITY": {}}}, None, None),
        ([1, 2], None, None),
    ],
)
def test_bad_requests_get_perspective_errors(client, site, db, body, error_type, message):
    error = perspective_error(analyze(client, site.api_key, body), error_type)
    if message is not None:
        assert error["message"] == message
    assert comments(db) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"clientToken": "\ud800"},
        {"languages": ["en", "\ud800"]},
        {"requestedAttributes": {"\ud800": {}}},
        {"context": {"entries": [{"text": "lone \ud800"}]}},
        {"communityId": "forum\x00"},
    ],
    ids=["surrogate-token", "surrogate-language", "surrogate-attribute", "surrogate-context", "nul-community"],
)
def test_every_string_is_checked_like_the_comment_text(client, site, db, changes):
    """No NUL (PostgreSQL refuses it) and no lone surrogate (the answer echoes clientToken, languages and
    attribute names, and could not be encoded): a Perspective 400, never a 500."""
    raw = json.dumps({**request_body(HAM_TEXT), **changes}).encode()  # \ud800 as JSON sends it
    response = client.post(
        ANALYZE, params={"key": site.api_key}, content=raw, headers={"content-type": "application/json"}
    )
    perspective_error(response, "INVALID_REQUEST")
    assert comments(db) == []


def test_a_key_that_cannot_be_a_site_key_is_401_without_a_query(client, site, db):
    key = "mod_abc\x00defg_" + "x" * 43
    assert prefix_of(key) is None  # never looked up: PostgreSQL would fail on the NUL, not miss
    assert perspective_error(analyze(client, key, request_body()))["details"][0]["errorType"] == "API_KEY_INVALID"
    assert comments(db) == []


def test_body_over_64_kib_is_a_google_error(client, site, db):
    response = analyze(client, site.api_key, request_body("a " * 40_000))
    assert response.status_code == 413
    error = response.json()["error"]
    assert error == {
        "code": 413,
        "message": "Request payload size exceeds the limit: 65536 bytes.",
        "status": "INVALID_ARGUMENT",
        "details": [
            {"@type": "type.googleapis.com/google.commentanalyzer.v1alpha1.Error", "errorType": "INVALID_REQUEST"}
        ],
    }
    assert comments(db) == []


def test_malformed_json_and_bad_keys(client, site, db):
    broken = client.post(
        ANALYZE, params={"key": site.api_key}, content=b'{"comment": ', headers={"content-type": "application/json"}
    )
    perspective_error(broken)
    assert perspective_error(analyze(client, None, request_body()))["details"][0]["errorType"] == "API_KEY_INVALID"
    perspective_error(analyze(client, "mod_00000000_nope", request_body()))
    assert comments(db) == []


def test_do_not_store_keeps_scores_but_never_the_text(client, site, db):
    force_verdict(db, site, "hold")
    body = request_body(FOUNDING_TEXT, "SPAM", "TOXICITY", spanAnnotations=True, doNotStore=True)
    response = analyze(client, site.api_key, body)
    assert response.status_code == 200
    [row] = comments(db)
    assert row.text is None and row.text_sha256 is None and not row.queueable
    assert row.status == "pending" and row.score_spam > 0  # the verdict is kept
    for reason in [*row.reasons, *row.evidence.values()]:
        assert all(span["text"] is None for span in reason["spans"])
    with db.reader.connect() as connection:
        for table in ("comment", "article", "decision"):
            for values in connection.execute(sql(f"SELECT * FROM {table}")):
                assert not any(isinstance(v, str) and "Insurance Panda" in v for v in values)
    with db.read_session() as session:
        assert queue_page(session=session, site_id=site.site.id, filters=QueueFilters()).items == []
    # A stored comment with the same text is queued; the doNotStore one is still not.
    assert analyze(client, site.api_key, request_body(FOUNDING_TEXT)).status_code == 200
    with db.read_session() as session:
        items = queue_page(session=session, site_id=site.site.id, filters=QueueFilters()).items
    assert [item.id for item in items] == [comments(db)[1].id]


def test_suggestscore_records_feedback_for_retraining(client, site, db):
    start = FOUNDING_TEXT.index(PLUG)
    body = {
        "comment": {"text": FOUNDING_TEXT},
        "attributeScores": {
            "SPAM": {
                "summaryScore": {"value": 1.0},
                "spanScores": [{"begin": start, "end": start + len(PLUG), "score": {"value": 1.0}}],
            },
            "TOXICITY": {"summaryScore": {"value": 0}},
        },
        "communityId": "/forum/politics",
        "clientToken": "comment-53922",
    }
    response = client.post(SUGGEST, params={"key": site.api_key}, json=body)
    assert response.status_code == 200 and response.json() == {"clientToken": "comment-53922"}
    ham = {"comment": {"text": HAM_TEXT}, "attributeScores": {"TOXICITY": {"summaryScore": {"value": 0}}}}
    assert client.post(SUGGEST, params={"key": site.api_key}, json=ham).json() == {}
    with db.read_session() as session:
        decisions = list(session.exec(select(ModeratorDecision).order_by(ModeratorDecision.id)))
        rows = {row.text: row for row in feedback_rows(session=session, site_id=site.site.id)}
    assert [(d.source, d.label) for d in decisions] == [("perspective", "spam"), ("perspective", "ham")]
    assert rows[FOUNDING_TEXT].label == "spam" and rows[FOUNDING_TEXT].spans == ((start, start + len(PLUG)),)
    assert rows[HAM_TEXT].label == "ham"
    # The comment analyzed before is the one decided, not a copy.
    assert analyze(client, site.api_key, request_body("Fresh comment about the outage.")).status_code == 200
    again = {
        "comment": {"text": "Fresh comment about the outage."},
        "attributeScores": {"SPAM": {"summaryScore": {"value": 0.9}}},
    }
    assert client.post(SUGGEST, params={"key": site.api_key}, json=again).status_code == 200
    assert len(comments(db)) == 3


def test_suggestscore_bad_input(client, site, db):
    bad = [
        {"comment": {"text": HAM_TEXT}},
        {"comment": {"text": HAM_TEXT}, "attributeScores": {"NOPE": {"summaryScore": {"value": 1}}}},
        {"comment": {"text": HAM_TEXT}, "attributeScores": {"SPAM": {"summaryScore": {"value": 3}}}},
        {"comment": {"text": HAM_TEXT}, "attributeScores": {"SPAM": {"summaryScore": {"value": True}}}},
        {
            "comment": {"text": HAM_TEXT},
            "attributeScores": {"SPAM": {"spanScores": [{"begin": 0, "end": 999, "score": {"value": 1}}]}},
        },
        {  # an empty span is no evidence: refused like the queue's own decisions refuse it
            "comment": {"text": HAM_TEXT},
            "attributeScores": {"SPAM": {"spanScores": [{"begin": 4, "end": 4, "score": {"value": 1}}]}},
        },
    ]
    for body in bad:
        perspective_error(client.post(SUGGEST, params={"key": site.api_key}, json=body))
    assert perspective_error(client.post(SUGGEST, json=bad[0]))["code"] == 401
    assert comments(db) == []
