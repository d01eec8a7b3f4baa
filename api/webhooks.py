"""Sending webhooks from the outbox: sign, POST, record every attempt, back off, give up (bounded).

    X-Moderato-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the site's secret>

A receiving platform verifies with `api.security.signature_matches(secret, raw_body, header)`.
"""

from __future__ import annotations

import logging
import time

import httpx

from api.config import Settings
from api.db import Database
from api.observability import Metrics
from api.schemas import Site, WebhookDelivery, utcnow
from api.security import webhook_signature
from api.store.webhooks import claim_due_deliveries, record_attempt
from api.writer import Writer

log = logging.getLogger("moderato.webhooks")
USER_AGENT = "Moderato-Webhooks/1"


class WebhookSender:
    """Delivers due webhooks; `deliver_due()` is one round (the background task calls it)."""

    def __init__(self, *, db: Database, writer: Writer, settings: Settings, metrics: Metrics | None = None) -> None:
        self.db = db
        self.writer = writer
        self.settings = settings
        self.metrics = metrics
        self.client = httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    def deliver_due(self) -> int:
        """Send every due delivery once; returns how many were attempted."""
        ids = self.writer.run_sync(lambda session: claim_due_deliveries(session=session))
        for delivery_id in ids:
            self._attempt(delivery_id)
        return len(ids)

    def _attempt(self, delivery_id: int) -> None:
        with self.db.read_session() as session:
            delivery = session.get(WebhookDelivery, delivery_id)
            site = session.get(Site, delivery.site_id) if delivery else None
            if delivery is None or site is None:
                return
            url, body, secret, event = (
                delivery.url,
                delivery.payload.encode(),
                site.webhook_secret or "",
                delivery.event,
            )
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Moderato-Event": event,
            "X-Moderato-Delivery": str(delivery_id),
            "X-Moderato-Signature": webhook_signature(secret, body),
        }
        started_at = utcnow()
        started = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        try:
            response = self.client.post(url, content=body, headers=headers)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        duration_ms = (time.perf_counter() - started) * 1000
        settings = self.settings
        result = self.writer.run_sync(
            lambda session: record_attempt(
                session=session,
                delivery_id=delivery_id,
                started_at=started_at,
                duration_ms=duration_ms,
                status_code=status_code,
                error=error,
                max_attempts=settings.webhook_max_attempts,
                backoff=settings.webhook_backoff_seconds,
                backoff_cap=settings.webhook_backoff_cap_seconds,
            )
        )
        outcome = "delivered" if error is None else ("failed" if result.status == "failed" else "retry")
        if self.metrics is not None:
            self.metrics.webhook_attempts.labels(outcome=outcome).inc()
        log.info(
            "webhook attempt",
            extra={
                "event": "webhook.attempt",
                "delivery": delivery_id,
                "attempt": result.attempts,
                "outcome": outcome,
                "status_code": status_code,
                "error": error,
                "duration_ms": round(duration_ms, 1),
            },
        )
