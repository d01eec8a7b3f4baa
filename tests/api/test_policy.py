"""Per-site policy: thresholds per label, log-only mode; PATCH/GET /v1/sites/me/policy."""

from __future__ import annotations

from tests.api.conftest import ALWAYS, auth, moderate_body


def test_get_policy_shows_the_bundle_thresholds(client, site, engine):
    policy = client.get("/v1/sites/me/policy", headers=auth(site)).json()
    assert policy["mode"] == "enforce"
    assert policy["overrides"] == {}
    assert policy["bundle_version"] == engine.version
    for label, limits in engine.policy.thresholds.items():
        assert policy["thresholds"][label] == {"hold": limits.hold, "reject": limits.reject}


def test_patch_thresholds_changes_verdicts(client, site, engine):
    assert (
        client.patch(
            "/v1/sites/me/policy",
            json={"thresholds": dict.fromkeys(("spam", "toxicity", "off_topic"), ALWAYS["hold"])},
            headers=auth(site),
        ).status_code
        == 200
    )
    assert (
        client.post("/v1/moderate", json=moderate_body(comment_id="p-1"), headers=auth(site)).json()["decision"]
        == "hold"
    )
    response = client.patch(
        "/v1/sites/me/policy",
        json={"thresholds": {label: {"hold": 1.0, "reject": 1.0} for label in ("spam", "toxicity", "off_topic")}},
        headers=auth(site),
    )
    assert response.status_code == 200
    assert response.json()["thresholds"]["spam"] == {"hold": 1.0, "reject": 1.0}
    verdict = client.post("/v1/moderate", json=moderate_body(comment_id="p-2"), headers=auth(site)).json()
    assert verdict["decision"] == "approve" and verdict["reasons"] == []


def test_partial_patch_keeps_other_values_and_null_drops_an_override(client, site, engine):
    base = engine.policy.thresholds["spam"]
    client.patch("/v1/sites/me/policy", json={"thresholds": {"spam": {"hold": 0.1}}}, headers=auth(site))
    policy = client.get("/v1/sites/me/policy", headers=auth(site)).json()
    assert policy["thresholds"]["spam"] == {"hold": 0.1, "reject": base.reject}
    assert policy["overrides"] == {"spam": {"hold": 0.1}}
    client.patch("/v1/sites/me/policy", json={"thresholds": {"spam": {"reject": 0.95}}}, headers=auth(site))
    assert client.get("/v1/sites/me/policy", headers=auth(site)).json()["overrides"] == {
        "spam": {"hold": 0.1, "reject": 0.95}
    }
    response = client.patch("/v1/sites/me/policy", json={"thresholds": {"spam": None}}, headers=auth(site))
    assert response.json()["overrides"] == {}
    assert response.json()["thresholds"]["spam"] == {"hold": base.hold, "reject": base.reject}


def test_log_only_always_approves_but_still_scores_and_stores(client, site, db):
    client.patch(
        "/v1/sites/me/policy",
        json={
            "mode": "log_only",
            "thresholds": dict.fromkeys(("spam", "toxicity", "off_topic"), ALWAYS["reject"]),
        },
        headers=auth(site),
    )
    verdict = client.post("/v1/moderate", json=moderate_body(), headers=auth(site)).json()
    assert verdict["decision"] == "approve" and verdict["status"] == "approved"
    assert verdict["scores"]["spam"] is not None
    assert verdict["reasons"], "log-only still says what would have happened"
    stored = client.get(f"/v1/comments/{verdict['id']}", headers=auth(site)).json()
    assert stored["text"] and stored["scores"] == verdict["scores"]
    # a request may ask for enforcement explicitly
    enforced = client.post(
        "/v1/moderate", json=moderate_body(comment_id="c-2", mode="enforce"), headers=auth(site)
    ).json()
    assert enforced["decision"] == "reject"


def test_request_mode_log_only(client, site, db):
    client.patch("/v1/sites/me/policy", json={"thresholds": {"spam": ALWAYS["reject"]}}, headers=auth(site))
    verdict = client.post("/v1/moderate", json=moderate_body(mode="log_only"), headers=auth(site)).json()
    assert verdict["decision"] == "approve"


def test_invalid_policies_are_422_and_change_nothing(client, site):
    before = client.get("/v1/sites/me/policy", headers=auth(site)).json()
    for body in (
        {"thresholds": {"spam": {"hold": 0.9, "reject": 0.5}}},
        {"thresholds": {"spam": {"hold": 1.5}}},
        {"thresholds": {"spam": {"hold": -0.1}}},
        {"thresholds": {"ham": {"hold": 0.5}}},
        {"thresholds": {"spam": {"hold": "high"}}},
        {"thresholds": {"spam": {"hold": 0.5, "reject": True}}},  # not read as 1.0
        {"mode": "strict"},
        {"thresholds": ["spam"]},
    ):
        response = client.patch("/v1/sites/me/policy", json=body, headers=auth(site))
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"][0]["loc"][0] == "body"
    assert client.get("/v1/sites/me/policy", headers=auth(site)).json() == before


def test_policies_are_per_site(client, site, other_site):
    client.patch("/v1/sites/me/policy", json={"mode": "log_only"}, headers=auth(site))
    assert client.get("/v1/sites/me/policy", headers=auth(other_site)).json()["mode"] == "enforce"


def test_cached_keys_see_policy_changes_made_through_the_api(settings, engine, db, site):
    from fastapi.testclient import TestClient

    from api.main import create_app

    cached = settings.model_copy(update={"auth_cache_seconds": 60})
    with TestClient(create_app(cached, engine=engine)) as client:
        client.patch("/v1/sites/me/policy", json={"thresholds": {"spam": ALWAYS["reject"]}}, headers=auth(site))
        assert (
            client.post("/v1/moderate", json=moderate_body(comment_id="k-1"), headers=auth(site)).json()["decision"]
            == "reject"
        )
        client.patch("/v1/sites/me/policy", json={"mode": "log_only"}, headers=auth(site))
        assert (
            client.post("/v1/moderate", json=moderate_body(comment_id="k-2"), headers=auth(site)).json()["decision"]
            == "approve"
        )
        assert (
            client.post("/v1/moderate", json=moderate_body(), headers=auth("mod_00000000_" + "z" * 43)).status_code
            == 401
        )
