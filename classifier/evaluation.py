"""Evaluation of a bundle on held-out rows: the `dev` split of every shared corpus and of training_data/.

Every number here is computed through `Engine.assess_batch` (exactly what `Engine.assess`, the path
the service uses, says for each comment), so what is reported is what users get (thresholds,
calibration, spans and all).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)

from classifier.dataset import Example, load_shared, load_training_data, with_split
from classifier.decision import ATTRIBUTES
from classifier.engine import Engine
from classifier.training import span_f1
from classifier.types import Assessment

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Floor:
    """A minimum a metric must reach; evaluation fails when one is missed."""

    dataset: str
    label: str
    metric: str
    minimum: float | None = None
    maximum: float | None = None

    def passed(self, value: float | None) -> bool:
        if value is None:
            return False
        if self.minimum is not None and value < self.minimum:
            return False
        return not (self.maximum is not None and value > self.maximum)


#: The floors of issue 2 (all measured on dev rows only).
FLOORS: tuple[Floor, ...] = (
    Floor("youtube", "spam", "roc_auc", 0.99),
    Floor("youtube", "spam", "f1", 0.95),
    Floor("davidson", "toxicity", "roc_auc", 0.985),
    Floor("jigsaw5k", "mean_attributes", "roc_auc", 0.975),
    Floor("civil", "toxicity", "roc_auc", 0.82),
    Floor("wiki_talk", "toxicity", "roc_auc", 0.85),
    Floor("toxicspans", "toxicity", "span_f1", 0.60),
    Floor("training_data", "embedded_spam", "located_recall", 0.90),
    Floor("training_data", "off_topic", "roc_auc", 0.93),
)

#: Per dataset: which of our scores answers which of its labels.
TASKS: dict[str, tuple[str, ...]] = {
    "youtube": ("spam",),
    "sms": ("spam",),
    "davidson": ("toxicity",),
    "jigsaw5k": ("toxicity", *ATTRIBUTES),
    "jigsaw_sample": ("toxicity", *ATTRIBUTES),
    "civil": ("toxicity", *ATTRIBUTES),
    "wiki_talk": ("toxicity",),
    "toxicspans": ("toxicity",),
    "training_data": ("spam", "toxicity", "off_topic", *ATTRIBUTES),
}


@dataclass
class LabelResult:
    label: str
    n: int
    positives: int
    metrics: dict[str, float | None]
    curve: tuple[np.ndarray, np.ndarray] | None = None
    confusion: np.ndarray | None = None


@dataclass
class DatasetResult:
    name: str
    rows: int
    labels: dict[str, LabelResult] = field(default_factory=dict)
    extra: dict[str, float | None] = field(default_factory=dict)


def score_of(assessment: Assessment, label: str) -> float | None:
    if label in assessment.scores:
        return assessment.scores[label]
    return assessment.attributes.get(label)


def plug_located(assessment: Assessment, plug: tuple[int, int]) -> bool:
    """Issue 2's rule: the spam spans cover at least half of the plug, and at least half of the spans are plug."""
    spam = [r for r in assessment.reasons if r.label == "spam"]
    if not spam:
        return False
    chars = {c for s in spam[0].spans for c in range(s.start, s.end)}
    plug_chars = set(range(*plug))
    if not chars or not plug_chars:
        return False
    inside = len(chars & plug_chars)
    return inside * 2 >= len(plug_chars) and inside * 2 >= len(chars)


def label_result(label: str, y: np.ndarray, p: np.ndarray, hold: float | None, reject: float | None) -> LabelResult:
    metrics: dict[str, float | None] = {}
    positives = int(y.sum())
    both = 0 < positives < len(y)
    metrics["roc_auc"] = float(roc_auc_score(y, p)) if both else None
    metrics["pr_auc"] = float(average_precision_score(y, p)) if both else None
    curve = confusion = None
    if both:
        precision, recall, _ = precision_recall_curve(y, p)
        curve = (recall, precision)
    if hold is not None:
        predicted = p >= hold
        metrics["precision"] = float(precision_score(y, predicted, zero_division=0))
        metrics["recall"] = float(recall_score(y, predicted, zero_division=0))
        metrics["f1"] = float(f1_score(y, predicted, zero_division=0))
        confusion = confusion_matrix(y, predicted, labels=[0, 1])
    if reject is not None and (y == 0).any():
        metrics["ham_fpr_at_reject"] = float((p[y == 0] >= reject).mean())
    return LabelResult(label, len(y), positives, metrics, curve, confusion)


def evaluate_dataset(
    engine: Engine, name: str, examples: Sequence[Example], labels: Sequence[str], *, progress: Progress | None = None
) -> DatasetResult:
    result = DatasetResult(name, len(examples))
    assessments = []
    for start in range(0, len(examples), 5000):
        chunk = examples[start : start + 5000]
        assessments.extend(engine.assess_batch([(e.text, e.article) for e in chunk]))
        if progress and start:
            progress(f"{name}: {start}/{len(examples)}")
    thresholds = engine.policy.thresholds
    for label in labels:
        idx = [k for k, e in enumerate(examples) if label in e.labels and score_of(assessments[k], label) is not None]
        if not idx:
            continue
        y = np.array([examples[k].labels[label] >= 0.5 for k in idx], dtype=int)
        p = np.array([score_of(assessments[k], label) for k in idx], dtype=float)
        limits = thresholds.get(label)
        result.labels[label] = label_result(
            label, y, p, limits.hold if limits else 0.5, limits.reject if limits else None
        )
    if name == "jigsaw5k":
        aucs = [
            r.metrics["roc_auc"]
            for r in result.labels.values()
            if r.positives >= 20 and r.metrics["roc_auc"] is not None
        ]
        result.extra["mean_attributes_roc_auc"] = float(np.mean(aucs)) if aucs else None
        result.extra["mean_attributes_labels"] = float(len(aucs))
    if name == "toxicspans":
        f1s = []
        for e, a in zip(examples, assessments, strict=True):
            predicted = {c for r in a.reasons if r.label == "toxicity" for s in r.spans for c in range(s.start, s.end)}
            gold = {c for s, t in e.toxic_spans or () for c in range(s, t)}
            f1s.append(span_f1(predicted, gold))
        result.extra["span_f1"] = float(np.mean(f1s))
    if name == "training_data":
        embedded = [(e, a) for e, a in zip(examples, assessments, strict=True) if e.kind == "embedded_spam"]
        if embedded:
            hold = thresholds["spam"].hold
            result.extra["embedded_spam_recall"] = float(
                np.mean([(a.scores["spam"] or 0) >= hold for _, a in embedded])
            )
            result.extra["embedded_spam_located_recall"] = float(
                np.mean([plug_located(a, e.spam_spans[0]) for e, a in embedded if e.spam_spans])
            )
        hard = [a for e, a in zip(examples, assessments, strict=True) if e.kind == "hard_ham"]
        if hard:
            result.extra["hard_ham_held_rate"] = float(np.mean([a.decision != "approve" for a in hard]))
    return result


def dev_sets(corpora_dir: Path | None, training_data_dir: Path | None) -> dict[str, list[Example]]:
    """The held-out rows: the `dev` split of every shared corpus and of training_data/."""
    sets: dict[str, list[Example]] = {}
    if corpora_dir is not None and corpora_dir.exists():
        for name, rows in load_shared(corpora_dir).items():
            sets[name] = with_split(rows, "dev")
    if training_data_dir is not None and (training_data_dir / "comments.jsonl").exists():
        sets["training_data"] = with_split(load_training_data(training_data_dir), "dev")
    return sets


def evaluate(
    engine: Engine, sets: dict[str, list[Example]], *, progress: Progress | None = None
) -> dict[str, DatasetResult]:
    return {name: evaluate_dataset(engine, name, rows, TASKS[name], progress=progress) for name, rows in sets.items()}


def floor_value(results: dict[str, DatasetResult], floor: Floor) -> float | None:
    result = results.get(floor.dataset)
    if result is None:
        return None
    if floor.label == "mean_attributes":
        return result.extra.get("mean_attributes_roc_auc")
    if floor.metric == "span_f1":
        return result.extra.get("span_f1")
    if floor.metric == "located_recall":
        return result.extra.get("embedded_spam_located_recall")
    label = result.labels.get(floor.label)
    return None if label is None else label.metrics.get(floor.metric)


def check_floors(results: dict[str, DatasetResult]) -> list[tuple[Floor, float | None, bool]]:
    """Each floor of a dataset that was evaluated, plus ham FPR at reject <= 1% on every set with ham."""
    checks: list[tuple[Floor, float | None, bool]] = []
    for floor in FLOORS:
        if floor.dataset in results:
            value = floor_value(results, floor)
            checks.append((floor, value, floor.passed(value)))
    for name, result in results.items():
        for label, r in result.labels.items():
            fpr = r.metrics.get("ham_fpr_at_reject")
            if fpr is not None and label in ("spam", "toxicity", "off_topic"):
                floor = Floor(name, label, "ham_fpr_at_reject", maximum=0.01)
                checks.append((floor, fpr, floor.passed(fpr)))
    return checks


def summary(results: dict[str, DatasetResult]) -> dict[str, Any]:
    return {
        name: {
            "rows": r.rows,
            "labels": {k: {"n": v.n, "positives": v.positives, **v.metrics} for k, v in r.labels.items()},
            **r.extra,
        }
        for name, r in results.items()
    }
