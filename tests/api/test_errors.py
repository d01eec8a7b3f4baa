"""Bad input never hurts: 401/404/413/422 with a clear detail, never a 500, and no partial rows."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import auth, moderate_body, row_counts

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def before(db, site):
    return row_counts(db)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": "Bearer mod_00000000_" + "x" * 43},
        {"Authorization": "Bearer mod_abc"},
    ],
    ids=["missing", "empty", "basic", "garbage", "unknown-key", "malformed"],
)
def test_missing_or_wrong_key_is_401(client, site, db, before, headers):
    for method, path in (
        ("post", "/v1/moderate"),
        ("post", "/v1/moderate/batch"),
        ("get", "/v1/comments/1"),
        ("delete", "/v1/comments/1"),
        ("put", "/v1/articles/a"),
        ("get", "/v1/sites/me/policy"),
        ("patch", "/v1/sites/me/policy"),
    ):
        kwargs = {"json": moderate_body()} if method in ("post", "put", "patch") else {}
        response = client.request(method.upper(), path, headers=headers, **kwargs)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json() == {"detail": "Invalid or missing API key"}
        assert response.headers["www-authenticate"] == "Bearer"
    assert row_counts(db) == before


def _post_raw(client, site, body: bytes, path: str = "/v1/moderate", headers: dict[str, str] | None = None):
    return client.post(path, content=body, headers={**JSON, **auth(site), **(headers or {})})


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (b'{"comment": {"text": "hi"', ["body", 25]),
        (b"[1, 2]", ["body"]),
        (b'{"comment": "text"}', ["body", "comment"]),
        (b'{"comment": {"text": 5}}', ["body", "comment", "text"]),
        (b'{"comment": {}}', ["body", "comment", "text"]),
        (b'{"comment": {"text": ""}}', ["body", "comment", "text"]),
        (b'{"comment": {"text": "   \\n\\t "}}', ["body", "comment", "text"]),
        (b'{"comment": {"text": "\\u200b\\u200d \\ufeff\\u00ad"}}', ["body", "comment", "text"]),
        (b'{"comment": {"text": "a\\u0000b"}}', ["body", "comment", "text"]),
        (b'{"comment": {"text": "lone \\ud800 surrogate"}}', ["body", "comment", "text"]),
        (b'{"comment": {"text": "ok", "author": {"name": "a\\u0000"}}}', ["body", "comment", "author", "name"]),
        (b'{"comment": {"text": "ok", "author": "Pat"}}', ["body", "comment", "author"]),
        (b'{"comment": {"text": "ok", "id": ""}}', ["body", "comment", "id"]),
        (b'{"comment": {"text": "ok", "id": {"x": 1}}}', ["body", "comment", "id"]),
        (b'{"comment": {"text": "ok"}, "mode": "sometimes"}', ["body", "mode"]),
        (b'{"comment": {"text": "ok"}, "article": {"title": 7}}', ["body", "article", "title"]),
    ],
    ids=[
        "truncated-json",
        "array",
        "comment-string",
        "text-number",
        "text-missing",
        "text-empty",
        "text-whitespace",
        "text-zero-width-only",
        "nul",
        "surrogate",
        "nul-author",
        "author-string",
        "empty-id",
        "object-id",
        "bad-mode",
        "title-number",
    ],
)
def test_malformed_input_is_422_naming_the_field(client, site, db, before, body, loc):
    response = _post_raw(client, site, body)
    assert response.status_code == 422, response.text
    locs = [error["loc"] for error in response.json()["detail"]]
    assert loc in locs or any(loc == found[: len(loc)] for found in locs), locs
    assert row_counts(db) == before


def test_text_over_20000_characters_is_422(client, site, db, before):
    response = client.post("/v1/moderate", json=moderate_body("x" * 20_001), headers=auth(site))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "comment", "text"]
    assert "20000" in response.json()["detail"][0]["msg"]
    assert client.post("/v1/moderate", json=moderate_body("x " * 10_000), headers=auth(site)).status_code == 200


def test_error_detail_does_not_echo_the_input(client, site):
    response = client.post("/v1/moderate", json=moderate_body("secret words " * 2000), headers=auth(site))
    assert response.status_code == 422
    assert "secret words" not in response.text


def test_invalid_utf8_is_a_clear_4xx(client, site, db, before):
    response = _post_raw(client, site, b'{"comment": {"text": "caf\xe9 \xff\xfe"}}')
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == "Request body is not valid UTF-8 JSON"
    assert row_counts(db) == before


def test_body_over_64_kib_is_413(client, site, db, before):
    body = json.dumps(moderate_body("a" * (64 * 1024))).encode()
    response = _post_raw(client, site, body)
    assert response.status_code == 413
    assert response.json() == {"detail": "Request body too large (limit 65536 bytes)"}
    assert row_counts(db) == before


def test_a_megabyte_of_emoji_is_413(client, site, db, before):
    response = _post_raw(client, site, json.dumps(moderate_body("😀" * 262_144), ensure_ascii=False).encode())
    assert response.status_code == 413
    assert row_counts(db) == before


def test_emoji_within_limits_are_scored(client, site):
    response = client.post("/v1/moderate", json=moderate_body("😀🔥 " * 3000), headers=auth(site))
    assert response.status_code == 200


def test_streamed_body_without_length_is_counted(client, site, db, before):
    def chunks():
        yield b'{"comment": {"text": "'
        for _ in range(80):
            yield b"a" * 1024
        yield b'"}}'

    response = client.post("/v1/moderate", content=chunks(), headers={**JSON, **auth(site)})
    assert response.status_code == 413
    assert row_counts(db) == before


def test_batch_body_limit_is_one_mebibyte(client, site, db, before):
    items = [moderate_body("b" * 15_000, f"b-{i}") for i in range(70)]  # ~1.05 MB
    response = _post_raw(client, site, json.dumps({"items": items}).encode(), path="/v1/moderate/batch")
    assert response.status_code == 413
    assert row_counts(db) == before
    small = [moderate_body("b" * 15_000, f"b-{i}") for i in range(40)]  # ~600 KB: over 64 KiB, under 1 MiB
    ok = _post_raw(client, site, json.dumps({"items": small}).encode(), path="/v1/moderate/batch")
    assert ok.status_code == 200


def test_batch_items_must_be_a_list(client, site, db, before):
    for body in ({"items": "x"}, {}, {"items": [1, "two"]}):
        response = client.post("/v1/moderate/batch", json=body, headers=auth(site))
        if response.status_code == 200:
            assert all(r["error"]["status"] == 422 for r in response.json()["results"])
        else:
            assert response.status_code == 422
    assert row_counts(db) == before


@pytest.mark.parametrize(
    "path", ["/v1/comments/abc", "/v1/comments/0", "/v1/comments/-1", "/v1/comments/99999999999999999999"]
)
def test_bad_comment_ids_are_422(client, site, path):
    assert client.get(path, headers=auth(site)).status_code == 422


@pytest.mark.parametrize("article_id", ["a%00b", "a%FFb", "a%FEb", "a%ED%A0%80b"], ids=["nul", "ff", "fe", "surrogate"])
def test_bad_article_ids_in_the_path_are_422(client, site, db, before, article_id):
    """The path gets the body's rules (no NUL: PostgreSQL refuses it), and an escape that is not UTF-8 is
    refused rather than decoded to U+FFFD, where `a%FFb` and `a%FEb` would name one article."""
    for method, body in (("PUT", {"title": "x"}), ("GET", None)):
        response = client.request(method, f"/v1/articles/{article_id}", json=body, headers=auth(site))
        assert response.status_code == 422, response.text
        assert [error["loc"] for error in response.json()["detail"]] == [["path", "article_id"]]
    assert row_counts(db) == before
    utf8 = client.put("/v1/articles/caf%C3%A9", json={"title": "x"}, headers=auth(site))
    assert utf8.status_code == 200 and utf8.json()["id"] == "café"


def test_unknown_route_is_404_not_500(client, site):
    assert client.get("/v1/nothing-here", headers=auth(site)).status_code == 404
    assert client.put("/v1/moderate", json={}, headers=auth(site)).status_code == 405


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("put", "/v1/moderate", "POST"),
        ("options", "/v1/comments/1", "DELETE, GET"),  # two routes share the path
        ("put", "/v1/sites/me/policy", "GET, PATCH"),
        ("get", "/v1/moderators/1", "DELETE"),
    ],
)
def test_a_wrong_method_is_405_naming_every_method_of_the_path(client, site, method, path, allow):
    response = client.request(method, path, headers=auth(site))
    assert response.status_code == 405 and response.headers["allow"] == allow


def test_the_openapi_document_names_each_routes_errors(client):
    """Generated clients learn the error statuses: every /v1 operation documents 401 and 503 with the
    `{"detail": ...}` body, and the ones that look a row up document 404."""
    paths = client.get("/openapi.json").json()["paths"]
    operations = {
        (method, path): op for path, ops in paths.items() if path.startswith("/v1/") for method, op in ops.items()
    }
    assert len(operations) >= 18
    for (method, path), op in operations.items():
        if path.startswith("/v1/integrations/"):
            continue  # Coral's phase answers Coral's own shapes, documented on the route
        assert {"401", "503"} <= set(op["responses"]), (method, path)
        if "{" in path and "/articles/" not in path or (method, path) == ("get", "/v1/articles/{article_id}"):
            assert "404" in op["responses"], (method, path)
        if method in ("post", "put", "patch", "delete"):
            assert "413" in op["responses"], (method, path)
    schema = paths["/v1/moderate"]["post"]["responses"]["401"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ErrorPublic"}


def test_the_openapi_document_says_what_the_api_accepts(client):
    """Platform ids may be strings or integers (both stored as text); thresholds are numbers in [0, 1]."""
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    comment_id = schemas["CommentIn"]["properties"]["id"]["anyOf"][0]
    assert {"type": "integer"} in comment_id["anyOf"] and {"type": "string", "maxLength": 255} in comment_id["anyOf"]
    hold = schemas["ThresholdsUpdate"]["properties"]["hold"]["anyOf"][0]
    assert hold == {"type": "number", "minimum": 0.0, "maximum": 1.0}


def test_unloaded_bundle_is_503_and_stores_nothing(client, app, site, db, before):
    app.state.moderation.engine = None
    response = client.post("/v1/moderate", json=moderate_body(), headers=auth(site))
    assert response.status_code == 503
    assert response.json() == {"detail": "No bundle loaded"}
    assert row_counts(db) == before
