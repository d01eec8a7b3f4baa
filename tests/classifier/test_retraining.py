"""The promotion gate and the held-back feedback slice (pure functions, no training)."""

from __future__ import annotations

from classifier.dataset import Example
from classifier.evaluation import DatasetResult, LabelResult
from classifier.retraining import FEEDBACK, compare, hold_back_newest, side_by_side


def fb(i: int, label: str) -> Example:
    return Example(f"comment {i}", "feedback", "train", {"spam": float(label == "spam")}, meta={"label": label})


def results(
    aucs: dict[tuple[str, str], float], agreement: float | None = None, brier: float = 0.1, positives: int = 30
):
    out: dict[str, DatasetResult] = {}
    for (dataset, label), auc in aucs.items():
        out.setdefault(dataset, DatasetResult(dataset, 100)).labels[label] = LabelResult(
            label, 100, positives, {"roc_auc": auc, "recall": 0.5}
        )
    if agreement is not None:
        result = DatasetResult(FEEDBACK, 20)
        result.extra.update(agreement=agreement, brier=brier)
        out[FEEDBACK] = result
    return out


def test_the_newest_fifth_of_each_label_is_held_back():
    rows = [fb(i, "spam") for i in range(10)] + [fb(100 + i, "ham") for i in range(5)] + [fb(200, "toxicity")]
    train, back = hold_back_newest(rows, fraction=0.2)
    assert [e.text for e in back] == ["comment 8", "comment 9", "comment 104"]
    assert len(train) == 13 and "comment 200" in {e.text for e in train}  # a lone row is trained on


def test_nothing_is_held_back_from_no_feedback():
    assert hold_back_newest([]) == ([], [])


def test_promotes_when_feedback_improves_and_no_auc_drops_beyond_tolerance():
    current = results({("civil", "toxicity"): 0.900, ("youtube", "spam"): 0.990}, agreement=0.3)
    candidate = results({("civil", "toxicity"): 0.896, ("youtube", "spam"): 0.992}, agreement=0.9)
    gate = compare(current, candidate, tolerance=0.005)
    assert gate.promote and gate.feedback_improved and not gate.auc_drops
    assert "youtube" in side_by_side(current, candidate)


def test_refuses_an_auc_drop_beyond_tolerance_and_names_it():
    current = results({("civil", "toxicity"): 0.900}, agreement=0.3)
    candidate = results({("civil", "toxicity"): 0.890}, agreement=0.9)
    gate = compare(current, candidate, tolerance=0.005)
    assert not gate.promote
    assert gate.auc_drops == ["civil/toxicity ROC AUC 0.9000 -> 0.8900 (drop > 0.005)"]


def test_a_label_with_few_dev_positives_is_not_gated():
    current = results({("training_data", "severe_toxicity"): 0.97}, agreement=0.3, positives=14)
    candidate = results({("training_data", "severe_toxicity"): 0.90}, agreement=0.9, positives=14)
    assert compare(current, candidate).promote
    assert not compare(current, candidate, min_positives=10).promote


def test_refuses_when_the_feedback_slice_does_not_improve():
    current = results({("civil", "toxicity"): 0.9}, agreement=0.8, brier=0.10)
    assert not compare(current, results({("civil", "toxicity"): 0.95}, agreement=0.7)).promote
    same = compare(current, results({("civil", "toxicity"): 0.95}, agreement=0.8, brier=0.10))
    assert not same.promote and "not better" in same.summary()
    tie_but_sharper = compare(current, results({("civil", "toxicity"): 0.9}, agreement=0.8, brier=0.05))
    assert tie_but_sharper.promote


def test_refuses_without_held_back_feedback():
    gate = compare(results({("civil", "toxicity"): 0.9}), results({("civil", "toxicity"): 0.9}))
    assert not gate.promote and "no held-back feedback" in gate.summary()
