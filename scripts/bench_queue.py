"""Queue latency with N pending comments: GET /v1/queue (several shapes) and GET /moderate.

    python scripts/bench_queue.py                   # 10,000 pending comments, 200 requests per case
    python scripts/bench_queue.py --comments 50000 --requests 100

A benchmark, not a test: it seeds a temporary SQLite database through the real schema (Alembic),
starts the real service with uvicorn on a free loopback port, and times sequential requests from
an httpx client in this process (the numbers include HTTP, JSON/HTML rendering and the queries).
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy import insert

from api.config import Settings
from api.db import Database, migrate
from api.main import create_app
from api.schemas import Article, Comment, SiteCreate
from api.store.sites import create_moderator, create_site
from classifier import Engine

PLUG = "My car insurance is only $25/month from Insurance Panda."


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed(db: Database, n: int, *, other_sites: int = 1) -> tuple[str, int]:
    """A site with `n` pending comments (plus decided ones, and another site's); returns (secret, site id)."""
    rng = random.Random(7)
    with db.write_session() as session:
        site = create_site(session=session, site_in=SiteCreate(name="bench")).site
        _, secret = create_moderator(session=session, site_name="bench", name="bench")
        for i in range(other_sites):
            create_site(session=session, site_in=SiteCreate(name=f"other-{i}"))
        articles = [Article(site_id=site.id, external_id=f"a-{i}", title=f"Article number {i}") for i in range(50)]
        session.add_all(articles)
        session.flush()
        article_ids = [a.id for a in articles]
    assert site.id is not None
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = []
    total = n + n // 2  # a third more decided comments, so the status index matters
    for i in range(total):
        text = f"Comment {i}: this outage proves nobody has a plan. {PLUG} Anyway, sanctions are not working."
        spam = rng.random()
        status = "pending" if i < n else rng.choice(["approved", "rejected"])
        plug_start = text.index(PLUG)
        reason = {
            "label": "spam",
            "score": spam,
            "spans": [{"start": plug_start, "end": plug_start + len(PLUG), "text": PLUG}],
            "signals": ["price"],
        }
        rows.append(
            {
                "site_id": site.id,
                "external_id": f"c-{i}",
                "article_id": article_ids[i % len(article_ids)],
                "article_ref": f"a-{i % len(article_ids)}",
                "text": text,
                "author_name": f"author{i % 300}",
                "mode": "enforce",
                "decision": "hold",
                "status": status,
                "label": "spam",
                "score_spam": spam,
                "score_toxicity": rng.random() * 0.2,
                "score_off_topic": None,
                "max_score": spam,
                "attributes": {},
                "reasons": [reason],
                "evidence": {"spam": reason},
                "model_version": "bench",
                "created_at": start + timedelta(seconds=i),
                "updated_at": start + timedelta(seconds=i),
            }
        )
    with db.writer.begin() as connection:
        for chunk in range(0, len(rows), 2000):
            connection.execute(insert(Comment), rows[chunk : chunk + 2000])
    return secret, site.id


def timed(client: httpx.Client, url: str, requests: int, **kwargs: object) -> dict[str, float]:
    client.get(url, **kwargs)  # type: ignore[arg-type]  # warm-up
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url, **kwargs)  # type: ignore[arg-type]
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")
    samples.sort()
    return {
        "p50": statistics.median(samples),
        "p95": samples[int(len(samples) * 0.95) - 1],
        "max": samples[-1],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=10_000, help="pending comments to seed")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per case")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'moderato.db'}"
        migrate(url)
        db = Database.from_url(url)
        seeded = time.perf_counter()
        secret, _ = seed(db, args.comments)
        print(f"seeded {args.comments} pending (+{args.comments // 2} decided) in {time.perf_counter() - seeded:.1f}s")
        settings = Settings(
            data_dir=Path(tmp), database_url_override=url, auto_migrate=False, log_level="WARNING", log_json=True
        )
        app = create_app(settings, engine=Engine.load(None))
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}) as client:
                first = client.get("/v1/queue?limit=50").json()
                deep = first
                for _ in range(20):  # walk 20 pages in, to time a deep cursor
                    deep = client.get(f"/v1/queue?limit=50&cursor={deep['next_cursor']}").json()
                cases = {
                    "GET /v1/queue (pending, score, 50)": "/v1/queue?limit=50",
                    "GET /v1/queue sort=oldest": "/v1/queue?limit=50&sort=oldest",
                    "GET /v1/queue page 21 (cursor)": f"/v1/queue?limit=50&cursor={deep['next_cursor']}",
                    "GET /v1/queue min_score=0.9 author=author7": "/v1/queue?min_score=0.9&author=author7",
                    "GET /v1/queue article_id=a-3": "/v1/queue?article_id=a-3&sort=oldest",
                    "GET /v1/queue limit=200": "/v1/queue?limit=200",
                }
                results = {name: timed(client, path, args.requests) for name, path in cases.items()}
            with httpx.Client(base_url=base) as browser:
                login = browser.get("/moderate/login")
                csrf = login.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
                browser.post("/moderate/login", data={"secret": secret, "csrf": csrf})
                results["GET /moderate (page, 50 rows)"] = timed(browser, "/moderate", args.requests)
                results["GET /moderate sort=oldest"] = timed(browser, "/moderate?sort=oldest", args.requests)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            db.dispose()
    print(f"counts: {first['counts']}")
    print(f"| case ({args.comments} pending) | p50 ms | p95 ms | max ms |")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['p50']:.1f} | {r['p95']:.1f} | {r['max']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
