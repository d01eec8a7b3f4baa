"""The queue API: moderator auth, filters, sort, keyset pagination, decisions, bulk, history, isolation."""

from __future__ import annotations

import base64
import json

import pytest
from sqlmodel import select

from api.errors import Conflict
from api.schemas import Comment, Moderator, WebhookDelivery
from api.store.decisions import feedback_rows
from api.store.queue import decode_cursor, disable_moderator, encode_cursor
from tests.api.conftest import FOUNDING_TEXT, PLUG, auth, new_site
from tests.api.queue_helpers import bearer, new_moderator, seed_held


@pytest.fixture
def moderator(db, site):
    return new_moderator(db, site)


@pytest.fixture
def held(client, db, site):
    return seed_held(client, db, site)


def test_queue_needs_a_moderator_secret_and_refuses_site_keys(client, site, moderator):
    assert client.get("/v1/queue").status_code == 401
    assert client.get("/v1/queue", headers=bearer("mds_00000000_nope")).status_code == 401
    refused = client.get("/v1/queue", headers=auth(site))
    assert refused.status_code == 403
    assert refused.json()["detail"] == "Site API keys cannot use the moderator queue; use a moderator secret"
    assert client.post("/v1/queue/1/decision", json={"action": "approve"}, headers=auth(site)).status_code == 403
    assert client.get("/v1/queue", headers=bearer(moderator[1])).status_code == 200


def test_queue_lists_pending_by_score_with_counts(client, moderator, held):
    page = client.get("/v1/queue", headers=bearer(moderator[1])).json()
    assert page["counts"] == {"pending": 3, "approved": 0, "rejected": 0}
    assert page["next_cursor"] is None
    scores = [item["scores"] for item in page["items"]]
    maxima = [max(v for v in s.values() if v is not None) for s in scores]
    assert maxima == sorted(maxima, reverse=True)
    founding = next(i for i in page["items"] if i["id"] == held[0]["id"])
    assert founding["text"] == FOUNDING_TEXT
    assert founding["article_title"] == "North Korea's internet goes dark" and founding["article_id"] == "nk-outage"
    assert founding["author"]["name"] == "author0"
    assert any(span["end"] > span["start"] for reason in founding["reasons"] for span in reason["spans"])
    oldest = client.get("/v1/queue?sort=oldest", headers=bearer(moderator[1])).json()
    assert [i["id"] for i in oldest["items"]] == [v["id"] for v in held]


@pytest.mark.parametrize("sort", ["score", "oldest", "newest"])
def test_cursor_pagination_visits_every_comment_once(client, db, site, moderator, sort):
    held = seed_held(client, db, site, [f"comment number {i} about the article" for i in range(7)])
    seen, cursor = [], None
    for _ in range(10):
        url = f"/v1/queue?sort={sort}&limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=bearer(moderator[1])).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(v["id"] for v in held) and len(seen) == len(set(seen))


def test_filters(client, moderator, held):
    def ids(query: str) -> list[int]:
        response = client.get(f"/v1/queue?{query}", headers=bearer(moderator[1]))
        assert response.status_code == 200, response.text
        return sorted(item["id"] for item in response.json()["items"])

    assert ids("article_id=nk-outage") == sorted([held[0]["id"], held[2]["id"]])
    assert ids("author=author1") == [held[1]["id"]]
    assert ids("author=a2@x.example") == [held[2]["id"]]
    assert ids("min_score=0&max_score=1") == sorted(v["id"] for v in held)
    assert ids("since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z") == sorted(v["id"] for v in held)
    assert ids("until=2000-01-01T00:00:00Z") == []
    assert ids("status=approved") == []
    label = held[0]["reasons"][0]["label"]
    assert held[0]["id"] in ids(f"label={label}")
    counts = client.get("/v1/queue?author=author1", headers=bearer(moderator[1])).json()["counts"]
    assert counts == {"pending": 1, "approved": 0, "rejected": 0}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=deleted", "status"),
        ("label=nice", "label"),
        ("sort=random", "sort"),
        ("limit=0", "limit"),
        ("limit=100000", "limit"),
        ("min_score=2", "min_score"),
        ("min_score=0.9&max_score=0.1", "min_score"),
        ("since=yesterday", "since"),
        ("since=2024-01-01T00:00:00", "since"),
        ("cursor=%%%", "cursor"),
        ("cursor=" + encode_cursor("oldest", "2024-01-01T00:00:00+00:00", 3), "cursor"),
        ("cursor=WyJzY29yZSIsIngiLDFd", "cursor"),
        # Timestamps with a timezone that leave the years 1-9999 once converted to UTC
        ("since=0001-01-01T00:00:00%2B23:59", "since"),
        ("until=0001-01-01T00:30:00%2B01:00", "until"),
        ("until=9999-12-31T23:59:59-01:00", "until"),
    ],
)
def test_bad_queue_parameters_are_422_naming_the_field(client, moderator, query, field):
    response = client.get(f"/v1/queue?{query}", headers=bearer(moderator[1]))
    assert response.status_code == 422, response.text
    assert any(field in error["loc"] for error in response.json()["detail"])


def _cursor(parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor(["score", 0.5, 10**30]),  # an id beyond 64 bits
        _cursor(["score", 0.5, 2**63]),
        _cursor(["score", 0.5, 0]),
        _cursor(["score", 0.5, -1]),
        _cursor(["score", 0.5, True]),
        _cursor(["score", 0.5, 5.0]),
        _cursor(["score", 10**310, 5]),  # no float holds it
        _cursor(["score", 1.5, 5]),
        _cursor(["score", float("nan"), 5]),
        _cursor(["score", float("inf"), 5]),
        _cursor(["score", 0.5, 1, 2]),
        _cursor({"a": 1}),
        _cursor("abc"),
        base64.urlsafe_b64encode(b"[" * 300 + b"]" * 300).decode(),
    ],
)
def test_a_tampered_score_cursor_is_422(client, moderator, cursor):
    response = client.get(f"/v1/queue?cursor={cursor}", headers=bearer(moderator[1]))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", "cursor"]


@pytest.mark.parametrize(
    "key",
    [
        "2024-01-01T00:00:00",  # naive: no instant to compare with
        "0001-01-01T00:00:00+05:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-05:00",  # after year 9999 in UTC
        5,
        None,
    ],
)
def test_a_tampered_time_cursor_is_422(client, moderator, key):
    response = client.get(f"/v1/queue?sort=oldest&cursor={_cursor(['oldest', key, 5])}", headers=bearer(moderator[1]))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", "cursor"]


def test_cursor_round_trip():
    assert decode_cursor(encode_cursor("score", 0.73125, 42), "score") == (0.73125, 42)


def test_decisions_change_status_fire_the_webhook_and_undo(client, db, site, moderator, held):
    with db.write_session() as session:
        from api.schemas import Site

        row = session.get(Site, site.site.id)
        row.webhook_url = "http://127.0.0.1:9/hook"
        row.webhook_secret = "whsec_test"
        session.add(row)
    headers = bearer(moderator[1])
    cid = held[0]["id"]
    rejected = client.post(f"/v1/queue/{cid}/decision", json={"action": "reject", "note": "plug"}, headers=headers)
    assert rejected.status_code == 200, rejected.text
    body = rejected.json()
    assert body["status"] == "rejected" and body["moderator_id"] == moderator[0].id
    with db.read_session() as session:
        comment = session.get(Comment, cid)
        engine_spans = [{"start": s["start"], "end": s["end"]} for s in comment.evidence[body["label"]]["spans"]]
        deliveries = session.exec(select(WebhookDelivery).where(WebhookDelivery.comment_id == cid)).all()
    assert body["spans"] == engine_spans, "the engine's spans are kept as the label's evidence"
    assert comment.status == "rejected" and len(deliveries) == 1 and '"status":"rejected"' in deliveries[0].payload
    page = client.get("/v1/queue", headers=headers).json()
    assert cid not in [i["id"] for i in page["items"]]
    assert page["counts"] == {"pending": 2, "approved": 0, "rejected": 1}

    undo = client.post(f"/v1/queue/{cid}/decision", json={"action": "reopen"}, headers=headers)
    assert undo.json()["status"] == "pending"
    assert cid in [i["id"] for i in client.get("/v1/queue", headers=headers).json()["items"]]

    start = FOUNDING_TEXT.index(PLUG)
    own = {"action": "reject", "label": "spam", "spans": [{"start": start, "end": start + len(PLUG)}]}
    assert client.post(f"/v1/queue/{cid}/decision", json=own, headers=headers).json()["spans"] == own["spans"]

    history = client.get(f"/v1/comments/{cid}/history", headers=headers)
    assert history.status_code == 200
    data = history.json()
    assert data["comment"]["decision"] == "hold" and data["comment"]["scores"]["spam"] is not None
    assert [(d["action"], d["status"], d["moderator_name"]) for d in data["decisions"]] == [
        ("reject", "rejected", "ada"),
        ("reopen", "pending", "ada"),
        ("reject", "rejected", "ada"),
    ]
    assert all(d["created_at"] for d in data["decisions"])


def test_any_comment_of_the_site_can_be_decided_not_only_held_ones(client, db, site, moderator):
    approved = client.post(
        "/v1/moderate", json={"comment": {"id": "ok-1", "text": "Thanks, good read."}}, headers=auth(site)
    ).json()
    assert approved["status"] == "approved"
    response = client.post(
        f"/v1/queue/{approved['id']}/decision", json={"action": "reject", "label": "spam"}, headers=bearer(moderator[1])
    )
    assert response.status_code == 200 and response.json()["status"] == "rejected"


@pytest.mark.parametrize(
    "body",
    [
        {"action": "delete"},
        {"action": "approve", "label": "spam"},
        {"action": "reject", "label": "ham"},
        {"action": "reject", "label": "rude"},
        {"action": "reject", "spans": [{"start": 0, "end": 10**6}]},
        {"action": "reject", "spans": [{"start": 5, "end": 2}]},
        {"action": "reject", "spans": [{"start": 3, "end": 3}]},  # empty: marks no text
        {"action": "reject", "note": "x\x00"},
        {},
    ],
)
def test_bad_decisions_are_4xx_and_change_nothing(client, db, moderator, held, body):
    cid = held[0]["id"]
    response = client.post(f"/v1/queue/{cid}/decision", json=body, headers=bearer(moderator[1]))
    assert response.status_code == 422, response.text
    with db.read_session() as session:
        assert session.get(Comment, cid).status == "pending"


def test_unknown_comment_and_bad_ids(client, moderator):
    headers = bearer(moderator[1])
    assert client.post("/v1/queue/999999/decision", json={"action": "approve"}, headers=headers).status_code == 404
    assert client.post("/v1/queue/abc/decision", json={"action": "approve"}, headers=headers).status_code == 422
    assert client.post(f"/v1/queue/{2**70}/decision", json={"action": "approve"}, headers=headers).status_code == 422
    assert client.get("/v1/comments/999999/history", headers=headers).status_code == 404
    bad_json = client.post(
        "/v1/queue/1/decision", content=b"{nope", headers={**headers, "content-type": "application/json"}
    )
    assert bad_json.status_code == 422


def test_bulk_decisions_report_each_id(client, db, site, moderator, held):
    other = new_site(db, "other-blog")
    other_held = seed_held(client, db, other, ["a comment on the other blog"])
    ids = [held[0]["id"], held[1]["id"], other_held[0]["id"], held[0]["id"]]
    response = client.post(
        "/v1/queue/decisions", json={"ids": ids, "action": "reject", "label": "spam"}, headers=bearer(moderator[1])
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["id"] for r in results] == ids[:3], "duplicates are decided once"
    assert [r["decision"]["status"] if r["decision"] else r["error"]["status"] for r in results] == [
        "rejected",
        "rejected",
        404,
    ]
    assert response.json()["counts"] == {"pending": 1, "approved": 0, "rejected": 2}
    headers = bearer(moderator[1])
    assert client.post("/v1/queue/decisions", json={"ids": [], "action": "approve"}, headers=headers).status_code == 422
    too_many = {"ids": list(range(1, 502)), "action": "approve"}
    assert client.post("/v1/queue/decisions", json=too_many, headers=headers).status_code == 422


@pytest.mark.parametrize(
    "ids",
    [
        [2**63],  # beyond a signed 64-bit integer
        [10**30],
        [2**62 + 1],
        [2**53],  # past JavaScript's exact integers (MAX_ROW_ID)
        [0],
        [True],  # would be read as comment 1
        ["5"],
        [5.0],
    ],
)
def test_bulk_ids_must_be_row_ids_and_a_bad_one_decides_nothing(client, db, moderator, held, ids):
    valid = [v["id"] for v in held]
    body = {"ids": [*valid, *ids], "action": "approve"}
    response = client.post("/v1/queue/decisions", json=body, headers=bearer(moderator[1]))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][:2] == ["body", "ids"]
    with db.read_session() as session:
        assert {session.get(Comment, cid).status for cid in valid} == {"pending"}


def test_bulk_decisions_refuse_spans(client, db, moderator, held):
    cid = held[0]["id"]
    body = {"ids": [cid], "action": "reject", "label": "spam", "spans": [{"start": 0, "end": 1}]}
    response = client.post("/v1/queue/decisions", json=body, headers=bearer(moderator[1]))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "spans"]
    with db.read_session() as session:
        assert session.get(Comment, cid).status == "pending"


def test_an_erased_comment_is_decided_without_spans_and_trains_nothing(client, db, site, moderator, held):
    """Erased comments stay in the queue, so they can still be settled, but no span or training
    example can refer to text that is gone."""
    headers = bearer(moderator[1])
    cid, other = held[0]["id"], held[1]["id"]
    assert client.delete(f"/v1/comments/{cid}", headers=auth(site)).status_code == 200
    with_spans = {"action": "reject", "label": "spam", "spans": [{"start": 0, "end": 3}]}
    refused = client.post(f"/v1/queue/{cid}/decision", json=with_spans, headers=headers)
    assert refused.status_code == 409, refused.text
    assert "erased" in refused.json()["detail"]
    with db.read_session() as session:
        assert session.get(Comment, cid).status == "pending"
    rejected = client.post(f"/v1/queue/{cid}/decision", json={"action": "reject", "label": "spam"}, headers=headers)
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert rejected.json()["spans"] == [], "the engine's offsets point into erased text"
    bulk = client.post("/v1/queue/decisions", json={"ids": [cid, other], "action": "reject"}, headers=headers)
    results = bulk.json()["results"]
    assert [(r["id"], r["decision"]["status"]) for r in results] == [(cid, "rejected"), (other, "rejected")]
    assert results[0]["decision"]["spans"] == [] and results[1]["decision"]["spans"] != []
    with db.read_session() as session:
        assert [row.comment_id for row in feedback_rows(session=session)] == [other]


def test_a_moderator_of_one_site_sees_nothing_of_another(client, db, site, moderator, held):
    other = new_site(db, "other-blog")
    _, other_secret = new_moderator(db, other, "bob")
    headers = bearer(other_secret)
    page = client.get("/v1/queue?status=all", headers=headers).json()
    assert page["items"] == [] and page["counts"] == {"pending": 0, "approved": 0, "rejected": 0}
    cid = held[0]["id"]
    assert client.post(f"/v1/queue/{cid}/decision", json={"action": "approve"}, headers=headers).status_code == 404
    assert client.get(f"/v1/comments/{cid}/history", headers=headers).status_code == 404
    with db.read_session() as session:
        assert session.get(Comment, cid).status == "pending"


def test_admins_manage_moderators_of_their_own_site(client, db, site, moderator):
    assert client.get("/v1/moderators", headers=bearer(moderator[1])).status_code == 403
    _, admin_secret = new_moderator(db, site, "root", role="admin")
    admin = bearer(admin_secret)
    created = client.post("/v1/moderators", json={"name": "cy"}, headers=admin)
    assert created.status_code == 201 and created.json()["role"] == "moderator"
    secret = created.json()["secret"]
    assert client.get("/v1/queue", headers=bearer(secret)).status_code == 200
    assert client.post("/v1/moderators", json={"name": "cy"}, headers=admin).status_code == 409
    assert client.post("/v1/moderators", json={"name": "dd", "role": "owner"}, headers=admin).status_code == 422
    names = [m["name"] for m in client.get("/v1/moderators", headers=admin).json()]
    assert names == ["ada", "root", "cy"] and "secret_hash" not in str(names)
    disabled = client.delete(f"/v1/moderators/{created.json()['id']}", headers=admin)
    assert disabled.status_code == 200
    assert client.get("/v1/queue", headers=bearer(secret)).status_code == 401
    other = new_site(db, "other-blog")
    other_mod, _ = new_moderator(db, other, "eve")
    assert client.delete(f"/v1/moderators/{other_mod.id}", headers=admin).status_code == 404


def test_the_moderator_list_shows_who_is_disabled_and_disabling_is_idempotent(client, db, site, moderator):
    ada, _ = moderator
    _, admin_secret = new_moderator(db, site, "root", role="admin")
    admin = bearer(admin_secret)
    before = {m["name"]: m for m in client.get("/v1/moderators", headers=admin).json()}
    assert (before["ada"]["disabled"], before["ada"]["disabled_at"]) == (False, None)
    first = client.delete(f"/v1/moderators/{ada.id}", headers=admin)
    assert first.status_code == 200 and first.json()["disabled"] is True and first.json()["disabled_at"]
    after = {m["name"]: m for m in client.get("/v1/moderators", headers=admin).json()}
    assert after["ada"]["disabled"] is True and after["root"]["disabled"] is False
    again = client.delete(f"/v1/moderators/{ada.id}", headers=admin)
    assert again.status_code == 200 and again.json() == first.json(), "the first disabled_at is kept"


def test_an_admin_cannot_disable_themselves_or_the_last_active_admin(client, db, site):
    root, root_secret = new_moderator(db, site, "root", role="admin")
    second, _ = new_moderator(db, site, "second", role="admin")
    admin = bearer(root_secret)
    own = client.delete(f"/v1/moderators/{root.id}", headers=admin)
    assert own.status_code == 409 and "own account" in own.json()["detail"]
    assert client.get("/v1/moderators", headers=admin).status_code == 200, "still an admin"
    assert client.delete(f"/v1/moderators/{second.id}", headers=admin).status_code == 200
    # An admin disabled by another at the same moment (or still in the auth cache) may no longer
    # disable the last active one.
    with db.write_session() as session, pytest.raises(Conflict, match="last active admin"):
        disable_moderator(session=session, site_id=site.site.id, moderator_id=root.id, acting_id=second.id)
    with db.read_session() as session:
        assert session.get(Moderator, root.id).disabled_at is None


@pytest.mark.parametrize("name", ["   ", "\t\n", ""])
def test_a_blank_moderator_name_is_refused(client, db, site, name):
    _, admin_secret = new_moderator(db, site, "root", role="admin")
    response = client.post("/v1/moderators", json={"name": name}, headers=bearer(admin_secret))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "name"]


def test_a_moderator_name_is_stored_without_surrounding_spaces(client, db, site):
    _, admin_secret = new_moderator(db, site, "root", role="admin")
    created = client.post("/v1/moderators", json={"name": "  cy "}, headers=bearer(admin_secret))
    assert created.status_code == 201 and created.json()["name"] == "cy" and created.json()["disabled"] is False
    assert client.post("/v1/moderators", json={"name": "cy"}, headers=bearer(admin_secret)).status_code == 409
