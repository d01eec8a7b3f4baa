"""record_decision (the queue issue's route calls it) and feedback_rows (retraining reads them)."""

from __future__ import annotations

import pytest

from api.errors import CommentNotFound, Conflict, InvalidRequest
from api.schemas import Comment, DecisionCreate, SpanIn
from api.store.decisions import decision_history, feedback_rows, record_decision
from tests.api.conftest import FOUNDING_TEXT, PLUG, auth, force_verdict, moderate_body


def _decide(db, site, comment_id, **fields):
    with db.write_session() as session:
        return record_decision(
            session=session, site_id=site.site.id, comment_id=comment_id, decision=DecisionCreate(**fields)
        )


@pytest.fixture
def held(client, db, site):
    force_verdict(db, site, "hold", labels=("spam",))
    return client.post("/v1/moderate", json=moderate_body(), headers=auth(site)).json()


def test_decisions_change_status_supersede_and_keep_history(client, db, site, held):
    rejected = _decide(db, site, held["id"], action="reject", label="spam", note="plug")
    assert (rejected.status, rejected.label, rejected.source) == ("rejected", "spam", "moderator")
    comment = client.get(f"/v1/comments/{held['id']}", headers=auth(site)).json()
    assert comment["status"] == "rejected" and comment["label"] == "spam" and comment["decided_at"]
    assert comment["decision"] == held["decision"], "the engine's verdict is kept"
    _decide(db, site, held["id"], action="reopen")
    assert client.get(f"/v1/comments/{held['id']}", headers=auth(site)).json()["status"] == "pending"
    _decide(db, site, held["id"], action="approve")
    assert client.get(f"/v1/comments/{held['id']}", headers=auth(site)).json()["status"] == "approved"
    with db.read_session() as session:
        history = decision_history(session=session, site_id=site.site.id, comment_id=held["id"])
    assert [(d.action, d.label, d.status) for d in history] == [
        ("reject", "spam", "rejected"),
        ("reopen", None, "pending"),
        ("approve", "ham", "approved"),
    ]


def test_reject_keeps_the_engines_spans_unless_given(db, site, held):
    decision = _decide(db, site, held["id"], action="reject", label="spam")
    with db.read_session() as session:
        comment = session.get(Comment, held["id"])
        engine_spans = [(s["start"], s["end"]) for s in comment.evidence["spam"]["spans"]]
    assert [(s.start, s.end) for s in decision.spans] == engine_spans
    start = FOUNDING_TEXT.index(PLUG)
    own = _decide(
        db, site, held["id"], action="reject", label="spam", spans=[SpanIn(start=start, end=start + len(PLUG))]
    )
    assert [(s.start, s.end) for s in own.spans] == [(start, start + len(PLUG))]


@pytest.mark.parametrize(
    "fields",
    [
        {"action": "approve", "label": "spam"},
        {"action": "reject", "label": "ham"},
        {"action": "reopen", "label": "spam"},
        {"action": "reject", "label": "spam", "spans": [{"start": 0, "end": 10**6}]},
    ],
)
def test_inconsistent_decisions_are_refused(db, site, held, fields):
    with pytest.raises(InvalidRequest):
        _decide(db, site, held["id"], **fields)


def test_an_erased_comment_takes_no_spans_and_yields_no_label(client, db, site, held):
    client.delete(f"/v1/comments/{held['id']}", headers=auth(site))
    with pytest.raises(Conflict, match="erased"):
        _decide(db, site, held["id"], action="reject", label="spam", spans=[SpanIn(start=0, end=3)])
    decision = _decide(db, site, held["id"], action="reject", label="spam")
    assert (decision.status, decision.spans) == ("rejected", []), "the engine's spans are not copied"
    with db.read_session() as session:
        assert list(feedback_rows(session=session)) == []


def test_another_sites_comment_cannot_be_decided(db, site, other_site, held):
    with pytest.raises(CommentNotFound):
        _decide(db, other_site, held["id"], action="reject")


def test_feedback_rows_use_the_latest_decision_and_skip_erased_and_reopened(client, db, site):
    ids = [
        client.post("/v1/moderate", json=moderate_body(f"comment number {i}", f"f-{i}"), headers=auth(site)).json()[
            "id"
        ]
        for i in range(4)
    ]
    _decide(db, site, ids[0], action="reject", label="spam")
    _decide(db, site, ids[0], action="approve")  # changed its mind: ham
    _decide(db, site, ids[1], action="reject", label="toxicity")
    _decide(db, site, ids[2], action="reject", label="spam")
    _decide(db, site, ids[3], action="reject", label="off_topic")
    _decide(db, site, ids[3], action="reopen")
    client.delete(f"/v1/comments/{ids[2]}", headers=auth(site))
    with db.read_session() as session:
        rows = list(feedback_rows(session=session))
    assert [(r.comment_id, r.label, r.text) for r in rows] == [
        (ids[0], "ham", "comment number 0"),
        (ids[1], "toxicity", "comment number 1"),
    ]
    assert all(r.source == "moderator" and r.model_version for r in rows)
