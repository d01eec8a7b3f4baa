"""Retraining, the pure-ML half: hold back the newest feedback, judge a candidate bundle against the
current one, decide whether to promote it, and write its model card.

    train, held_back = hold_back_newest(feedback)            # oldest first in, newest slice out
    current = evaluate_all(current_engine, sets, held_back)
    candidate = evaluate_all(candidate_engine, sets, held_back)
    gate = compare(current, candidate, tolerance=0.005)
    print(side_by_side(current, candidate)); gate.promote, gate.reasons
    write_model_card(candidate_engine, candidate, out_dir, gate=gate)

The database side (reading decisions, recording promotions) lives in `api/`; this module only sees
`Example` rows and engines, so it can be tested without a database.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from classifier.dataset import Example
from classifier.decision import LABELS
from classifier.engine import Engine
from classifier.evaluation import DatasetResult, check_floors, evaluate, evaluate_dataset, score_of
from classifier.report import floors_table, metrics_table, other_measures, write_report
from classifier.types import Assessment

Progress = Callable[[str], None]

#: The name of the held-back feedback slice among the evaluation sets.
FEEDBACK = "feedback"
#: Share of each label's newest feedback kept out of training to judge the candidate.
HOLDOUT_FRACTION = 0.2
DEFAULT_TOLERANCE = 0.005
#: Fewer positives than this in a dev set: the label's ROC AUC there is too noisy to gate on.
MIN_POSITIVES = 20


def feedback_label(example: Example) -> str:
    """The person's label of a feedback example: spam | toxicity | off_topic | ham."""
    return example.meta.get("label", "ham")


def hold_back_newest(
    examples: Sequence[Example], *, fraction: float = HOLDOUT_FRACTION
) -> tuple[list[Example], list[Example]]:
    """Split feedback (oldest first) into rows to train on and the newest `fraction` of each label.

    Per label, so a slice of the newest rows never ends up all spam or all ham. A label with a single
    row is trained on (there is nothing to compare it with).
    """
    by_label: dict[str, list[int]] = {}
    for i, example in enumerate(examples):
        by_label.setdefault(feedback_label(example), []).append(i)
    held: set[int] = set()
    for indices in by_label.values():
        n = len(indices)
        if n < 2:
            continue
        k = min(n - 1, max(1, math.ceil(fraction * n)))
        held.update(indices[-k:])
    train = [e for i, e in enumerate(examples) if i not in held]
    back = [e for i, e in enumerate(examples) if i in held]
    return train, back


# ---------------------------------------------------------------------------------------------
# Evaluation of one engine on every set


def agrees(engine: Engine, example: Example, assessment: Assessment) -> bool:
    """Did the engine do what the person did? Ham: approve; a label: flag that label (score >= hold)."""
    label = feedback_label(example)
    if label == "ham":
        return assessment.decision == "approve"
    score = score_of(assessment, label)
    limits = engine.policy.thresholds.get(label)
    return score is not None and limits is not None and score >= limits.hold


def evaluate_feedback(engine: Engine, examples: Sequence[Example]) -> DatasetResult:
    """The held-back feedback: per-label metrics, plus `agreement` with the people and the Brier score."""
    labels = [name for name in LABELS if any(name in e.labels for e in examples)]
    result = evaluate_dataset(engine, FEEDBACK, examples, labels)
    if examples:
        assessments = [engine.assess(e.text, e.article) for e in examples]
        result.extra["agreement"] = float(
            np.mean([agrees(engine, e, a) for e, a in zip(examples, assessments, strict=True)])
        )
        squared = [
            (p - y) ** 2
            for e, a in zip(examples, assessments, strict=True)
            for name, y in e.labels.items()
            if (p := score_of(a, name)) is not None
        ]
        result.extra["brier"] = float(np.mean(squared)) if squared else None
    return result


def evaluate_all(
    engine: Engine,
    sets: dict[str, list[Example]],
    held_back: Sequence[Example],
    *,
    progress: Progress | None = None,
) -> dict[str, DatasetResult]:
    """Dev sets (shared corpora, training_data/) and the held-back feedback, for one engine."""
    results = evaluate(engine, sets, progress=progress)
    if held_back:
        results[FEEDBACK] = evaluate_feedback(engine, held_back)
    return results


# ---------------------------------------------------------------------------------------------
# The promotion gate


@dataclass
class Gate:
    """The verdict on a candidate: `promote`, and every reason (failures first)."""

    promote: bool
    reasons: list[str] = field(default_factory=list)
    auc_drops: list[str] = field(default_factory=list)
    feedback_improved: bool = False

    def summary(self) -> str:
        return "; ".join(self.reasons)


def _auc(results: dict[str, DatasetResult], dataset: str, label: str) -> float | None:
    result = results.get(dataset)
    if result is None or label not in result.labels:
        return None
    return result.labels[label].metrics.get("roc_auc")


def feedback_improves(current: DatasetResult | None, candidate: DatasetResult | None) -> tuple[bool, str]:
    """Better agreement with the people on the held-back slice; on a tie, a lower Brier score."""
    if candidate is None or current is None or not candidate.rows:
        return False, "no held-back feedback to judge the candidate on"
    a_cur, a_new = current.extra.get("agreement"), candidate.extra.get("agreement")
    b_cur, b_new = current.extra.get("brier"), candidate.extra.get("brier")
    assert a_cur is not None and a_new is not None
    text = f"held-back feedback ({candidate.rows} rows) agreement {a_cur:.3f} -> {a_new:.3f}"
    if a_new > a_cur + 1e-9:
        return True, text
    if abs(a_new - a_cur) <= 1e-9 and b_cur is not None and b_new is not None and b_new < b_cur - 1e-6:
        return True, f"{text}, Brier {b_cur:.4f} -> {b_new:.4f}"
    if b_cur is not None and b_new is not None:
        text = f"{text}, Brier {b_cur:.4f} -> {b_new:.4f}"
    return False, f"{text}: not better"


def compare(
    current: dict[str, DatasetResult],
    candidate: dict[str, DatasetResult],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    min_positives: int = MIN_POSITIVES,
) -> Gate:
    """Promote only if no label's ROC AUC drops by more than `tolerance` on any dev set, and the
    held-back feedback slice improves. A label with fewer than `min_positives` positive rows in a
    set is shown but not gated there (its ROC AUC moves by more than the tolerance on noise alone)."""
    drops = []
    for dataset, result in candidate.items():
        if dataset == FEEDBACK:
            continue
        for label, label_result in result.labels.items():
            if label_result.positives < min_positives:
                continue
            before, after = _auc(current, dataset, label), _auc(candidate, dataset, label)
            if before is None or after is None:
                continue
            if after < before - tolerance:
                drops.append(f"{dataset}/{label} ROC AUC {before:.4f} -> {after:.4f} (drop > {tolerance})")
    improved, feedback_text = feedback_improves(current.get(FEEDBACK), candidate.get(FEEDBACK))
    reasons = [*drops]
    if not improved:
        reasons.append(feedback_text)
    if not drops:
        reasons.append(f"no ROC AUC dropped by more than {tolerance}")
    if improved:
        reasons.append(feedback_text)
    return Gate(promote=not drops and improved, reasons=reasons, auc_drops=drops, feedback_improved=improved)


# ---------------------------------------------------------------------------------------------
# Side by side


def _fmt(value: float | None) -> str:
    return "     –" if value is None else f"{value:6.3f}"


def comparison_rows(
    current: dict[str, DatasetResult], candidate: dict[str, DatasetResult]
) -> list[tuple[str, str, str, float | None, float | None]]:
    """(dataset, label, metric, current, candidate) for every metric both can be compared on."""
    rows: list[tuple[str, str, str, float | None, float | None]] = []
    for dataset, result in candidate.items():
        before_result = current.get(dataset)
        for label, r in result.labels.items():
            before = before_result.labels.get(label) if before_result else None
            for metric in ("roc_auc", "recall", "ham_fpr_at_reject"):
                after_value = r.metrics.get(metric)
                before_value = before.metrics.get(metric) if before else None
                if after_value is None and before_value is None:
                    continue
                rows.append((dataset, label, metric, before_value, after_value))
        for key in ("agreement", "brier", "embedded_spam_recall", "span_f1", "mean_attributes_roc_auc"):
            if key in result.extra:
                before_value = before_result.extra.get(key) if before_result else None
                rows.append((dataset, "", key, before_value, result.extra[key]))
    return rows


def side_by_side(
    current: dict[str, DatasetResult],
    candidate: dict[str, DatasetResult],
    *,
    names: tuple[str, str] = ("current", "candidate"),
) -> str:
    """A plain-text table, one metric per line: current | candidate | change."""
    rows = comparison_rows(current, candidate)
    header = f"{'dataset':<14} {'label':<16} {'metric':<22} {names[0]:>10} {names[1]:>10} {'change':>8}"
    lines = [header, "-" * len(header)]
    for dataset, label, metric, before, after in rows:
        change = "" if before is None or after is None else f"{after - before:+8.3f}"
        lines.append(f"{dataset:<14} {label:<16} {metric:<22} {_fmt(before):>10} {_fmt(after):>10} {change:>8}")
    return "\n".join(lines)


def comparison_markdown(current: dict[str, DatasetResult], candidate: dict[str, DatasetResult]) -> str:
    lines = ["| dataset | label | metric | current | candidate | change |", "|---|---|---|---|---|---|"]
    for dataset, label, metric, before, after in comparison_rows(current, candidate):
        change = "" if before is None or after is None else f"{after - before:+.3f}"
        lines.append(f"| {dataset} | {label} | {metric} | {_fmt(before).strip()} | {_fmt(after).strip()} | {change} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Model card


def _sources_table(sources: dict[str, Any]) -> str:
    lines = ["| source | rows | file / note |", "|---|---|---|"]
    for name, info in sources.items():
        info = info if isinstance(info, dict) else {"rows": info}
        note = info.get("file") or info.get("from") or info.get("note") or ", ".join(info.get("sha256", {}))
        lines.append(f"| {name} | {info.get('rows', '–')} | {note} |")
    return "\n".join(lines)


def write_model_card(
    engine: Engine,
    results: dict[str, DatasetResult],
    out_dir: Path,
    *,
    current: dict[str, DatasetResult] | None = None,
    current_version: str | None = None,
    gate: Gate | None = None,
    plots: bool = True,
) -> Path:
    """`model_card.md` in the bundle directory: data sources with row counts, library versions,
    thresholds, metrics on every held-out set (plus the comparison with the bundle it was judged
    against), and PR curves as PNG (written by `classifier.report.write_report`, whose report.md
    sits beside the card).

    `plots=False` writes the card alone, with the floors and other measures inline: for the
    default bundle, which ships inside the package and is committed, so images would only add
    binary churn to every retrain.
    """
    checks = check_floors(results)
    if plots:
        write_report(engine, results, checks, out_dir)
    manifest = engine.manifest
    libraries = ", ".join(f"{name} {version}" for name, version in manifest.get("libraries", {}).items())
    thresholds = "\n".join(
        ["| label | hold | reject |", "|---|---|---|"]
        + [f"| {name} | {t.hold} | {t.reject} |" for name, t in engine.policy.thresholds.items()]
    )
    parts = [
        f"# Model card: bundle `{engine.version}`",
        f"Created {manifest.get('created_at', '?')}; training rows: {manifest.get('rows', {})}.",
        f"Libraries: {libraries or 'not recorded'}. Loading it needs the same scikit-learn version.",
        "## Training data (rows per source)\n" + _sources_table(manifest.get("sources", {})),
        "## Thresholds\nTuned on the validation slice cut from the training rows "
        "(never on the dev sets below); reject keeps the ham false-positive rate within 1%.\n\n" + thresholds,
        "## Metrics on held-out rows\nPrecision/recall/F1 at the hold threshold; ham FPR at the reject threshold. "
        "`feedback` is the held-back slice of the newest moderator decisions (never trained on).\n\n"
        + metrics_table(results),
    ]
    if current is not None:
        parts.append(f"## Compared with `{current_version}`\n" + comparison_markdown(current, results))
    if gate is not None:
        verdict = "promoted" if gate.promote else "not promoted"
        parts.append(f"## Gate: {verdict}\n" + "\n".join(f"- {reason}" for reason in gate.reasons))
    if plots:
        images = sorted(p.name for p in out_dir.glob("pr_*.png"))
        parts.append("## PR curves\n" + "\n".join(f"![{Path(name).stem}]({name})" for name in images))
        parts.append("Full evaluation report (floors, confusion matrices): [report.md](report.md).")
    else:
        parts.append("## Floors of the engine issue\n" + floors_table(checks))
        if extras := other_measures(results):
            parts.append("## Other measures\n" + extras)
    card = out_dir / "model_card.md"
    card.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return card
