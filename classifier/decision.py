"""From scores to a verdict: a pure function of scores and thresholds.

Thresholds come from the bundle manifest (tuned on a validation slice of the training data) and may
be overridden per site. Keeping this free of model code means the API can re-decide a stored
assessment under another site's policy without scoring again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: The words used everywhere (API, queue, page, database). Order = severity tie-break order.
LABELS: tuple[str, ...] = ("spam", "toxicity", "off_topic")
ATTRIBUTES: tuple[str, ...] = ("insult", "threat", "obscene", "identity_attack", "severe_toxicity")
DECISIONS: tuple[str, ...] = ("approve", "hold", "reject")
MODES: tuple[str, ...] = ("enforce", "log_only")


@dataclass(frozen=True)
class Thresholds:
    """A label's two cut-offs: at or above `hold` a person looks; at or above `reject` it is refused."""

    hold: float
    reject: float

    def __post_init__(self) -> None:
        if not (0.0 <= self.hold <= 1.0 and 0.0 <= self.reject <= 1.0):
            raise ValueError("thresholds must lie in [0, 1]")
        if self.hold > self.reject:
            raise ValueError("hold threshold must not exceed reject threshold")


@dataclass(frozen=True)
class Policy:
    """Per-label thresholds plus the mode (`log_only` always approves but still scores)."""

    thresholds: Mapping[str, Thresholds]
    mode: str = "enforce"

    def with_overrides(
        self, overrides: Mapping[str, Mapping[str, float]] | None = None, *, mode: str | None = None
    ) -> Policy:
        """Return a copy with some labels' thresholds (and/or the mode) replaced.

        `overrides` looks like `{"spam": {"hold": 0.5, "reject": 0.9}}`; a missing key keeps the
        current value. Raises ValueError for unknown labels or modes, or inconsistent values.
        """
        merged = dict(self.thresholds)
        for label, values in (overrides or {}).items():
            if label not in LABELS:
                raise ValueError(f"unknown label {label!r}; expected one of {', '.join(LABELS)}")
            current = merged[label]
            merged[label] = Thresholds(
                hold=float(values.get("hold", current.hold)),
                reject=float(values.get("reject", current.reject)),
            )
        new_mode = self.mode if mode is None else mode
        if new_mode not in MODES:
            raise ValueError(f"unknown mode {new_mode!r}; expected one of {', '.join(MODES)}")
        return Policy(thresholds=merged, mode=new_mode)

    def to_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "thresholds": {k: {"hold": v.hold, "reject": v.reject} for k, v in self.thresholds.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Policy:
        raw = data.get("thresholds", {})
        assert isinstance(raw, Mapping)
        thresholds = {str(k): Thresholds(float(v["hold"]), float(v["reject"])) for k, v in raw.items()}
        return cls(thresholds=thresholds, mode=str(data.get("mode", "enforce")))


@dataclass(frozen=True)
class Decision:
    """The action and the labels that crossed their hold threshold, most severe first."""

    action: str
    flagged: tuple[str, ...] = field(default_factory=tuple)


def decide(scores: Mapping[str, float | None], policy: Policy) -> Decision:
    """Decide approve / hold / reject from scores.

    A label at or above its reject threshold rejects, at or above hold holds; `None` scores (no
    article, so no off-topic score) never count. In `log_only` mode the action is always approve,
    but the flagged labels are still reported so the site can see what would have happened.
    """
    flagged: list[tuple[int, float, str]] = []
    action = "approve"
    for label in LABELS:
        score = scores.get(label)
        limits = policy.thresholds.get(label)
        if score is None or limits is None:
            continue
        if score >= limits.reject:
            action = "reject"
            flagged.append((2, score, label))
        elif score >= limits.hold:
            if action == "approve":
                action = "hold"
            flagged.append((1, score, label))
    flagged.sort(key=lambda item: (-item[0], -item[1]))
    if policy.mode == "log_only":
        action = "approve"
    return Decision(action=action, flagged=tuple(label for _, _, label in flagged))
