"""The webhook outbox: a row per event written with the decision, one row per delivery attempt.

Delivery (`api.webhooks.WebhookDispatcher`) claims due rows with a lease, so several workers or
hosts can share the outbox without sending an event twice at once.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from api.schemas import Comment, Site, WebhookAttempt, WebhookDelivery, utcnow
from api.writer import request_hook

EVENT_DECIDED = "comment.decided"
#: Flag for `Writer.on_commit`: a committed batch queued webhooks.
WEBHOOKS_QUEUED = "webhooks_queued"
LEASE = timedelta(seconds=60)


def webhook_payload(*, site: Site, comment: Comment, decided_at: datetime) -> bytes:
    body = {
        "event": EVENT_DECIDED,
        "id": comment.id,
        "comment_id": comment.external_id,
        "site": site.name,
        "status": comment.status,
        "label": comment.label,
        "decided_at": decided_at.isoformat().replace("+00:00", "Z"),
        "model_version": comment.model_version,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def enqueue_webhook(
    *, session: Session, site: Site, comment: Comment, decision_id: int | None, now: datetime | None = None
) -> WebhookDelivery:
    now = now or utcnow()
    assert site.id is not None and comment.id is not None and site.webhook_url
    delivery = WebhookDelivery(
        site_id=site.id,
        comment_id=comment.id,
        decision_id=decision_id,
        event=EVENT_DECIDED,
        url=site.webhook_url,
        payload=webhook_payload(site=site, comment=comment, decided_at=now).decode(),
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    session.flush()
    request_hook(session, WEBHOOKS_QUEUED)
    return delivery


def backoff_delay(attempt: int, *, base: float, cap: float) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): base, 2*base, 4*base, ..., cap."""
    return float(min(cap, base * (2 ** (attempt - 1))))


def claim_due_deliveries(*, session: Session, now: datetime | None = None, limit: int = 20) -> list[int]:
    """Lease up to `limit` due pending deliveries to this worker; returns their ids."""
    now = now or utcnow()
    due = session.exec(
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            or_(col(WebhookDelivery.locked_until).is_(None), col(WebhookDelivery.locked_until) < now),
        )
        .order_by(col(WebhookDelivery.next_attempt_at))
        .limit(limit)
    ).all()
    claimed: list[int] = []
    for delivery_id in due:
        result = session.execute(
            update(WebhookDelivery)
            .where(
                col(WebhookDelivery.id) == delivery_id,
                col(WebhookDelivery.status) == "pending",
                or_(col(WebhookDelivery.locked_until).is_(None), col(WebhookDelivery.locked_until) < now),
            )
            .values(locked_until=now + LEASE)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            assert delivery_id is not None
            claimed.append(delivery_id)
    return claimed


def record_attempt(
    *,
    session: Session,
    delivery_id: int,
    started_at: datetime,
    duration_ms: float,
    status_code: int | None,
    error: str | None,
    max_attempts: int,
    backoff: float,
    backoff_cap: float,
) -> WebhookDelivery:
    """Store one attempt; mark delivered (2xx), schedule a retry with backoff, or give up."""
    delivery = session.get(WebhookDelivery, delivery_id)
    assert delivery is not None
    delivery.attempts += 1
    session.add(
        WebhookAttempt(
            delivery_id=delivery_id,
            number=delivery.attempts,
            started_at=started_at,
            duration_ms=duration_ms,
            status_code=status_code,
            error=(error or None) and error[:500],
        )
    )
    finished = utcnow()
    if status_code is not None and 200 <= status_code < 300:
        delivery.status = "delivered"
        delivery.delivered_at = finished
    elif delivery.attempts >= max_attempts:
        delivery.status = "failed"
    else:
        delivery.next_attempt_at = finished + timedelta(
            seconds=backoff_delay(delivery.attempts, base=backoff, cap=backoff_cap)
        )
    delivery.locked_until = None
    session.add(delivery)
    session.flush()
    return delivery


def deliveries_for_comment(*, session: Session, comment_id: int) -> list[WebhookDelivery]:
    return list(
        session.exec(
            select(WebhookDelivery).where(WebhookDelivery.comment_id == comment_id).order_by(col(WebhookDelivery.id))
        )
    )


def attempts_for_delivery(*, session: Session, delivery_id: int) -> list[WebhookAttempt]:
    return list(
        session.exec(
            select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id).order_by(col(WebhookAttempt.number))
        )
    )
