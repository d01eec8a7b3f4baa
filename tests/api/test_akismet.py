"""Akismet compatibility, tested with the unchanged `akismet` package from PyPI: its httpx client gets
a transport that routes rest.akismet.com to Moderato running on a local port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import akismet
import httpx
import pytest
import uvicorn
from sqlmodel import select

from api.main import create_app
from api.schemas import Comment, ModeratorDecision
from api.store.decisions import feedback_rows
from tests.api.conftest import FOUNDING_TEXT, HAM_TEXT, force_verdict

BLOG = "https://planet.example"


class RouteToLocal(httpx.HTTPTransport):
    """Send what the client addresses to rest.akismet.com to the local server instead."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port
        self.hosts: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.hosts.append(request.url.host)
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self.port)
        return super().handle_request(request)


@contextmanager
def serving(app) -> Iterator[int]:
    """Run `app` with uvicorn on a free local port (in a thread) and yield the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def port(settings, engine, db) -> Iterator[int]:
    with serving(create_app(settings, engine=engine)) as bound:
        yield bound


_OPEN: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_http_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def http_client(port: int) -> httpx.Client:
    http = httpx.Client(transport=RouteToLocal(port), headers={"User-Agent": akismet.USER_AGENT}, timeout=10)
    _OPEN.append(http)
    return http


def client_for(port: int, key: str) -> akismet.SyncClient:
    """The PyPI client, validated as its docs recommend, talking to Moderato."""
    return akismet.SyncClient.validated_client(config=akismet.Config(key=key, url=BLOG), http_client=http_client(port))


COMMENT = {
    "comment_type": "comment",
    "comment_author": "Pat",
    "comment_author_email": "pat@example.com",
    "comment_author_url": "https://pat.example",
    "user_agent": "Mozilla/5.0",
    "referrer": "https://planet.example/story",
    "permalink": "https://planet.example/story",
}


def test_verify_key(port, site):
    assert client_for(port, site.api_key).verify_key() is True
    with pytest.raises(akismet.APIKeyError):
        client_for(port, "mod_00000000_" + "x" * 43)


@pytest.mark.parametrize(
    ("forced", "expected"),
    [
        ("approve", akismet.CheckResponse.HAM),
        ("hold", akismet.CheckResponse.SPAM),
        ("reject", akismet.CheckResponse.DISCARD),
    ],
)
def test_comment_check_maps_verdicts(port, db, site, forced, expected):
    force_verdict(db, site, forced, labels=("spam",) if forced != "approve" else ("spam", "toxicity", "off_topic"))
    client = client_for(port, site.api_key)
    assert client.comment_check("203.0.113.7", comment_content=FOUNDING_TEXT, **COMMENT) == expected
    assert set(client._http_client._transport.hosts) == {"rest.akismet.com"}  # type: ignore[attr-defined]


def test_comment_check_stores_the_comment_with_akismet_fields(port, db, site):
    client_for(port, site.api_key).comment_check("203.0.113.7", comment_content=HAM_TEXT, **COMMENT)
    with db.read_session() as session:
        [comment] = session.exec(select(Comment)).all()
    assert comment.source == "akismet" and comment.text == HAM_TEXT
    assert (comment.author_name, comment.author_email, comment.author_ip) == ("Pat", "pat@example.com", "203.0.113.7")
    assert comment.author_user_agent == "Mozilla/5.0"


def test_founding_case_is_spam_for_the_akismet_client(default_engine, settings, db, site):
    with serving(create_app(settings, engine=default_engine)) as bound:
        client = client_for(bound, site.api_key)
        verdict = client.comment_check("203.0.113.7", comment_content=FOUNDING_TEXT, **COMMENT)
        assert verdict in (akismet.CheckResponse.SPAM, akismet.CheckResponse.DISCARD)
        assert client.comment_check("203.0.113.8", comment_content=HAM_TEXT, **COMMENT) == akismet.CheckResponse.HAM


def test_submit_spam_and_ham_record_feedback(port, db, site):
    client = client_for(port, site.api_key)
    client.comment_check("203.0.113.7", comment_content=FOUNDING_TEXT, **COMMENT)
    assert client.submit_spam("203.0.113.7", comment_content=FOUNDING_TEXT, **COMMENT) is True
    assert client.submit_ham("203.0.113.9", comment_content="A comment the checker never saw.", **COMMENT) is True
    with db.read_session() as session:
        comments = session.exec(select(Comment).order_by(Comment.id)).all()
        decisions = session.exec(select(ModeratorDecision).order_by(ModeratorDecision.id)).all()
        rows = list(feedback_rows(session=session))
    assert len(comments) == 2, "submit-spam labels the checked comment instead of storing it again"
    assert [(d.comment_id, d.source, d.action, d.label) for d in decisions] == [
        (comments[0].id, "akismet", "reject", "spam"),
        (comments[1].id, "akismet", "approve", "ham"),
    ]
    assert [c.status for c in comments] == ["rejected", "approved"]
    assert {(r.text, r.label) for r in rows} == {(FOUNDING_TEXT, "spam"), ("A comment the checker never saw.", "ham")}


def test_invalid_key_makes_the_client_raise(port, site):
    client = akismet.SyncClient(
        config=akismet.Config(key="mod_00000000_" + "y" * 43, url=BLOG),
        http_client=http_client(port),
    )
    with pytest.raises(akismet.APIKeyError):
        client.comment_check("203.0.113.7", comment_content=HAM_TEXT)


def test_errors_explain_themselves_in_the_debug_header(port, site, db):
    http = http_client(port)
    url = "https://rest.akismet.com/1.1/comment-check"
    missing_ip = http.post(url, data={"api_key": site.api_key, "blog": BLOG, "comment_content": "hi"})
    assert missing_ip.status_code == 400
    assert missing_ip.headers["X-akismet-debug-help"] == "Missing required field: user_ip."
    bad_key = http.post(url, data={"api_key": "nope", "blog": BLOG, "user_ip": "1.2.3.4", "comment_content": "hi"})
    assert bad_key.text == "invalid" and "X-akismet-debug-help" in bad_key.headers
    too_long = http.post(
        url, data={"api_key": site.api_key, "blog": BLOG, "user_ip": "1.2.3.4", "comment_content": "x" * 20_001}
    )
    assert too_long.status_code == 400 and "20000" in too_long.headers["X-akismet-debug-help"]
    empty = http.post(url, data={"api_key": site.api_key, "blog": BLOG, "user_ip": "1.2.3.4", "comment_content": ""})
    assert empty.text == "false"
    invisible = http.post(
        url, data={"api_key": site.api_key, "blog": BLOG, "user_ip": "1.2.3.4", "comment_content": "\u200b\ufeff"}
    )
    assert invisible.text == "false" and "Empty" in invisible.headers["X-akismet-debug-help"]
    nul = http.post(
        url, data={"api_key": site.api_key, "blog": BLOG, "user_ip": "1.2.3.4", "comment_content": "a\x00b"}
    )
    assert nul.status_code == 400
    spam = http.post(
        url, data={"api_key": site.api_key, "blog": BLOG, "user_ip": "1.2.3.4", "comment_content": "hello"}
    )
    assert spam.text in ("true", "false") and spam.headers["X-akismet-guid"].isdigit()
    huge = http.post(
        url, data={"api_key": site.api_key, "blog": BLOG, "user_ip": "1.2.3.4", "comment_content": "z" * 70_000}
    )
    assert huge.status_code == 413 and huge.headers["content-type"].startswith("text/plain")  # as Akismet errors are
    assert "too large" in huge.text
    with db.read_session() as session:
        assert len(session.exec(select(Comment)).all()) == 1


def test_nul_in_any_form_field_never_reaches_the_database(port, site, db):
    """Every field that is stored is checked like /v1/moderate's (NUL refused: PostgreSQL cannot store it),
    and a key with a NUL is simply invalid (looking it up would fail on PostgreSQL, not miss)."""
    http = http_client(port)
    base = {"api_key": site.api_key, "blog": BLOG, "user_ip": "1.2.3.4", "comment_content": HAM_TEXT}
    bad_key = "mod_abc\x00defg_" + "x" * 43
    verify = http.post("https://rest.akismet.com/1.1/verify-key", data={"key": bad_key, "blog": BLOG})
    assert verify.status_code == 200 and verify.text == "invalid"
    for endpoint in ("comment-check", "submit-spam"):
        url = f"https://rest.akismet.com/1.1/{endpoint}"
        assert http.post(url, data={**base, "api_key": bad_key}).text == "invalid"
        for field in ("comment_author", "comment_author_email", "comment_author_url", "user_ip", "permalink"):
            response = http.post(url, data={**base, field: "x\x00"})
            assert response.status_code == 400, (endpoint, field, response.text)
            assert "NUL" in response.headers["X-akismet-debug-help"]
    with db.read_session() as session:
        assert session.exec(select(Comment)).all() == []
