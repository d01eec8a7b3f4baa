"""Which bundle version is promoted: recorded in the database so every worker and host agrees."""

from __future__ import annotations

from sqlmodel import Session, col, select

from api.schemas import BundlePromotion, utcnow


def record_promotion(
    *, session: Session, version: str, promoted_by: str | None = None, note: str | None = None
) -> BundlePromotion:
    row = BundlePromotion(version=version, promoted_by=promoted_by, note=note, promoted_at=utcnow())
    session.add(row)
    session.flush()
    return row


def promoted_version(*, session: Session) -> str | None:
    """The newest promotion's version, or None (serve the packaged default bundle)."""
    return session.exec(select(BundlePromotion.version).order_by(col(BundlePromotion.id).desc())).first()


def promotion_history(*, session: Session) -> list[BundlePromotion]:
    return list(session.exec(select(BundlePromotion).order_by(col(BundlePromotion.id))))
