"""A moderator clears a queue in real Chromium: log in, highlights, keyboard approve/reject/undo,
hostile comment inert, webhooks received and signed. Screenshots: test-artifacts/moderate-*.png."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from api.schemas import SiteCreate
from api.security import signature_matches
from api.store.sites import create_moderator, create_site
from tests.browser.conftest import ARTIFACTS, free_port

pytestmark = pytest.mark.browser

PLUG = "My car insurance is currently only $25/month (from Insurance Panda) and renter's only $15/month (from Eagle)."
FOUNDING_TEXT = (
    "Both parties have been useless on North Korea for decades and this outage proves nobody has a plan. "
    + PLUG
    + " Anyway, sanctions clearly aren't working and someone should admit it."
)
HOSTILE_TEXT = "Nice post <script>alert(1)</script><img src=x onerror=alert(2)> visit cheap-pills.example now!"
TOXIC_TEXT = "You are an idiot and a moron, nobody wants to read your garbage."
ARTICLE = {
    "id": "nk-outage",
    "title": "North Korea's internet goes dark",
    "body": "North Korea lost its connection to the internet on Monday. Analysts debated a cyber attack.",
}


class _Hooks(BaseHTTPRequestHandler):
    received: list[tuple[bytes, str]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.received.append((body, self.headers.get("x-moderato-signature", "")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def webhook_receiver():
    _Hooks.received = []
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Hooks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks", _Hooks.received
    server.shutdown()
    server.server_close()


def _seed(live_server, webhook_url):
    with live_server.db.write_session() as session:
        created = create_site(session=session, site_in=SiteCreate(name="daily-planet", webhook_url=webhook_url))
        labels = ("spam", "toxicity", "off_topic")
        created.site.policy_overrides = {label: {"hold": 0.45, "reject": 1.0} for label in labels}
        session.add(created.site)
        _, secret = create_moderator(session=session, site_name="daily-planet", name="ada")
    headers = {"Authorization": f"Bearer {created.api_key}"}
    ids = {}
    with httpx.Client(base_url=live_server.base_url, headers=headers) as client:
        for name, text, author in (
            ("founding", FOUNDING_TEXT, "Sam"),
            ("toxic", TOXIC_TEXT, "Troll"),
            ("hostile", HOSTILE_TEXT, "<b>Mallory</b>"),
        ):
            body = {"comment": {"id": name, "text": text, "author": {"name": author}}, "article": ARTICLE}
            response = client.post("/v1/moderate", json=body)
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "pending"
            ids[name] = response.json()["id"]
    return created, secret, ids


def _row(page, comment_id):
    return page.locator(f"#comment-{comment_id}")


def test_moderator_clears_the_queue_with_the_keyboard(live_server, browser_page, webhook_receiver):
    page = browser_page
    hook_url, received = webhook_receiver
    created, secret, ids = _seed(live_server, hook_url)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    console_errors: list[str] = []
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    failed: list[str] = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 and "favicon" not in r.url else None)

    # Log in.
    page.goto(live_server.base_url + "/moderate")
    assert page.url.endswith("/moderate/login")
    page.fill("#secret", secret)
    page.click("button[type=submit]")
    page.wait_for_url("**/moderate")
    assert page.locator("article.comment").count() == 3
    assert page.locator('[data-count="pending"]').text_content() == "3"

    # The founding comment shows its evidence highlighted inside the text.
    founding = _row(page, ids["founding"])
    marks = founding.locator("mark.evidence")
    assert marks.count() >= 1
    highlighted = " ".join(marks.all_text_contents())
    assert "Insurance Panda" in highlighted, highlighted
    assert founding.locator(".article").text_content() == ARTICLE["title"]
    assert founding.locator("meter").count() >= 2

    # The hostile comment is text: no dialog, no element made from it, the markup shown literally.
    hostile = _row(page, ids["hostile"])
    assert "<script>alert(1)</script><img src=x onerror=alert(2)>" in hostile.locator(".text").text_content()
    assert hostile.locator(".author").text_content() == "<b>Mallory</b>"
    assert page.locator("main img, main script, main b").count() == 0
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    page.screenshot(path=str(ARTIFACTS / "moderate-1-queue.png"), full_page=True)

    # Keyboard: the first row is current; a approves it, r rejects the next, u undoes the reject.
    rows = page.locator("article.comment")
    first_id, second_id = rows.nth(0).get_attribute("data-id"), rows.nth(1).get_attribute("data-id")
    assert "current" in (rows.nth(0).get_attribute("class") or "")
    page.keyboard.press("a")
    page.wait_for_selector(f'#comment-{first_id}[data-status="approved"]')
    page.wait_for_selector(f"#comment-{second_id}.current")
    page.keyboard.press("r")
    page.wait_for_selector(f'#comment-{second_id}[data-status="rejected"]')
    assert page.locator('[data-count="pending"]').text_content() == "1"
    assert page.locator('[data-count="rejected"]').text_content() == "1"
    page.screenshot(path=str(ARTIFACTS / "moderate-2-decided.png"), full_page=True)
    page.keyboard.press("u")
    page.wait_for_selector(f'#comment-{second_id}[data-status="pending"]')
    assert page.locator('[data-count="pending"]').text_content() == "2"
    page.keyboard.press("j")
    page.keyboard.press("k")
    assert "current" in (page.locator(f"#comment-{second_id}").get_attribute("class") or "")
    page.screenshot(path=str(ARTIFACTS / "moderate-3-undone.png"), full_page=True)

    # A reload shows the stored state: the approved one left the pending queue.
    page.reload()
    assert page.locator("article.comment").count() == 2
    assert page.locator(f"#comment-{first_id}").count() == 0
    assert dialogs == [] and failed == [], "nothing ran, nothing loaded from the hostile markup"
    assert [e for e in console_errors if "favicon" not in e and "404" not in e] == []

    # Each comment links to its own page: the card, then the engine's verdict and each decision.
    page.click(f"#comment-{second_id} a.history")
    page.wait_for_url(f"**/moderate/comments/{second_id}")
    steps = page.locator("table.history tbody tr")
    assert steps.count() == 3
    assert [steps.nth(i).locator("td").nth(2).text_content() for i in range(3)] == ["scored", "reject", "reopen"]
    assert steps.nth(1).locator("td").nth(1).text_content() == "ada"
    page.screenshot(path=str(ARTIFACTS / "moderate-4-history.png"), full_page=True)

    # The server agrees, history says who, and the platform got signed webhooks for each decision.
    with httpx.Client(base_url=live_server.base_url, headers={"Authorization": f"Bearer {secret}"}) as client:
        history = client.get(f"/v1/comments/{second_id}/history").json()
        assert [(d["action"], d["moderator_name"]) for d in history["decisions"]] == [
            ("reject", "ada"),
            ("reopen", "ada"),
        ]
        assert client.get(f"/v1/comments/{first_id}").status_code == 401, "comment reads need the site key"
    import time

    deadline = time.monotonic() + 10
    while len(received) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    statuses = [json.loads(body)["status"] for body, _ in received]
    assert sorted(statuses) == ["approved", "pending", "rejected"]
    assert all(signature_matches(created.webhook_secret, body, sig) for body, sig in received)


def _log_in(page, live_server, secret):
    page.goto(live_server.base_url + "/moderate/login")
    page.fill("#secret", secret)
    page.click("button[type=submit]")
    page.wait_for_url("**/moderate")


def _press_at_once(page, *keys, repeat=False):
    """Keys pressed faster than the server answers: every keydown is dispatched before any fetch returns
    (`repeat`: the auto-repeat of a key held down)."""
    page.evaluate(
        "([keys, repeat]) => keys.forEach(key => document.dispatchEvent("
        "new KeyboardEvent('keydown', {key, repeat, bubbles: true})))",
        [list(keys), repeat],
    )


def _statuses(live_server, secret):
    with httpx.Client(base_url=live_server.base_url, headers={"Authorization": f"Bearer {secret}"}) as client:
        items = client.get("/v1/queue", params={"status": "all", "sort": "oldest"}).json()["items"]
        return {str(item["id"]): item["status"] for item in items}


def test_keys_pressed_fast_each_decide_their_own_comment(live_server, browser_page):
    """a then r before the first answer arrives: the first comment approved, the second rejected, the
    third untouched (the focus moves on at the keystroke, not when the server answers); s then u: the
    undo waits for the decision it undoes. A held-down key decides nothing more."""
    page = browser_page
    _, secret, _ = _seed(live_server, None)
    _log_in(page, live_server, secret)
    ids = page.locator("article.comment").evaluate_all("rows => rows.map(r => r.dataset.id)")
    _press_at_once(page, "a", repeat=True)  # "a" held down: its repeats decide nothing
    page.wait_for_timeout(300)
    assert set(_statuses(live_server, secret).values()) == {"pending"}
    _press_at_once(page, "a", "r")
    page.wait_for_selector(f'#comment-{ids[1]}[data-status="rejected"]')
    page.wait_for_selector(f'#comment-{ids[0]}[data-status="approved"]')
    assert _statuses(live_server, secret) == {ids[0]: "approved", ids[1]: "rejected", ids[2]: "pending"}
    assert "current" in (page.locator(f"#comment-{ids[2]}").get_attribute("class") or "")
    _press_at_once(page, "s", "u")
    page.wait_for_selector(f'#comment-{ids[2]}[data-status="pending"]')
    page.wait_for_function("() => !document.getElementById('status').textContent.includes('(u to undo)')")
    assert _statuses(live_server, secret)[ids[2]] == "pending"
    with httpx.Client(base_url=live_server.base_url, headers={"Authorization": f"Bearer {secret}"}) as client:
        history = client.get(f"/v1/comments/{ids[0]}/history").json()["decisions"]
    assert [d["action"] for d in history] == ["approve"], "one keystroke, one decision"


def test_a_stale_page_does_not_override_a_colleagues_decision(live_server, browser_page):
    """Another moderator rejects the first comment after this page loaded; a here is refused (409),
    the row shows the colleague's decision, and the comment stays rejected with one decision."""
    page = browser_page
    _, secret, _ = _seed(live_server, None)
    _log_in(page, live_server, secret)
    first = page.locator("article.comment").first.get_attribute("data-id")
    with httpx.Client(base_url=live_server.base_url, headers={"Authorization": f"Bearer {secret}"}) as client:
        response = client.post(f"/v1/queue/{first}/decision", json={"action": "reject", "label": "spam"})
        assert response.status_code == 200
    page.keyboard.press("a")
    page.wait_for_selector(f'#comment-{first}[data-status="rejected"]')
    assert "rejected now, not pending" in page.locator("#status").text_content()
    assert page.locator(f"#comment-{first} header .label").text_content() == "spam"
    assert _statuses(live_server, secret)[first] == "rejected"
    with httpx.Client(base_url=live_server.base_url, headers={"Authorization": f"Bearer {secret}"}) as client:
        history = client.get(f"/v1/comments/{first}/history").json()["decisions"]
    assert [d["action"] for d in history] == ["reject"]
    page.keyboard.press("k")
    page.keyboard.press("a")  # now the page shows what is stored: deciding again is deliberate, and works
    page.wait_for_selector(f'#comment-{first}[data-status="approved"]')


def test_without_javascript_the_bulk_form_decides_and_refuses_a_stale_page(live_server, browser_page):
    """JavaScript off: ticked boxes and "Approve all" post a plain form (303 back to the queue); a
    comment a colleague decided since the page loaded is refused (409), the others are still decided."""
    context = browser_page.context.browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        _, secret, ids = _seed(live_server, None)
        _log_in(page, live_server, secret)
        page.check(f"#comment-{ids['toxic']} input.select")
        with page.expect_navigation():
            page.click('#bulk button[value="approve"]')
        assert _statuses(live_server, secret)[str(ids["toxic"])] == "approved"
        assert page.locator("article.comment").count() == 2
        with httpx.Client(base_url=live_server.base_url, headers={"Authorization": f"Bearer {secret}"}) as client:
            decided = client.post(f"/v1/queue/{ids['founding']}/decision", json={"action": "reject", "label": "spam"})
            assert decided.status_code == 200
        page.check(f"#comment-{ids['founding']} input.select")
        page.check(f"#comment-{ids['hostile']} input.select")
        with page.expect_response("**/moderate/decide") as answer:
            page.click('#bulk button[value="approve"]')
        assert answer.value.status == 409
        assert "Some comments were not decided" in page.text_content("h1")
        assert "rejected now, not pending" in page.text_content("ul.refused")
        page.click("text=Back to the queue")
        assert "The queue is clear." in page.text_content("p.empty")  # all three were decided, one by bob
        statuses = _statuses(live_server, secret)
        assert statuses[str(ids["founding"])] == "rejected" and statuses[str(ids["hostile"])] == "approved"
    finally:
        context.close()


def test_behind_a_tls_proxy_the_page_cookies_are_secure(live_server):
    """Served by uvicorn (as `moderato serve` does) behind a TLS-terminating proxy on the same host:
    the proxy's X-Forwarded-Proto makes the page's cookies Secure; plain http leaves them usable."""
    with httpx.Client(base_url=live_server.base_url) as client:
        plain = client.get("/moderate/login").headers["set-cookie"].lower()
        proxied = client.get("/moderate/login", headers={"X-Forwarded-Proto": "https"}).headers["set-cookie"].lower()
    assert "; secure" not in plain and "httponly" in plain
    assert "; secure" in proxied
