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


ROLLBACK_NOTE = "rollback from "


def promotion_stack(*, session: Session) -> list[str]:
    """Promoted versions as an undo stack: a promotion pushes, a rollback (note `rollback from X`) pops."""
    stack: list[str] = []
    for row in promotion_history(session=session):
        if row.note and row.note.startswith(ROLLBACK_NOTE):
            if stack:
                stack.pop()
            if not stack or stack[-1] != row.version:
                stack.append(row.version)
        else:
            stack.append(row.version)
    return stack


def rollback_target(*, session: Session, default: str) -> str | None:
    """The version before the current one (`default` below the first promotion), or None."""
    stack = promotion_stack(session=session)
    if len(stack) >= 2:
        return stack[-2]
    if len(stack) == 1 and stack[0] != default:
        return default
    return None
