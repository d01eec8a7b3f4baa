"""Sites and keys: hashed storage, constant-time comparison, rotation with a grace period."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from api import security
from api.errors import NotAuthenticated
from api.schemas import SiteKey, utcnow
from api.store.sites import authenticate_site, rotate_key
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
