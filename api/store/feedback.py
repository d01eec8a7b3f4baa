"""People's decisions as training examples: the retraining loop's view of the `decision` table.

    examples = feedback_examples(session=session)     # oldest first; erased comments skipped

Each comment counts once, with its latest decision (moderator or Akismet submit-spam/submit-ham;
reopened comments are left out), and only while its text is still stored. The labels are what the
person said and nothing more:

    ham        spam 0, toxicity 0 (and off_topic 0 when the comment has an article)
    spam       spam 1, with the confirmed spans as the plug (sentence-level spam rows)
    toxicity   toxicity 1, with the confirmed spans as toxic words (none confirmed: not annotated)
    off_topic  off_topic 1 (used only with an article)
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from api.store.decisions import FeedbackRow, feedback_rows
from classifier.dataset import Example
from classifier.types import Article

#: The `source` of feedback examples (the trainer also builds sentence-level spam rows from it).
FEEDBACK_SOURCE = "feedback"


def _clip(spans: tuple[tuple[int, int], ...], length: int) -> tuple[tuple[int, int], ...]:
    clipped = ((max(0, a), min(b, length)) for a, b in spans)
    return tuple(sorted((a, b) for a, b in clipped if b > a))


def example_from_row(row: FeedbackRow) -> Example:
    """One feedback row as a training example (split `train`; the retrain script holds some back)."""
    has_article = bool(row.article_title or row.article_body)
    article = Article(title=row.article_title or "", body=row.article_body or "") if has_article else None
    spans = _clip(row.spans, len(row.text))
    labels: dict[str, float]
    spam_spans: tuple[tuple[int, int], ...] = ()
    toxic_spans: tuple[tuple[int, int], ...] | None = None
    if row.label == "ham":
        labels = {"spam": 0.0, "toxicity": 0.0}
        if has_article:
            labels["off_topic"] = 0.0
    elif row.label == "spam":
        labels = {"spam": 1.0}
        spam_spans = spans
    elif row.label == "toxicity":
        labels = {"toxicity": 1.0}
        toxic_spans = spans or None
    else:
        labels = {row.label: 1.0}
    return Example(
        text=row.text,
        source=FEEDBACK_SOURCE,
        split="train",
        labels=labels,
        article=article,
        spam_spans=spam_spans,
        toxic_spans=toxic_spans,
        kind=f"feedback_{row.label}",
        meta={
            "label": row.label,
            "comment_id": str(row.comment_id),
            "site_id": str(row.site_id),
            "decided_by": row.source,
            "decided_at": row.decided_at.isoformat(),
            "model_version": row.model_version,
        },
    )


def feedback_examples(*, session: Session, since: datetime | None = None) -> list[Example]:
    """Every usable decision as an Example, oldest decision first."""
    return [example_from_row(row) for row in feedback_rows(session=session, since=since)]
