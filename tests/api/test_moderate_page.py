"""The /moderate page: login and session cookie, CSRF, escaping, highlights, decisions, isolation."""

from __future__ import annotations

import re

import pytest

from api.moderator_sessions import session_moderator_id, verify_session
from api.routes.moderation_ui import Segment, highlight_segments
from api.schemas import Comment, ReasonPublic, SpanPublic, utcnow
from tests.api.conftest import PLUG, auth, new_site
from tests.api.queue_helpers import HOSTILE_TEXT, bearer, new_moderator, seed_held


def login(client, secret: str):
    form = client.get("/moderate/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    return client.post("/moderate/login", data={"secret": secret, "csrf": csrf}, follow_redirects=False)


def page_csrf(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)">', html).group(1)


@pytest.fixture
def moderator(db, site):
    return new_moderator(db, site)


@pytest.fixture
def held(client, db, site):
    return seed_held(client, db, site)


def test_the_page_asks_for_a_login_and_sets_a_strict_httponly_cookie(client, moderator):
    assert client.get("/moderate", follow_redirects=False).headers["location"] == "/moderate/login"
    wrong = login(client, "mds_00000000_wrong")
    assert wrong.status_code == 401 and "not valid" in wrong.text
    no_csrf = client.post("/moderate/login", data={"secret": moderator[1]}, follow_redirects=False)
    assert no_csrf.status_code == 403
    response = login(client, moderator[1])
    assert response.status_code == 303 and response.headers["location"] == "/moderate"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("moderato_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/moderate" in cookie
    page = client.get("/moderate")
    assert page.status_code == 200 and "ada (moderator)" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_a_site_key_or_a_tampered_cookie_does_not_log_in(client, site, moderator):
    assert login(client, site.api_key).status_code == 401
    login(client, moderator[1])
    token = client.cookies.get("moderato_session")
    client.cookies.clear()
    assert client.get("/moderate", headers={"Cookie": f"moderato_session={token}"}).status_code == 200
    forged = token[:-2] + ("00" if not token.endswith("00") else "11")
    other_id = "2" + token[token.index(".") :]
    for bad in (forged, other_id, "1.99999999999.x.y", "garbage"):
        response = client.get("/moderate", headers={"Cookie": f"moderato_session={bad}"}, follow_redirects=False)
        assert response.status_code == 303, bad


def test_hostile_text_is_escaped_and_evidence_highlighted(client, moderator, held):
    login(client, moderator[1])
    html = client.get("/moderate").text
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    assert re.search(r'<mark class="evidence ev-\w+"', html)
    assert html.count('<article class="comment"') == 3
    assert "North Korea&#39;s internet goes dark" in html and "author0" in html
    assert '<strong data-count="pending">3</strong>' in html
    assert "<meter" in html


def test_decisions_need_the_csrf_token(client, db, moderator, held):
    login(client, moderator[1])
    csrf = page_csrf(client.get("/moderate").text)
    cid = held[0]["id"]
    forged = client.post("/moderate/decide", data={"ids": cid, "action": "approve"}, follow_redirects=False)
    assert forged.status_code == 403
    wrong = client.post("/moderate/decide", data={"ids": cid, "action": "approve", "csrf": "x" * 64})
    assert wrong.status_code == 403
    with db.read_session() as session:
        assert session.get(Comment, cid).status == "pending"
    done = client.post(
        "/moderate/decide",
        data={"ids": cid, "action": "spam", "csrf": csrf, "next": "/moderate?status=pending&sort=oldest"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/moderate?status=pending&sort=oldest"
    with db.read_session() as session:
        comment = session.get(Comment, cid)
        assert (comment.status, comment.label) == ("rejected", "spam")
    evil = client.post(
        "/moderate/decide",
        data={"ids": cid, "action": "reopen", "csrf": csrf, "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert evil.headers["location"] == "/moderate"


def test_fetch_decisions_answer_json_and_bulk_works(client, moderator, held):
    login(client, moderator[1])
    csrf = page_csrf(client.get("/moderate").text)
    headers = {"Accept": "application/json", "X-CSRF-Token": csrf}
    ids = [held[0]["id"], held[1]["id"]]
    response = client.post("/moderate/decide", data={"ids": ids, "action": "approve"}, headers=headers)
    assert response.status_code == 200
    data = response.json()
    assert [r["status"] for r in data["results"]] == ["approved", "approved"]
    assert data["counts"] == {"pending": 1, "approved": 2, "rejected": 0}
    undo = client.post("/moderate/decide", data={"ids": ids[0], "action": "reopen"}, headers=headers).json()
    assert undo["results"][0]["status"] == "pending" and undo["counts"]["pending"] == 2
    bad = client.post("/moderate/decide", data={"ids": ids[0], "action": "burn"}, headers=headers)
    assert bad.status_code == 422
    assert client.post("/moderate/decide", data={"ids": "x", "action": "approve"}, headers=headers).status_code == 422
    assert client.get("/moderate?status=approved").text.count('<article class="comment"') == 1
    assert client.get("/moderate?min_score=7").status_code == 422


@pytest.mark.parametrize("bad_id", ["1000000000000000000000000000000", str(2**63), "0", "-4"])
def test_a_form_with_an_id_out_of_range_is_422_and_decides_nothing(client, db, moderator, held, bad_id):
    login(client, moderator[1])
    csrf = page_csrf(client.get("/moderate").text)
    cid = held[0]["id"]
    response = client.post(
        "/moderate/decide", data={"ids": [cid, bad_id], "action": "approve", "csrf": csrf}, follow_redirects=False
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][:2] == ["body", "ids"]
    with db.read_session() as session:
        assert session.get(Comment, cid).status == "pending"


@pytest.mark.parametrize(
    ("query", "field"),
    [("since=0001-01-01T00:00:00%2B23:59", "since"), ("until=0001-01-01T00:30:00%2B01:00", "until")],
)
def test_a_timestamp_outside_the_utc_range_is_422(client, moderator, query, field):
    login(client, moderator[1])
    response = client.get(f"/moderate?{query}")
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", field]


def test_an_erased_comment_can_be_settled_from_the_page(client, db, site, moderator, held):
    cid = held[0]["id"]
    assert client.delete(f"/v1/comments/{cid}", headers=auth(site)).status_code == 200
    login(client, moderator[1])
    csrf = page_csrf(client.get("/moderate").text)
    headers = {"Accept": "application/json", "X-CSRF-Token": csrf}
    response = client.post("/moderate/decide", data={"ids": cid, "action": "spam"}, headers=headers)
    assert response.json()["results"] == [{"id": cid, "status": "rejected", "label": "spam"}]
    history = client.get(f"/v1/comments/{cid}/history", headers={"Authorization": f"Bearer {moderator[1]}"}).json()
    assert history["decisions"][-1]["spans"] == [], "no evidence offsets into erased text"


def test_a_moderator_of_another_site_sees_and_decides_nothing_here(client, db, moderator, held):
    other = new_site(db, "other-blog")
    _, other_secret = new_moderator(db, other, "bob")
    login(client, other_secret)
    html = client.get("/moderate?status=all").text
    assert '<article class="comment"' not in html and "author0" not in html
    csrf = page_csrf(html)
    headers = {"Accept": "application/json", "X-CSRF-Token": csrf}
    response = client.post("/moderate/decide", data={"ids": held[0]["id"], "action": "approve"}, headers=headers)
    assert response.json()["results"][0]["error"]["status"] == 404
    data = {"ids": held[0]["id"], "expect": "approved", "action": "approve"}  # a 409 would tell its status
    assert client.post("/moderate/decide", data=data, headers=headers).json()["results"][0]["error"]["status"] == 404
    with db.read_session() as session:
        assert session.get(Comment, held[0]["id"]).status == "pending"


def test_logout_ends_the_session_and_every_copy_of_its_cookie(client, moderator):
    login(client, moderator[1])
    copied = client.cookies.get("moderato_session")
    client.cookies.clear()
    login(client, moderator[1])  # the same moderator on a second device
    other_device = client.cookies.get("moderato_session")
    assert copied != other_device
    csrf = page_csrf(client.get("/moderate").text)
    assert client.post("/moderate/logout", data={"csrf": "wrong"}, follow_redirects=False).status_code == 403
    client.post("/moderate/logout", data={"csrf": csrf}, follow_redirects=False)
    assert client.get("/moderate", follow_redirects=False).status_code == 303
    client.cookies.clear()
    for token in (copied, other_device):
        response = client.get("/moderate", headers={"Cookie": f"moderato_session={token}"}, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/moderate/login"
    assert login(client, moderator[1]).status_code == 303  # and logging in again works
    assert client.get("/moderate", follow_redirects=False).status_code == 200


def test_a_comment_page_shows_the_verdict_and_every_decision(client, db, moderator, held):
    """The queue links each comment to its own page: the card (evidence highlighted, hostile text
    inert), the engine's verdict, then each decision with who made it, oldest first."""
    plug, hostile = held[0]["id"], held[2]["id"]
    assert client.get(f"/moderate/comments/{plug}", follow_redirects=False).status_code == 303
    login(client, moderator[1])
    queue = client.get("/moderate").text
    assert f'href="/moderate/comments/{plug}"' in queue
    csrf = page_csrf(queue)
    here = f"/moderate/comments/{plug}"
    for action in ("approve", "reopen", "spam"):
        response = client.post(
            "/moderate/decide", data={"ids": plug, "action": action, "csrf": csrf, "next": here}, follow_redirects=False
        )
        assert response.status_code == 303 and response.headers["location"] == here  # back to the comment
    page = client.get(here)
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    assert '<mark class="evidence ev-spam"' in html and "Insurance Panda" in html
    rows = re.findall(r'<tr class="(engine|decision)">(.*?)</tr>', html, re.S)
    cells = [re.findall(r"<td>(.*?)</td>", body, re.S) for _, body in rows]
    assert [kind for kind, _ in rows] == ["engine", "decision", "decision", "decision"]
    assert cells[0][1] == f"engine {held[0]['model_version']}" and cells[0][3] == "hold"
    assert [(c[1], c[2], c[3], c[4]) for c in cells[1:]] == [
        ("ada", "approve", "approved", "ham"),
        ("ada", "reopen", "pending", "–"),
        ("ada", "reject", "rejected", "spam"),
    ]
    hostile_page = client.get(f"/moderate/comments/{hostile}").text
    assert "<script>alert" not in hostile_page and "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile_page


def test_a_comment_page_of_another_site_or_no_comment_is_not_found(client, db, moderator, held):
    other = new_site(db, "other-blog")
    _, other_secret = new_moderator(db, other, "bob")
    login(client, other_secret)
    for comment_id in (held[0]["id"], 999_999):
        response = client.get(f"/moderate/comments/{comment_id}")
        assert response.status_code == 404 and "author0" not in response.text and "Insurance" not in response.text
        assert f"No comment {comment_id} on this site." in response.text
    assert client.get("/moderate/comments/0").status_code == 422


def test_static_files_are_served_and_nothing_else():
    from api.routes.moderation_ui import static_file

    assert static_file("moderate.js").status_code == 200
    assert static_file("moderate.css").media_type == "text/css"
    assert static_file("..%2Fconfig.py").status_code == 404
    assert static_file("nope.js").status_code == 404


def _reason(label: str, *spans: tuple[int, int]) -> ReasonPublic:
    return ReasonPublic(
        label=label, score=0.9, signals=[], spans=[SpanPublic(start=a, end=b, text=None) for a, b in spans]
    )


def test_highlight_segments_cover_the_text_exactly_once():
    text = "Hello. " + PLUG + " Bye."
    start = text.index(PLUG)
    segments = highlight_segments(
        text, [_reason("spam", (start, start + len(PLUG)), (999, 1005)), _reason("toxicity", (start + 3, start + 9))]
    )
    assert "".join(s.text for s in segments) == text
    assert segments == [Segment("Hello. "), Segment(PLUG, "spam"), Segment(" Bye.")]
    assert highlight_segments("", []) == []
    partly = highlight_segments("abcdef", [_reason("spam", (0, 3)), _reason("toxicity", (2, 5))])
    assert partly == [Segment("abc", "spam"), Segment("de", "toxicity"), Segment("f")]


def test_hostile_text_highlight_is_plain_text():
    segments = highlight_segments(HOSTILE_TEXT, [_reason("spam", (0, len(HOSTILE_TEXT)))])
    assert segments == [Segment(HOSTILE_TEXT, "spam")]


def test_non_ascii_tokens_are_refused_not_a_500(client, db, moderator, held):
    """A CSRF token or cookie can carry any character (a header is Latin-1, a form is UTF-8); a
    non-ASCII one is simply wrong (`hmac.compare_digest` used to raise TypeError on it: a 500)."""
    login(client, moderator[1])
    cid = held[0]["id"]
    assert client.post("/moderate/decide", data={"ids": cid, "action": "approve", "csrf": "é"}).status_code == 403
    headers = {"Accept": "application/json", "X-CSRF-Token": "\u00e9t\u00e9".encode("latin-1")}
    assert client.post("/moderate/decide", data={"ids": cid, "action": "approve"}, headers=headers).status_code == 403
    assert client.post("/moderate/logout", data={"csrf": "ü"}, follow_redirects=False).status_code == 403
    token = client.cookies.get("moderato_session")
    client.cookies.clear()
    forged = token.rsplit(".", 1)[0] + ".é"
    cookie = f"moderato_session={forged}".encode()
    response = client.get("/moderate", headers={"Cookie": cookie}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/moderate/login"
    with db.read_session() as session:
        assert session.get(Comment, cid).status == "pending"
    # A raw cookie byte 0xB2 arrives as "²", which str.isdigit() accepts and int() refuses.
    for claimed in ("1.\u00b2.x.y", "\u00b9.1.x.y", "1." + "9" * 5000 + ".x.y"):
        assert session_moderator_id(claimed) is None
        assert not verify_session(claimed, moderator[0], now=utcnow())


def test_the_filter_bar_with_fields_left_empty_filters_nothing(client, moderator, held):
    """The filter bar is a GET form: "any" label, no minimum score, no article or author arrive as
    empty values, which mean no filter (they were a 422 for every press of Filter)."""
    login(client, moderator[1])
    page = client.get("/moderate?status=pending&label=&sort=score&min_score=&article_id=&author=")
    assert page.status_code == 200 and page.text.count('<article class="comment"') == 3
    narrowed = client.get("/moderate?status=pending&label=&sort=oldest&min_score=&article_id=other-article&author=")
    assert narrowed.status_code == 200 and narrowed.text.count('<article class="comment"') == 1
    for query, field in (("min_score=7&label=", "min_score"), ("label=burn&author=", "label")):
        response = client.get(f"/moderate?{query}")
        assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", field]


def test_a_decision_from_a_stale_page_is_refused_with_the_status_now(client, db, site, moderator, held):
    """Each card posts the status it showed (`expect`); a comment decided since (another moderator,
    another tab, a second keystroke) is not decided again: 409 with its status now, nothing recorded."""
    login(client, moderator[1])
    html = client.get("/moderate").text
    csrf = page_csrf(html)
    cid, other = held[0]["id"], held[1]["id"]
    assert re.search(rf'name="ids" value="{cid}">\s*<input type="hidden" name="expect" value="pending">', html)
    _, colleague = new_moderator(db, site, "bob")
    decided = client.post(
        f"/v1/queue/{cid}/decision", json={"action": "reject", "label": "spam"}, headers=bearer(colleague)
    )
    assert decided.status_code == 200
    headers = {"Accept": "application/json", "X-CSRF-Token": csrf}
    data = {"ids": [cid, other], "expect": ["pending", "pending"], "action": "approve"}
    response = client.post("/moderate/decide", data=data, headers=headers)
    assert response.status_code == 200
    stale, fresh = response.json()["results"]
    assert stale["error"]["status"] == 409 and "rejected now, not pending" in stale["error"]["detail"]
    assert stale["current"] == {"status": "rejected", "label": "spam"}
    assert fresh == {"id": other, "status": "approved", "label": "ham"}
    plain = client.post(
        "/moderate/decide",
        data={"ids": cid, "expect": "pending", "action": "approve", "csrf": csrf},
        follow_redirects=False,
    )
    assert plain.status_code == 409 and plain.json()["results"][0]["current"]["status"] == "rejected"
    history = client.get(f"/v1/comments/{cid}/history", headers=bearer(colleague)).json()["decisions"]
    assert [d["action"] for d in history] == ["reject"]
    again = client.post(
        "/moderate/decide", data={"ids": cid, "expect": "rejected", "action": "approve"}, headers=headers
    )
    assert again.json()["results"] == [{"id": cid, "status": "approved", "label": "ham"}]
    mismatched = client.post(
        "/moderate/decide", data={"ids": [cid, other], "expect": "approved", "action": "reopen"}, headers=headers
    )
    assert mismatched.status_code == 422 and mismatched.json()["detail"][0]["loc"] == ["body", "expect"]
    unknown = client.post("/moderate/decide", data={"ids": cid, "expect": "gone", "action": "reopen"}, headers=headers)
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"][:2] == ["body", "expect"]


def test_the_bulk_form_without_javascript_refuses_comments_decided_since_shown(client, db, site, moderator, held):
    """A ticked box cannot carry its status, so every card sends "id:status" as `shown` with the bulk
    form: what a browser without JavaScript posts is checked like the script's `expect`."""
    login(client, moderator[1])
    html = client.get("/moderate").text
    csrf = page_csrf(html)
    shown = re.findall(r'<input type="hidden" name="shown" value="([^"]+)" form="bulk">', html)
    cid, other, third = (h["id"] for h in held)
    assert sorted(shown) == sorted(f"{i}:pending" for i in (cid, other, third))
    _, colleague = new_moderator(db, site, "bob")
    decided = client.post(
        f"/v1/queue/{cid}/decision", json={"action": "reject", "label": "spam"}, headers=bearer(colleague)
    )
    assert decided.status_code == 200
    form = {"csrf": csrf, "next": "/moderate", "action": "approve", "ids": [cid, other], "shown": shown}
    response = client.post("/moderate/decide", data=form, follow_redirects=False)
    assert response.status_code == 409
    stale, fresh = response.json()["results"]
    assert stale["current"] == {"status": "rejected", "label": "spam"}
    assert fresh == {"id": other, "status": "approved", "label": "ham"}
    page = client.post("/moderate/decide", data=form, headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 409 and "text/html" in page.headers["content-type"]
    assert f'<a href="/moderate/comments/{cid}">' in page.text and "rejected now, not pending" in page.text
    assert '<a href="/moderate">Back to the queue</a>' in page.text
    form = {**form, "ids": [third], "shown": [f"{third}:pending"]}
    assert client.post("/moderate/decide", data=form, follow_redirects=False).status_code == 303
    for bad in (f"{third}", f"{third}:gone", "0:pending", "x:pending"):
        response = client.post("/moderate/decide", data={**form, "shown": [bad]}, follow_redirects=False)
        assert response.status_code == 422 and response.json()["detail"][0]["loc"][:2] == ["body", "shown"], bad
