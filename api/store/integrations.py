"""Storing comments that arrive through another product's format (Perspective, Coral).

They are stored exactly like `/v1/moderate` stores them (`store_assessment`), with two differences a
caller may ask for: `queueable=False` keeps the comment out of Moderato's review queue, and
`keep_text=False` (Perspective's `doNotStore`) never writes the text: the row keeps scores, decision
and span offsets only, so it reaches neither the queue nor the retraining feedback.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import update
from sqlmodel import Session, col

from api.schemas import ArticleIn, Comment, CommentIn, Site
from api.store.comments import StoredVerdict, store_assessment
from classifier import Assessment, Reason, Span


def _without_text(reason: Reason) -> Reason:
    # Offsets stay (they say where the evidence was); the words do not.
    return replace(reason, spans=tuple(Span(s.start, s.end, None) for s in reason.spans))  # type: ignore[arg-type]


def textless(assessment: Assessment) -> Assessment:
    """The assessment with every evidence span's text removed."""
    return replace(
        assessment,
        reasons=tuple(_without_text(r) for r in assessment.reasons),
        evidence={k: _without_text(r) for k, r in assessment.evidence.items()},
    )


def store_integration_comment(
    *,
    session: Session,
    site: Site,
    comment_in: CommentIn,
    article_in: ArticleIn | None,
    assessment: Assessment,
    source: str,
    queueable: bool = True,
    keep_text: bool = True,
) -> StoredVerdict:
    """`store_assessment`, then mark the row out of the queue and/or without text (same transaction)."""
    if not keep_text:
        assessment = textless(assessment)
        # The text never reaches the database: an empty placeholder goes in and is nulled below.
        comment_in = CommentIn.model_construct(id=None, text="", author=None, parent_id=comment_in.parent_id)
    stored = store_assessment(
        session=session,
        site=site,
        comment_in=comment_in,
        article_in=article_in,
        assessment=assessment,
        mode=site.policy_mode,
        source=source,
    )
    if stored.created and (not queueable or not keep_text):
        values: dict[str, object] = {"queueable": queueable}
        if not keep_text:
            values.update(text=None, text_sha256=None)
        session.execute(update(Comment).where(col(Comment.id) == stored.verdict.id).values(**values))
    return stored
