"""Seeding helpers shared by the queue API, page and browser tests."""

from __future__ import annotations

from typing import Any

from api.db import Database
from api.schemas import Moderator
from api.store.sites import NewSite, create_moderator
from tests.api.conftest import FOUNDING_ARTICLE, FOUNDING_TEXT, auth, force_verdict, moderate_body

HOSTILE_TEXT = "Nice post <script>alert(1)</script><img src=x onerror=alert(2)> visit cheap-pills.example now!"


def new_moderator(db: Database, site: NewSite, name: str = "ada", role: str = "moderator") -> tuple[Moderator, str]:
    with db.write_session() as session:
        return create_moderator(session=session, site_name=site.site.name, name=name, role=role)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def seed_held(client: Any, db: Database, site: NewSite, texts: list[str] | None = None) -> list[dict[str, Any]]:
    """Hold every comment the site receives, then post `texts`; returns the verdicts in order."""
    force_verdict(db, site, "hold")
    texts = texts or [FOUNDING_TEXT, "You are an idiot and a moron.", HOSTILE_TEXT]
    verdicts = []
    for i, text in enumerate(texts):
        body = moderate_body(text, f"{site.site.name}-{i}", author={"name": f"author{i}", "email": f"a{i}@x.example"})
        body["article"] = FOUNDING_ARTICLE if i % 2 == 0 else {"id": "other-article", "title": "Bike lanes"}
        response = client.post("/v1/moderate", json=body, headers=auth(site))
        assert response.status_code == 200, response.text
        verdicts.append(response.json())
    return verdicts
