"""Coral's external moderation phase, driven by requests built as coralproject/talk documents them
(EXTERNAL_MODERATION_PHASES.md, WEBHOOKS.md): the JSON Coral sends (pretty-printed, as its
`generateFetchOptions` does), HTML bodies, and `X-Coral-Signature` with one `sha256=` per active secret."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from api.cli import main
from api.main import create_app
from api.routes.coral import html_to_text
from api.schemas import Comment, CoralComment, CoralSecret, utcnow
from api.store.coral import set_coral_secret, signature_values
from api.store.decisions import feedback_rows
from api.store.queue import QueueFilters, queue_page
from tests.api.conftest import (
    FOUNDING_ARTICLE,
    FOUNDING_TEXT,
    HAM_TEXT,
    PLUG,
    auth,
    force_verdict,
    moderate_body,
    row_counts,
)

SECRET = "whsec_coral_phase_secret_1"
STORY = {"id": "245b3856-b0a0-4d2f-a6bb-58c71f18d6a6", "url": "http://localhost:1313/posts/a-story-url/"}
AUTHOR = {"id": "baf4e943-3594-4fcc-b2ba-3e8de7a76352", "role": "COMMENTER"}


def coral_request(
    body: str, *, action: str = "NEW", parent: str | None = None, author: dict[str, str] = AUTHOR
) -> dict[str, Any]:
    """An External Moderation Request exactly as documented."""
    return {
        "action": action,
        "comment": {"body": body, "parentID": parent},
        "author": author,
        "story": STORY,
        "site": {"id": "a4bede88-2d2c-4424-bc18-4322a9e285a6"},
        "tenantID": "19ba5794-7eeb-4d46-a81b-c00c61672501",
        "tenantDomain": "localhost",
    }


def signed(payload: dict[str, Any], *secrets: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload, indent=2).encode()
    signatures = ",".join("sha256=" + hmac.new(s.encode(), body, hashlib.sha256).hexdigest() for s in secrets)
    return body, {
        "Content-Type": "application/json",
        "X-Coral-Signature": signatures,
        "User-Agent": "Coral Moderation/9",
    }


def send(client: TestClient, payload: dict[str, Any], *secrets: str, site: str = "daily-planet"):
    body, headers = signed(payload, *(secrets or (SECRET,)))
    return client.post(f"/v1/integrations/coral/{site}", content=body, headers=headers)


def html(text: str) -> str:
    return "<div>" + text.replace("&", "&amp;").replace("<", "&lt;") + "</div>"


@pytest.fixture
def coral_site(site, db):
    with db.write_session() as session:
        set_coral_secret(session=session, name=site.site.name, secret=SECRET, grace=timedelta(hours=24))
    return site


def stored(db) -> list[tuple[Comment, CoralComment]]:
    with db.read_session() as session:
        query = select(Comment, CoralComment).join(CoralComment, CoralComment.comment_id == Comment.id)
        return list(session.exec(query.order_by(Comment.id)))


def test_publishable_comment_is_204_and_stored_out_of_the_queue(client, coral_site, db):
    force_verdict(db, coral_site, "approve")
    response = send(client, coral_request(html(HAM_TEXT)))
    assert response.status_code == 204 and response.content == b""
    [(comment, coral)] = stored(db)
    assert comment.source == "coral" and comment.text == HAM_TEXT and not comment.queueable
    assert comment.status == "approved" and comment.article_ref == STORY["id"]
    assert (coral.action, coral.story_id, coral.author_id, coral.author_role) == (
        "NEW",
        STORY["id"],
        AUTHOR["id"],
        "COMMENTER",
    )
    assert coral.tenant_id == "19ba5794-7eeb-4d46-a81b-c00c61672501" and coral.revision_of is None


def test_held_and_rejected_comments_answer_coral_moderation_responses(client, coral_site, db):
    force_verdict(db, coral_site, "hold")
    held = send(client, coral_request(html(FOUNDING_TEXT)))
    assert held.status_code == 200
    data = held.json()
    assert data["status"] == "SYSTEM_WITHHELD"
    assert data["actions"] and all(a["actionType"] == "FLAG" for a in data["actions"])
    assert {a["reason"] for a in data["actions"]} <= {"COMMENT_DETECTED_SPAM", "COMMENT_DETECTED_TOXIC"}
    assert set(data) <= {"status", "actions", "tags"}
    force_verdict(db, coral_site, "reject")
    rejected = send(client, coral_request(html("Buy cheap pills at pills.example now!!!")))
    assert rejected.status_code == 200 and rejected.json()["status"] == "REJECTED"
    assert [c.status for c, _ in stored(db)] == ["pending", "rejected"]
    # Coral's moderators decide in Coral: none of these is in Moderato's queue, a /v1/moderate one is.
    assert (
        client.post("/v1/moderate", json=moderate_body(FOUNDING_TEXT, "c-9"), headers=auth(coral_site)).status_code
        == 200
    )
    with db.read_session() as session:
        for status in ("pending", "rejected", "all"):
            page = queue_page(session=session, site_id=coral_site.site.id, filters=QueueFilters(status=status))
            assert all(item.comment_id == "c-9" for item in page.items)
        assert [row.text for row in feedback_rows(session=session)] == []


@pytest.fixture
def default_client(settings, default_engine, db) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=default_engine)) as test_client:
        yield test_client


def test_founding_case_is_withheld_as_spam_with_the_plug(default_client, default_engine, coral_site, db):
    # The site registered the story once (its Coral story id is the article id): off-topic can be scored.
    article = {k: v for k, v in FOUNDING_ARTICLE.items() if k != "id"}
    assert default_client.put(f"/v1/articles/{STORY['id']}", json=article, headers=auth(coral_site)).status_code < 300
    body = "<div>" + FOUNDING_TEXT.replace(PLUG, f"<b>{PLUG}</b>") + "</div>"
    response = send(default_client, coral_request(body))
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["status"] in ("SYSTEM_WITHHELD", "REJECTED")
    [spam] = [a for a in data["actions"] if a["reason"] == "COMMENT_DETECTED_SPAM"]
    assert PLUG in spam["additionalDetails"]
    [(comment, _)] = stored(db)
    assert comment.text == FOUNDING_TEXT
    assert comment.score_spam >= default_engine.policy.thresholds["spam"].hold
    assert comment.score_off_topic is not None
    spans = [(s["start"], s["end"]) for s in comment.evidence["spam"]["spans"]]
    assert any(FOUNDING_TEXT[a:b] == PLUG for a, b in spans)


def test_edit_is_linked_to_its_new_by_story_author_and_parent(client, coral_site, db):
    other = {"id": "someone-else", "role": "COMMENTER"}
    assert send(client, coral_request(html("First version of my comment."))).status_code in (200, 204)
    assert send(client, coral_request(html("A reply to it."), parent="c-parent")).status_code in (200, 204)
    assert send(client, coral_request(html("Another person's comment."), author=other)).status_code in (200, 204)
    edit = coral_request(html("Edited version of my comment."), action="EDIT")
    assert send(client, edit).status_code in (200, 204)
    reply_edit = coral_request(html("An edited reply."), action="EDIT", parent="c-parent")
    assert send(client, reply_edit).status_code in (200, 204)
    orphan = coral_request(html("Edit of something never seen."), action="EDIT", author={"id": "nobody"})
    assert send(client, orphan).status_code in (200, 204)
    rows = stored(db)
    by_text = {c.text: (c, cc) for c, cc in rows}
    assert by_text["Edited version of my comment."][1].revision_of == by_text["First version of my comment."][0].id
    assert by_text["An edited reply."][1].revision_of == by_text["A reply to it."][0].id
    assert by_text["Edit of something never seen."][1].revision_of is None
    assert by_text["Edited version of my comment."][1].action == "EDIT"


def test_bad_or_missing_signature_is_401_and_stores_nothing(client, coral_site, db):
    before = row_counts(db)
    payload = coral_request(html(HAM_TEXT))
    body, headers = signed(payload, SECRET)
    cases = [
        {**headers, "X-Coral-Signature": "sha256=" + "0" * 64},
        {k: v for k, v in headers.items() if k != "X-Coral-Signature"},
        {**headers, "X-Coral-Signature": "sha1=" + headers["X-Coral-Signature"].split("=", 1)[1]},
        {**headers, "X-Coral-Signature": "garbage"},
    ]
    for bad in cases:
        response = client.post("/v1/integrations/coral/daily-planet", content=body, headers=bad)
        assert response.status_code == 401 and "X-Coral-Signature" in response.json()["detail"]
    tampered = client.post("/v1/integrations/coral/daily-planet", content=body + b" ", headers=headers)
    assert tampered.status_code == 401
    assert send(client, payload, "some-other-secret").status_code == 401
    assert send(client, payload, site="no-such-site").status_code == 401
    assert row_counts(db) == before


def test_site_without_a_coral_secret_refuses_everything(client, site, db):
    assert send(client, coral_request(html(HAM_TEXT))).status_code == 401
    assert row_counts(db)["comment"] == 0


def test_rotation_keeps_the_previous_secret_valid_until_it_expires(client, coral_site, db):
    with db.write_session() as session:
        new_secret, until = set_coral_secret(
            session=session, name="daily-planet", secret=None, grace=timedelta(hours=1)
        )
    assert until is not None and new_secret != SECRET
    payload = coral_request(html(HAM_TEXT))
    assert send(client, payload, SECRET, new_secret).status_code in (200, 204)  # Coral signs with both
    assert send(client, payload, SECRET).status_code in (200, 204)
    assert send(client, payload, new_secret).status_code in (200, 204)
    with db.write_session() as session:
        for row in session.exec(select(CoralSecret).where(CoralSecret.secret == SECRET)):
            row.expires_at = utcnow() - timedelta(seconds=1)
            session.add(row)
    assert send(client, payload, SECRET).status_code == 401
    assert send(client, payload, "x", SECRET, new_secret).status_code in (200, 204)


@pytest.mark.parametrize(
    "payload",
    [
        {"action": "DELETE", "comment": {"body": "hi", "parentID": None}, "author": AUTHOR, "story": STORY},
        {"action": "NEW", "comment": {"body": "hi"}, "story": STORY},
        {"action": "NEW", "comment": {"body": "<div> <br> </div>", "parentID": None}, "author": AUTHOR, "story": STORY},
        {"action": "NEW", "comment": {"body": "a\x00b", "parentID": None}, "author": AUTHOR, "story": STORY},
        {"action": "NEW", "comment": {"body": "x" * 20_001, "parentID": None}, "author": AUTHOR, "story": STORY},
        ["not", "an", "object"],
    ],
)
def test_signed_but_unusable_requests_are_422(client, coral_site, db, payload):
    response = send(client, payload)
    assert response.status_code == 422 and response.json()["detail"]
    assert row_counts(db)["comment"] == 0


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"author": {"id": "u1", "role": "A\x00"}}, ["body", "author", "role"]),
        ({"story": {"id": "s1", "url": "https://planet.example/\x00"}}, ["body", "story", "url"]),
        ({"story": {"id": "s\x00"}}, ["body", "story", "id"]),
        ({"comment": {"body": "a\x00b", "parentID": None}}, ["body", "comment", "body"]),
        ({"comment": {"body": "<div> <br> </div>", "parentID": None}}, ["body", "comment", "body"]),
        ({"tenantID": "t\x00"}, ["body", "tenantID"]),
    ],
    ids=["nul-role", "nul-story-url", "nul-story-id", "nul-body", "empty-body", "nul-tenant"],
)
def test_refused_fields_are_named_as_coral_sends_them(client, coral_site, db, changes, loc):
    """Every string Coral sends is checked like /v1/moderate's (NUL is refused: PostgreSQL cannot store it),
    and the 422 names the field in Coral's request, not in Moderato's schema."""
    response = send(client, {**coral_request(html(HAM_TEXT)), **changes})
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [loc]
    assert row_counts(db)["comment"] == 0 and row_counts(db)["coral_comment"] == 0


def test_a_nul_in_the_site_path_is_422(client, coral_site, db):
    response = send(client, coral_request(html(HAM_TEXT)), site="daily-planet%00")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "site"]
    assert row_counts(db)["comment"] == 0


def test_signed_malformed_json_is_422(client, coral_site, db):
    body = b'{"action": "NEW", '
    headers = {"X-Coral-Signature": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}
    response = client.post("/v1/integrations/coral/daily-planet", content=body, headers=headers)
    assert response.status_code == 422
    assert row_counts(db)["comment"] == 0


def test_html_bodies_become_the_text_a_reader_sees():
    assert html_to_text("<div>Hi <b>there</b>,<br>new line &amp; more</div>") == "Hi there,\nnew line & more"
    assert html_to_text('<p>See <a href="https://spam.example/x">this</a></p>') == "See this (https://spam.example/x)"
    assert html_to_text('<a href="https://a.example">https://a.example</a>') == "https://a.example"
    assert html_to_text("plain text, no markup") == "plain text, no markup"
    assert html_to_text("<blockquote>quoted</blockquote>reply") == "quoted\nreply"


def test_signature_header_parsing():
    assert signature_values("sha256=abc,sha256=def") == ["abc", "def"]
    assert signature_values("sha256=abc, v0=zzz ,sha256=def") == ["abc", "def"]
    assert signature_values("") == [] and signature_values("sha256=") == []
    assert len(signature_values(",".join(["sha256=a"] * 100))) == 8


@pytest.fixture
def cli_env(monkeypatch, database_url, tmp_path, tiny_bundle, db):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MODERATO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MODERATO_BUNDLE", str(tiny_bundle))


def test_cli_coral_secret_stores_rotates_and_prints_the_active_secret_last(cli_env, capsys, client, site, db):
    assert main(["site", "coral-secret", "daily-planet", "--secret", SECRET]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == SECRET
    assert main(["site", "coral-secret", "daily-planet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    generated = lines[-1]
    assert generated != SECRET and any("stay valid until" in line for line in lines)
    payload = coral_request(html(HAM_TEXT))
    assert send(client, payload, SECRET).status_code in (200, 204)
    assert send(client, payload, generated).status_code in (200, 204)
    assert main(["site", "coral-secret", "daily-planet", "--secret", "has space"]) == 2
    assert main(["site", "coral-secret", "no-such-site", "--secret", SECRET]) == 2
