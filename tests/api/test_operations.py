"""/healthz, /readyz, /metrics, structured logs without comment text, OpenAPI with examples."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from api.observability import JsonFormatter
from api.schemas import Comment, Site, utcnow
from api.store.comments import purge_expired_text
from tests.api.conftest import FOUNDING_TEXT, auth, moderate_body, new_site


def test_healthz_and_readyz(client, engine):
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"bundle": engine.version, "database": "ok", "writer": "ok"}


def test_readyz_fails_without_a_bundle(client, app):
    app.state.moderation.engine = None
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["bundle"] == "not loaded"


def test_readyz_fails_when_the_database_is_unreachable(client, app):
    app.state.db.reader.dispose()
    real = app.state.db.ping

    def broken() -> None:
        from sqlalchemy.exc import OperationalError

        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    app.state.db.ping = broken
    try:
        response = client.get("/readyz")
    finally:
        app.state.db.ping = real
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("unreachable")


def test_metrics_count_requests_latency_and_decisions(client, site):
    client.post("/v1/moderate", json=moderate_body(), headers=auth(site))
    client.post("/v1/moderate", json={"comment": {}}, headers=auth(site))
    client.get("/v1/comments/12345", headers=auth(site))
    text = client.get("/metrics").text
    assert 'moderato_requests_total{method="POST",route="/v1/moderate",status="200"} 1.0' in text
    assert 'moderato_requests_total{method="POST",route="/v1/moderate",status="422"} 1.0' in text
    assert 'moderato_requests_total{method="GET",route="/v1/comments/{comment_id}",status="404"} 1.0' in text
    assert 'moderato_request_duration_seconds_bucket{le="0.1",route="/v1/moderate"}' in text
    assert "moderato_decisions_total{" in text
    assert "moderato_writer_batch_jobs_count" in text


def test_logs_leave_comment_text_out(client, site, caplog):
    caplog.set_level(logging.INFO, logger="moderato")
    secret = "Uniquely identifying sentence about my neighbour Brunhilde."
    client.post("/v1/moderate", json=moderate_body(secret + " " + FOUNDING_TEXT), headers=auth(site))
    records = [r for r in caplog.records if r.name.startswith("moderato")]
    assert any(getattr(r, "event", None) == "comment.moderated" for r in records)
    formatted = "\n".join(JsonFormatter().format(r) for r in records)
    assert "Brunhilde" not in formatted
    line = next(JsonFormatter().format(r) for r in records if getattr(r, "event", None) == "comment.moderated")
    data = json.loads(line)
    assert data["site"] == "daily-planet" and data["decision"] and "text" not in data


def test_openapi_documents_the_routes_with_examples(client):
    schema = client.get("/openapi.json").json()
    for path in (
        "/v1/moderate",
        "/v1/moderate/batch",
        "/v1/comments/{comment_id}",
        "/v1/sites/me/policy",
        "/1.1/comment-check",
    ):
        assert path in schema["paths"], path
    assert schema["components"]["schemas"]["ModerateRequest"]["examples"]
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize("bad_days", [10**9, 0, -5])
def test_one_sites_bad_retention_does_not_stop_the_purge_of_the_others(client, db, caplog, bad_days):
    # Written directly into the database (the API refuses these): 10**9 days used to overflow
    # `now - timedelta(...)` and fail the hourly purge of every site; 0 or less would erase all text.
    good = new_site(db, "short-memory", retention_days=30)
    bad = new_site(db, "bad-retention")
    ids = {
        name: client.post("/v1/moderate", json=moderate_body(comment_id="c-old"), headers=auth(s)).json()["id"]
        for name, s in (("good", good), ("bad", bad))
    }
    with db.write_session() as session:
        row = session.get(Site, bad.site.id)
        assert row is not None
        row.retention_days = bad_days
        session.add(row)
        for comment_id in ids.values():
            comment = session.get(Comment, comment_id)
            assert comment is not None
            comment.created_at = utcnow() - timedelta(days=31)
            session.add(comment)
    with caplog.at_level(logging.WARNING), db.write_session() as session:
        assert purge_expired_text(session=session) == 1
    with db.read_session() as session:
        assert session.get(Comment, ids["good"]).text is None  # type: ignore[union-attr]
        assert session.get(Comment, ids["bad"]).text == FOUNDING_TEXT  # type: ignore[union-attr]
    assert any(getattr(r, "event", None) == "retention.invalid" for r in caplog.records)
