"""A real Moderato server on a free loopback port (uvicorn in a thread, temp SQLite, the tiny
bundle) and Debian's Chromium driven by Playwright. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.config import Settings
from api.db import Database, migrate
from api.main import create_app
from classifier import Engine

CHROMIUM = Path(os.environ.get("MODERATO_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    base_url: str
    db: Database
    settings: Settings


@pytest.fixture
def live_server(tmp_path: Path, tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    import uvicorn

    for name in list(os.environ):
        if name.startswith("MODERATO_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    url = f"sqlite:///{tmp_path / 'moderato.db'}"
    migrate(url)
    settings = Settings(
        data_dir=tmp_path,
        database_url_override=url,
        bundle=tiny_bundle,
        auto_migrate=False,
        auth_cache_seconds=0,
        webhook_poll_seconds=0.05,
        webhook_backoff_seconds=0.05,
        gil_switch_interval=0,
        log_level="WARNING",
    )
    app = create_app(settings, engine=Engine.load(tiny_bundle))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    db = Database.from_url(url)
    try:
        yield LiveServer(base_url=f"http://127.0.0.1:{port}", db=db, settings=settings)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        db.dispose()


@pytest.fixture
def browser_page() -> Iterator[object]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium not found at {CHROMIUM}: .ci/run should have installed it")
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    if os.environ.get("CI"):
        from playwright import sync_api  # in CI a missing Playwright is a failure, not a skip
    else:
        sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        page = context.new_page()
        page.set_default_timeout(10_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()
