"""Hot reload: a promotion recorded in the database reaches every worker without a restart."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.config import Settings
from api.db import Database
from api.main import create_app
from api.store.bundles import record_promotion
from classifier import Engine
from classifier.bundle import READABLE_FORMATS
from tests.api.conftest import add_version, auth, make_settings, moderate_body

TOKEN = "operator-token-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def promote(db: Database, version: str) -> None:
    with db.write_session() as session:
        record_promotion(session=session, version=version, promoted_by="test")


def serving(client: TestClient) -> str:
    return client.get("/readyz").json()["checks"]["bundle"]


@pytest.fixture
def reload_settings(database_url: str, tmp_path: Path) -> Settings:
    # The periodic check is slow here, so only the forced reload swaps bundles.
    return make_settings(database_url, tmp_path, admin_token=TOKEN, bundle_check_seconds=3600)


@pytest.fixture
def reload_client(reload_settings: Settings, engine: Engine, db: Database):
    with TestClient(create_app(reload_settings, engine=engine)) as client:
        yield client


def test_admin_endpoints_are_hidden_without_a_token(client):
    assert client.post("/v1/admin/reload", headers=ADMIN).status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}", "Bearer "])
def test_reload_needs_the_admin_token(reload_client, header):
    headers = {"Authorization": header} if header else {}
    response = reload_client.post("/v1/admin/reload", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid or missing admin token"}


def test_a_site_key_is_not_an_admin_token(reload_client, site):
    assert reload_client.post("/v1/admin/reload", headers=auth(site)).status_code == 401


def test_forced_reload_swaps_the_bundle_and_verdicts_carry_the_new_version(
    reload_client, reload_settings, tiny_bundle, db, site
):
    before = reload_client.post("/v1/moderate", json=moderate_body(comment_id="before"), headers=auth(site))
    assert before.json()["model_version"] == "tiny-test"
    unchanged = reload_client.post("/v1/admin/reload", headers=ADMIN)
    assert unchanged.status_code == 200
    assert unchanged.json()["changed"] is False

    add_version(tiny_bundle, reload_settings, "tiny-v2")
    promote(db, "tiny-v2")
    response = reload_client.post("/v1/admin/reload", headers=ADMIN)
    assert response.status_code == 200
    assert response.json() == {"version": "tiny-v2", "previous": "tiny-test", "promoted": "tiny-v2", "changed": True}
    after = reload_client.post("/v1/moderate", json=moderate_body(comment_id="after"), headers=auth(site))
    assert after.json()["model_version"] == "tiny-v2"
    stored = reload_client.get(f"/v1/comments/{before.json()['id']}", headers=auth(site))
    assert stored.json()["model_version"] == "tiny-test"  # old verdicts keep the version that made them
    assert reload_client.post("/v1/admin/reload", headers=ADMIN).json()["changed"] is False


def test_workers_notice_a_promotion_on_their_own(database_url, tmp_path, engine, db, tiny_bundle, site):
    settings = make_settings(database_url, tmp_path, bundle_check_seconds=0.05)
    with TestClient(create_app(settings, engine=engine)) as client:
        assert serving(client) == "tiny-test"
        add_version(tiny_bundle, settings, "tiny-v3")
        promote(db, "tiny-v3")
        deadline = time.monotonic() + 10
        while serving(client) != "tiny-v3" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert serving(client) == "tiny-v3"
        response = client.post("/v1/moderate", json=moderate_body(), headers=auth(site))
        assert response.json()["model_version"] == "tiny-v3"


def test_a_broken_promotion_keeps_the_current_bundle(reload_client, reload_settings, tiny_bundle, db, site):
    broken = add_version(tiny_bundle, reload_settings, "tiny-broken")
    (broken / "bundle.joblib").write_bytes(b"not a bundle")
    promote(db, "tiny-broken")
    response = reload_client.post("/v1/admin/reload", headers=ADMIN)
    assert response.status_code == 503
    assert response.json() == {"detail": "Promoted bundle tiny-broken cannot be loaded"}
    ok = reload_client.post("/v1/moderate", json=moderate_body(), headers=auth(site))
    assert ok.status_code == 200 and ok.json()["model_version"] == "tiny-test"
    assert reload_client.app.state.reloader.check().changed is False  # not retried until the promotion changes


def test_a_pinned_bundle_is_never_reloaded(database_url, tmp_path, engine, db, tiny_bundle):
    settings = make_settings(database_url, tmp_path, admin_token=TOKEN, bundle=tiny_bundle)
    with TestClient(create_app(settings)) as client:
        add_version(tiny_bundle, settings, "tiny-v4")
        promote(db, "tiny-v4")
        response = client.post("/v1/admin/reload", headers=ADMIN)
        assert response.json()["changed"] is False and serving(client) == "tiny-test"


def test_requests_in_flight_never_fail_while_bundles_swap(reload_client, reload_settings, tiny_bundle, db, site):
    add_version(tiny_bundle, reload_settings, "tiny-a")
    add_version(tiny_bundle, reload_settings, "tiny-b")
    results: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def post(worker: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            body = moderate_body(f"Comment {n} from worker {worker}: both computers are down.", f"{worker}-{n}")
            response = reload_client.post("/v1/moderate", json=body, headers=auth(site))
            results.append((response.status_code, response.json().get("model_version")))

    threads = [threading.Thread(target=post, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    try:
        for version in ("tiny-a", "tiny-b", "tiny-a", "tiny-b"):
            promote(db, version)
            assert reload_client.post("/v1/admin/reload", headers=ADMIN).json()["version"] == version
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert results and all(status == 200 for status, _ in results)
    assert {version for _, version in results} <= {"tiny-test", "tiny-a", "tiny-b"}


def test_an_unloadable_promoted_bundle_at_startup_falls_back_to_the_packaged_one(
    database_url, tmp_path, db, tiny_bundle
):
    settings = make_settings(database_url, tmp_path)
    old = add_version(tiny_bundle, settings, "tiny-old-format")
    manifest = old / "manifest.json"
    data = json.loads(manifest.read_text())
    data["format"] = min(READABLE_FORMATS) - 1  # a bundle written by a Moderato this one cannot read
    manifest.write_text(json.dumps(data))
    promote(db, "tiny-old-format")
    with TestClient(create_app(settings)) as client:
        assert serving(client) == Engine.load(None).version
