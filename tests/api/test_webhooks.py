"""Webhooks: a moderator's decision (record_decision) reaches the site's URL, signed with HMAC-SHA256,
retried with backoff on failure (bounded), every attempt recorded. A real HTTP server receives them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from api.schemas import DecisionCreate, WebhookDelivery
from api.security import signature_matches, webhook_signature
from api.store.decisions import record_decision
from api.store.webhooks import attempts_for_delivery, backoff_delay, deliveries_for_comment
from tests.api.conftest import auth, moderate_body, new_site


@dataclass
class Receiver:
    """A local webhook endpoint answering with `statuses` in turn (then 200), recording each request."""

    statuses: list[int] = field(default_factory=list)
    requests: list[tuple[float, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.requests) >= count, f"got {len(self.requests)} webhook requests, expected {count}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append((time.monotonic(), dict(self.headers), body))
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/moderato"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _decide(app, site, comment_id: int, action: str = "reject", label: str | None = "spam"):
    return app.state.writer.run_sync(
        lambda s: record_decision(
            session=s, site_id=site.site.id, comment_id=comment_id, decision=DecisionCreate(action=action, label=label)
        )
    )


def _deliveries(db, comment_id: int) -> list[tuple[WebhookDelivery, list]]:
    with db.read_session() as session:
        return [
            (d, attempts_for_delivery(session=session, delivery_id=d.id))
            for d in deliveries_for_comment(session=session, comment_id=comment_id)
        ]


def _wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert predicate()


def test_decision_sends_a_signed_webhook(client, app, db, receiver):
    site = new_site(db, "hooked", webhook_url=receiver.url)
    assert site.webhook_secret and site.webhook_secret.startswith("whsec_")
    verdict = client.post("/v1/moderate", json=moderate_body(comment_id="c-77"), headers=auth(site)).json()
    decision = _decide(app, site, verdict["id"])
    receiver.wait_for(1)
    _, headers, body = receiver.requests[0]
    assert headers["X-Moderato-Signature"] == webhook_signature(site.webhook_secret, body)
    assert signature_matches(site.webhook_secret, body, headers["X-Moderato-Signature"])
    assert not signature_matches("whsec_wrong", body, headers["X-Moderato-Signature"])
    assert headers["Content-Type"] == "application/json"
    payload = json.loads(body)
    assert payload == {
        "event": "comment.decided",
        "id": verdict["id"],
        "comment_id": "c-77",
        "site": "hooked",
        "status": "rejected",
        "label": "spam",
        "decided_at": payload["decided_at"],
        "model_version": verdict["model_version"],
    }
    assert payload["decided_at"].startswith(decision.created_at.strftime("%Y-%m-%dT%H:%M"))
    _wait_until(lambda: _deliveries(db, verdict["id"])[0][0].status == "delivered")
    [(delivery, attempts)] = _deliveries(db, verdict["id"])
    assert delivery.attempts == 1 and delivery.delivered_at is not None
    assert [(a.number, a.status_code, a.error) for a in attempts] == [(1, 200, None)]


def test_failures_are_retried_with_backoff_and_every_attempt_recorded(client, app, db, receiver, settings):
    receiver.statuses = [500, 503]
    site = new_site(db, "flaky", webhook_url=receiver.url)
    verdict = client.post("/v1/moderate", json=moderate_body(), headers=auth(site)).json()
    _decide(app, site, verdict["id"], action="approve", label=None)
    receiver.wait_for(3)
    _wait_until(lambda: _deliveries(db, verdict["id"])[0][0].status == "delivered")
    [(delivery, attempts)] = _deliveries(db, verdict["id"])
    assert [(a.number, a.status_code) for a in attempts] == [(1, 500), (2, 503), (3, 200)]
    assert attempts[0].error == "HTTP 500"
    gaps = [later[0] - earlier[0] for earlier, later in zip(receiver.requests, receiver.requests[1:], strict=False)]
    base = settings.webhook_backoff_seconds
    assert gaps[0] >= base * 0.9 and gaps[1] >= 2 * base * 0.9, gaps
    bodies = {body for _, _, body in receiver.requests}
    assert len(bodies) == 1, "every retry sends the same signed bytes"
    assert json.loads(receiver.requests[0][2])["status"] == "approved"


def test_retries_are_bounded(client, app, db, receiver, settings):
    receiver.statuses = [500] * 50
    site = new_site(db, "down", webhook_url=receiver.url)
    verdict = client.post("/v1/moderate", json=moderate_body(), headers=auth(site)).json()
    _decide(app, site, verdict["id"])
    _wait_until(lambda: _deliveries(db, verdict["id"])[0][0].status == "failed")
    time.sleep(settings.webhook_backoff_cap_seconds * 2)
    [(delivery, attempts)] = _deliveries(db, verdict["id"])
    assert delivery.attempts == settings.webhook_max_attempts == len(attempts) == len(receiver.requests)


def test_unreachable_endpoint_attempts_are_recorded(client, app, db):
    site = new_site(db, "nowhere", webhook_url="http://127.0.0.1:9/unreachable")
    verdict = client.post("/v1/moderate", json=moderate_body(), headers=auth(site)).json()
    _decide(app, site, verdict["id"])
    _wait_until(lambda: _deliveries(db, verdict["id"])[0][1] != [])
    [(_, attempts)] = _deliveries(db, verdict["id"])
    assert attempts[0].status_code is None and "ConnectError" in (attempts[0].error or "")


def test_no_webhook_without_url_or_for_akismet_feedback(client, app, db, site, receiver):
    verdict = client.post("/v1/moderate", json=moderate_body(), headers=auth(site)).json()
    _decide(app, site, verdict["id"])
    assert _deliveries(db, verdict["id"]) == []


def test_backoff_doubles_up_to_the_cap():
    assert [backoff_delay(n, base=2.0, cap=20.0) for n in range(1, 7)] == [2.0, 4.0, 8.0, 16.0, 20.0, 20.0]


def test_a_webhook_url_set_by_patch_is_signed_with_the_secret_that_patch_answered(client, app, db, site, receiver):
    # The site was created without a webhook URL, so no secret was shown at creation.
    assert site.webhook_secret is None
    patched = client.patch("/v1/sites/me", json={"webhook_url": receiver.url}, headers=auth(site)).json()
    secret = patched["webhook_secret"]
    verdict = client.post("/v1/moderate", json=moderate_body(), headers=auth(site)).json()
    _decide(app, site, verdict["id"])
    receiver.wait_for(1)
    _, headers, body = receiver.requests[0]
    assert signature_matches(secret, body, headers["X-Moderato-Signature"])
