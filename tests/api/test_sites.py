"""Sites and keys: hashed storage, constant-time comparison, rotation with a grace period."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlmodel import select

from api import security
from api.errors import NotAuthenticated
from api.schemas import SiteCreate, SiteKey, utcnow
from api.store.sites import authenticate_site, get_site, rotate_key
from tests.api.conftest import auth, moderate_body


def test_keys_are_stored_hashed(db, site):
    with db.read_session() as session:
        keys = session.exec(select(SiteKey)).all()
    assert len(keys) == 1
    assert site.api_key not in (keys[0].key_hash, keys[0].prefix)
    assert keys[0].key_hash == security.hash_secret(site.api_key)
    assert site.api_key.startswith(keys[0].prefix + "_")


def test_key_check_uses_constant_time_comparison(db, site, monkeypatch):
    calls = []
    real = security.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    with db.read_session() as session:
        assert authenticate_site(session=session, api_key=site.api_key).name == site.site.name
        with pytest.raises(NotAuthenticated):
            authenticate_site(session=session, api_key=site.api_key[:-1] + ("A" if site.api_key[-1] != "A" else "B"))
    assert len(calls) == 2


def test_rotated_key_keeps_working_for_the_grace_period(db, site):
    now = utcnow()
    with db.write_session() as session:
        new_key, until = rotate_key(session=session, name=site.site.name, grace=timedelta(hours=2), now=now)
    assert until == now + timedelta(hours=2)
    with db.read_session() as session:
        for key in (site.api_key, new_key):
            assert authenticate_site(session=session, api_key=key, now=now + timedelta(hours=1)).id == site.site.id
        assert authenticate_site(session=session, api_key=new_key, now=now + timedelta(days=30)).id == site.site.id
        with pytest.raises(NotAuthenticated):
            authenticate_site(session=session, api_key=site.api_key, now=now + timedelta(hours=2, seconds=1))


def test_rotation_over_http(client, db, site):
    with db.write_session() as session:
        new_key, _ = rotate_key(session=session, name=site.site.name, grace=timedelta(0))
    assert client.post("/v1/moderate", json=moderate_body(), headers=auth(site)).status_code == 401
    assert client.post("/v1/moderate", json=moderate_body(), headers=auth(new_key)).status_code == 200


def test_site_me_shows_and_updates_settings(client, site):
    me = client.get("/v1/sites/me", headers=auth(site)).json()
    assert me["name"] == "daily-planet" and me["url"] == "https://planet.example"
    assert "webhook_secret" not in me and "id" not in me
    response = client.patch(
        "/v1/sites/me", json={"retention_days": 30, "webhook_url": "http://127.0.0.1:9/h"}, headers=auth(site)
    )
    assert response.status_code == 200
    assert response.json()["retention_days"] == 30
    assert client.patch("/v1/sites/me", json={"retention_days": 0}, headers=auth(site)).status_code == 422


@pytest.mark.parametrize("days", [0, -1, 36501, 10**12, 10**20])
def test_retention_days_out_of_range_is_refused(client, db, site, days):
    # 10**20 used to kill the writer thread (OverflowError at commit): every later write then got 503.
    response = client.patch("/v1/sites/me", json={"retention_days": days}, headers=auth(site))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "retention_days"]
    longest = client.patch("/v1/sites/me", json={"retention_days": 36500}, headers=auth(site))
    assert longest.json()["retention_days"] == 36500
    assert client.post("/v1/moderate", json=moderate_body(), headers=auth(site)).status_code == 200


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "not a url", "ftp://blog.example/h", "http://", "https:///path", "http://h:99999/"]
)
def test_webhook_url_must_be_an_absolute_http_url(client, db, site, url):
    response = client.patch("/v1/sites/me", json={"webhook_url": url}, headers=auth(site))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "webhook_url"]
    with pytest.raises(ValidationError):
        SiteCreate(name="hooked", webhook_url=url)  # the CLI's `site create` validates with the same rule
    with db.read_session() as session:
        assert get_site(session=session, name=site.site.name).webhook_url is None


def test_empty_webhook_url_removes_the_webhook_like_null(client, site):
    hook = "https://planet.example/hook"
    for empty in ("", None):
        set_it = client.patch("/v1/sites/me", json={"webhook_url": hook}, headers=auth(site))
        assert set_it.json()["webhook_url"] == hook
        response = client.patch("/v1/sites/me", json={"webhook_url": empty}, headers=auth(site))
        assert response.status_code == 200 and response.json()["webhook_url"] is None


def test_first_webhook_url_answers_its_new_signing_secret_once(client, db, site):
    assert site.webhook_secret is None  # created without a webhook URL: no secret was shown
    response = client.patch("/v1/sites/me", json={"webhook_url": "https://planet.example/hook"}, headers=auth(site))
    assert response.status_code == 200
    secret = response.json()["webhook_secret"]
    with db.read_session() as session:
        assert secret.startswith("whsec_") and get_site(session=session, name=site.site.name).webhook_secret == secret
    assert "webhook_secret" not in client.get("/v1/sites/me", headers=auth(site)).json()
    # the secret exists now: later changes (other URL, removal, back again) never show it
    for url in ("https://planet.example/other", None, "https://planet.example/hook"):
        again = client.patch("/v1/sites/me", json={"webhook_url": url}, headers=auth(site)).json()
        assert "webhook_secret" not in again and again["webhook_url"] == url
    assert "webhook_secret" not in client.patch("/v1/sites/me", json={"retention_days": 5}, headers=auth(site)).json()
