"""The engine's input and output records: plain dataclasses, so the API and CLI can convert them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Article:
    """The story a comment was posted under; off-topic is measured against it."""

    title: str = ""
    body: str = ""

    @property
    def is_empty(self) -> bool:
        return not (self.title.strip() or self.body.strip())


@dataclass(frozen=True)
class Span:
    """Evidence in the ORIGINAL comment text: `text == original[start:end]` (Python str indices)."""

    start: int
    end: int
    text: str

    def to_dict(self) -> dict[str, object]:
        return {"start": self.start, "end": self.end, "text": self.text}


@dataclass(frozen=True)
class Reason:
    """Why a label was flagged: its score, the evidence spans and short named signals."""

    label: str
    score: float
    spans: tuple[Span, ...] = ()
    signals: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "score": round(self.score, 6),
            "spans": [s.to_dict() for s in self.spans],
            "signals": list(self.signals),
        }


@dataclass(frozen=True)
class Assessment:
    """Everything the engine says about one comment.

    `scores` holds `spam`, `toxicity` and `off_topic` (None without an article); `attributes` the
    five toxicity attributes; `reasons` one entry per flagged label, most severe first;
    `evidence` holds the spans for every label even when it was not flagged, so a moderator or a
    site with lower thresholds can still see them.
    """

    decision: str
    scores: dict[str, float | None]
    attributes: dict[str, float]
    reasons: tuple[Reason, ...]
    model_version: str
    evidence: dict[str, Reason] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """The stable output shape of `moderato score` and the API (without ids)."""
        return {
            "decision": self.decision,
            "scores": {k: (None if v is None else round(v, 6)) for k, v in self.scores.items()},
            "attributes": {k: round(v, 6) for k, v in self.attributes.items()},
            "reasons": [r.to_dict() for r in self.reasons],
            "model_version": self.model_version,
        }
