"""POST /v1/moderate (+ batch), idempotency, the article registry, GET/DELETE /v1/comments/{id}."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import select

from api.main import create_app
from api.schemas import Article, Comment, utcnow
from api.store.comments import purge_expired_text
from tests.api.conftest import (
    FOUNDING_ARTICLE,
    FOUNDING_TEXT,
    HAM_TEXT,
    PLUG,
    auth,
    force_verdict,
    moderate_body,
    new_site,
    row_counts,
)


def test_founding_case_is_held_with_the_plug_span(default_engine, settings, db, site):
    """The default bundle holds (or rejects) the founding case, pointing at the insurance plug."""
    with TestClient(create_app(settings, engine=default_engine)) as client:
        response = client.post(
            "/v1/moderate",
            json=moderate_body(
                author={"name": "Pat", "email": "pat@example.com", "ip": "203.0.113.7", "user_agent": "UA/1"},
                article=FOUNDING_ARTICLE,
            ),
            headers=auth(site),
        )
        ham = client.post("/v1/moderate", json=moderate_body(HAM_TEXT, "c-2"), headers=auth(site)).json()
    assert response.status_code == 200, response.text
    verdict = response.json()
    assert verdict["decision"] in ("hold", "reject")
    spam = next(r for r in verdict["reasons"] if r["label"] == "spam")
    plug_start = FOUNDING_TEXT.index(PLUG)
    plug_end = plug_start + len(PLUG)
    span = spam["spans"][0]
    overlap = min(span["end"], plug_end) - max(span["start"], plug_start)
    assert overlap >= len(PLUG) / 2 and overlap >= (span["end"] - span["start"]) / 2
    assert span["text"] == FOUNDING_TEXT[span["start"] : span["end"]]
    assert ham["decision"] == "approve"


def test_verdict_has_the_engines_fields_and_the_status(client, site, db, engine):
    response = client.post("/v1/moderate", json=moderate_body(article=FOUNDING_ARTICLE), headers=auth(site))
    assert response.status_code == 200, response.text
    verdict = response.json()
    assert set(verdict) >= {
        "id",
        "comment_id",
        "status",
        "decision",
        "scores",
        "attributes",
        "reasons",
        "model_version",
    }
    assert verdict["status"] == {"approve": "approved", "hold": "pending", "reject": "rejected"}[verdict["decision"]]
    assert verdict["comment_id"] == "c-1"
    assert isinstance(verdict["id"], int)
    assert verdict["model_version"] == engine.version
    assert set(verdict["scores"]) == {"spam", "toxicity", "off_topic"}
    assert all(0.0 <= v <= 1.0 for v in verdict["scores"].values())
    assert {"insult", "threat", "obscene", "identity_attack", "severe_toxicity"} <= set(verdict["attributes"])
    for reason in verdict["reasons"]:
        assert set(reason) == {"label", "score", "spans", "signals"}
        for span in reason["spans"]:
            assert span["text"] == FOUNDING_TEXT[span["start"] : span["end"]]


def test_status_follows_the_decision(client, site, db):
    for i, (decision, status) in enumerate((("approve", "approved"), ("hold", "pending"), ("reject", "rejected"))):
        force_verdict(db, site, decision)
        verdict = client.post("/v1/moderate", json=moderate_body(comment_id=f"s-{i}"), headers=auth(site)).json()
        assert (verdict["decision"], verdict["status"]) == (decision, status)
        if decision != "approve":
            assert verdict["reasons"], "a held or rejected comment says why"


def test_every_call_is_stored_with_its_fields(client, site, db):
    body = moderate_body(
        author={"name": "Pat", "email": "pat@example.com", "url": "https://pat.example", "ip": "203.0.113.7"},
        article=FOUNDING_ARTICLE,
    )
    body["comment"]["parent_id"] = 77
    verdict = client.post("/v1/moderate", json=body, headers=auth(site)).json()
    with db.read_session() as session:
        comment = session.get(Comment, verdict["id"])
        assert comment is not None
        assert comment.text == FOUNDING_TEXT
        assert comment.external_id == "c-1" and comment.parent_id == "77"
        assert (comment.author_name, comment.author_email, comment.author_ip) == (
            "Pat",
            "pat@example.com",
            "203.0.113.7",
        )
        assert comment.article_ref == "nk-outage" and comment.article_id is not None
        assert comment.decision == verdict["decision"] and comment.model_version == verdict["model_version"]
        assert comment.score_spam == verdict["scores"]["spam"]
        assert comment.reasons and comment.created_at is not None
        assert comment.site_id == site.site.id


def test_same_comment_id_returns_the_stored_verdict(client, site, db):
    first = client.post("/v1/moderate", json=moderate_body(), headers=auth(site)).json()
    again = client.post("/v1/moderate", json=moderate_body(HAM_TEXT), headers=auth(site)).json()
    assert again == first
    assert row_counts(db)["comment"] == 1


def test_numeric_comment_ids_are_accepted_as_text(client, site):
    verdict = client.post("/v1/moderate", json=moderate_body(HAM_TEXT, comment_id=12345), headers=auth(site)).json()
    assert verdict["comment_id"] == "12345"


def test_same_comment_id_on_two_sites_is_two_comments(client, site, other_site, db):
    a = client.post("/v1/moderate", json=moderate_body(), headers=auth(site)).json()
    b = client.post("/v1/moderate", json=moderate_body(), headers=auth(other_site)).json()
    assert a["id"] != b["id"]
    assert row_counts(db)["comment"] == 2


def test_comments_without_id_are_each_stored(client, site, db):
    for _ in range(2):
        client.post("/v1/moderate", json=moderate_body(HAM_TEXT, comment_id=None), headers=auth(site))
    assert row_counts(db)["comment"] == 2


def test_article_sent_once_can_be_referred_to_by_id(client, site):
    client.post("/v1/moderate", json=moderate_body(HAM_TEXT, "c-1", article=FOUNDING_ARTICLE), headers=auth(site))
    verdict = client.post(
        "/v1/moderate", json=moderate_body(HAM_TEXT, "c-2", article={"id": "nk-outage"}), headers=auth(site)
    ).json()
    assert verdict["scores"]["off_topic"] is not None


def test_put_article_registers_it(client, site, other_site):
    response = client.put(
        "/v1/articles/a-9",
        json={"title": FOUNDING_ARTICLE["title"], "body": FOUNDING_ARTICLE["body"]},
        headers=auth(site),
    )
    assert response.status_code == 200
    assert response.json()["id"] == "a-9"
    verdict = client.post("/v1/moderate", json=moderate_body(article={"id": "a-9"}), headers=auth(site)).json()
    assert verdict["scores"]["off_topic"] is not None
    assert client.get("/v1/articles/a-9", headers=auth(site)).json()["title"] == FOUNDING_ARTICLE["title"]
    # another site cannot see it, and referring to it there gives no article
    assert client.get("/v1/articles/a-9", headers=auth(other_site)).status_code == 404
    theirs = client.post("/v1/moderate", json=moderate_body(article={"id": "a-9"}), headers=auth(other_site)).json()
    assert theirs["scores"]["off_topic"] is None


def test_put_article_updates_in_place(client, site, db):
    client.put("/v1/articles/a-1", json={"title": "Old"}, headers=auth(site))
    client.put("/v1/articles/a-1", json={"title": "New", "body": "Body"}, headers=auth(site))
    with db.read_session() as session:
        rows = session.exec(select(Article)).all()
    assert [(a.title, a.body) for a in rows] == [("New", "Body")]


def test_unknown_article_id_alone_scores_without_off_topic(client, site):
    verdict = client.post("/v1/moderate", json=moderate_body(article={"id": "never-sent"}), headers=auth(site))
    assert verdict.status_code == 200
    assert verdict.json()["scores"]["off_topic"] is None


def test_get_comment_returns_current_status(client, site):
    verdict = client.post("/v1/moderate", json=moderate_body(article=FOUNDING_ARTICLE), headers=auth(site)).json()
    stored = client.get(f"/v1/comments/{verdict['id']}", headers=auth(site))
    assert stored.status_code == 200
    data = stored.json()
    assert data["status"] == verdict["status"] and data["decision"] == verdict["decision"]
    assert data["text"] == FOUNDING_TEXT and data["article_id"] == "nk-outage"
    assert data["erased"] is False


def test_another_sites_comment_is_not_found(client, site, other_site):
    verdict = client.post("/v1/moderate", json=moderate_body(), headers=auth(site)).json()
    for method in ("get", "delete"):
        response = getattr(client, method)(f"/v1/comments/{verdict['id']}", headers=auth(other_site))
        assert response.status_code == 404
        assert response.json() == {"detail": "Comment not found"}
    assert client.get("/v1/comments/999999", headers=auth(site)).status_code == 404
    assert client.get(f"/v1/comments/{verdict['id']}", headers=auth(site)).json()["text"] == FOUNDING_TEXT


def test_delete_erases_text_and_author_but_keeps_scores(client, site, db):
    body = moderate_body(author={"name": "Pat", "email": "pat@example.com", "ip": "203.0.113.7"})
    verdict = client.post("/v1/moderate", json=body, headers=auth(site)).json()
    response = client.delete(f"/v1/comments/{verdict['id']}", headers=auth(site))
    assert response.status_code == 200
    data = response.json()
    assert data["text"] is None and data["author"] is None and data["erased"] is True
    assert data["scores"] == verdict["scores"] and data["decision"] == verdict["decision"]
    assert all(span["text"] is None for reason in data["reasons"] for span in reason["spans"])
    with db.read_session() as session:
        comment = session.get(Comment, verdict["id"])
        assert comment is not None
        assert comment.text is None and comment.author_email is None and comment.author_ip is None
        assert comment.text_sha256 is None
        assert "Insurance Panda" not in str(comment.reasons) + str(comment.evidence)
    # erasing twice is fine; the id still answers
    assert client.delete(f"/v1/comments/{verdict['id']}", headers=auth(site)).status_code == 200
    assert client.get(f"/v1/comments/{verdict['id']}", headers=auth(site)).json()["erased"] is True


def test_retention_purges_old_text_only(client, db):
    kept = new_site(db, "keeps-forever")
    short = new_site(db, "short-memory", retention_days=30)
    ids = {}
    for name, s in (("kept", kept), ("short", short)):
        ids[name] = client.post("/v1/moderate", json=moderate_body(comment_id="c-old"), headers=auth(s)).json()["id"]
    recent = client.post("/v1/moderate", json=moderate_body(comment_id="c-new"), headers=auth(short)).json()["id"]
    with db.write_session() as session:
        for comment_id in (ids["kept"], ids["short"]):
            comment = session.get(Comment, comment_id)
            assert comment is not None
            comment.created_at = utcnow() - timedelta(days=31)
            session.add(comment)
    with db.write_session() as session:
        assert purge_expired_text(session=session) == 1
    with db.read_session() as session:
        purged = session.get(Comment, ids["short"])
        assert purged is not None and purged.text is None and purged.erased_at is not None
        assert purged.score_spam > 0 and purged.decision
        assert session.get(Comment, ids["kept"]).text == FOUNDING_TEXT  # type: ignore[union-attr]
        assert session.get(Comment, recent).text == FOUNDING_TEXT  # type: ignore[union-attr]


def test_batch_answers_in_order_with_per_item_errors(client, site, db):
    force_verdict(db, site, "approve")
    items = [
        moderate_body(FOUNDING_TEXT, "b-1", article=FOUNDING_ARTICLE),
        {"comment": {"id": "b-2", "text": ""}},
        moderate_body(HAM_TEXT, "b-3"),
        {"comment": {"id": "b-4"}},
        moderate_body(HAM_TEXT, "b-3"),
    ]
    response = client.post("/v1/moderate/batch", json={"items": items}, headers=auth(site))
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 5
    assert results[0]["comment_id"] == "b-1" and results[0]["scores"]["off_topic"] is not None
    assert results[1]["error"]["status"] == 422
    assert results[1]["error"]["detail"][0]["loc"] == ["body", "items", 1, "comment", "text"]
    assert results[2]["comment_id"] == "b-3" and results[2]["decision"] == "approve"
    assert results[3]["error"]["detail"][0]["loc"][-1] == "text"
    assert results[4]["id"] == results[2]["id"]  # the same id within a batch is stored once
    assert row_counts(db)["comment"] == 2


def test_batch_is_limited_to_100_items(client, site, db):
    items = [moderate_body(HAM_TEXT, f"b-{i}") for i in range(101)]
    response = client.post("/v1/moderate/batch", json={"items": items}, headers=auth(site))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "items"]
    assert row_counts(db)["comment"] == 0
    ok = client.post("/v1/moderate/batch", json={"items": items[:100]}, headers=auth(site))
    assert ok.status_code == 200 and len(ok.json()["results"]) == 100


def test_batch_items_see_articles_registered_earlier_in_the_batch(client, site, other_site, db):
    """A batch answers as its items sent one by one, in order, would: a later item naming an article by
    id or URL alone is scored against what earlier items registered or updated (the last sent wins)."""
    url = "https://planet.example/nk"
    on_topic = "Was the North Korea internet outage a cyber attack or a technical failure?"
    items = [
        moderate_body(HAM_TEXT, "b-1", article={**FOUNDING_ARTICLE, "id": "bart"}),
        moderate_body(on_topic, "b-2", article={"id": "bart"}),
        moderate_body(HAM_TEXT, "b-3", article={"id": "bart", "body": "A recipe for basil pesto with garlic."}),
        moderate_body(on_topic, "b-4", article={"id": "bart"}),
        moderate_body(HAM_TEXT, "b-5", article={"id": "bart-2", "url": url, "title": FOUNDING_ARTICLE["title"]}),
        moderate_body(on_topic, "b-6", article={"url": url}),
    ]
    batch = client.post("/v1/moderate/batch", json={"items": items}, headers=auth(site))
    assert batch.status_code == 200, batch.text
    one_by_one = [client.post("/v1/moderate", json=item, headers=auth(other_site)).json() for item in items]
    scores = [result["scores"]["off_topic"] for result in batch.json()["results"]]
    assert None not in scores
    assert scores == [result["scores"]["off_topic"] for result in one_by_one]
    assert scores[3] != scores[1]  # b-3 changed the article's body, and b-4 was scored against the new one
    assert [r["comment_id"] for r in batch.json()["results"]] == [f"b-{i}" for i in range(1, 7)]
    with db.read_session() as session:
        bart = session.exec(select(Article).where(Article.site_id == site.site.id, Article.external_id == "bart")).one()
    assert (bart.title, bart.body) == (FOUNDING_ARTICLE["title"], "A recipe for basil pesto with garlic.")
