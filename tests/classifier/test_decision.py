from __future__ import annotations

import pytest

from classifier.decision import Policy, Thresholds, decide

POLICY = Policy({"spam": Thresholds(0.5, 0.9), "toxicity": Thresholds(0.6, 0.95), "off_topic": Thresholds(0.7, 0.99)})


def test_below_every_hold_threshold_approves():
    assert decide({"spam": 0.1, "toxicity": 0.2, "off_topic": None}, POLICY).action == "approve"


def test_hold_and_reject_and_most_severe_first():
    d = decide({"spam": 0.95, "toxicity": 0.7, "off_topic": 0.1}, POLICY)
    assert d.action == "reject"
    assert d.flagged == ("spam", "toxicity")
    assert decide({"spam": 0.6, "toxicity": 0.1, "off_topic": None}, POLICY).action == "hold"


def test_missing_off_topic_score_never_counts():
    assert decide({"spam": 0.0, "toxicity": 0.0, "off_topic": None}, POLICY).flagged == ()


def test_log_only_mode_approves_but_reports_flags():
    d = decide({"spam": 0.99, "toxicity": 0.0}, POLICY.with_overrides(mode="log_only"))
    assert d.action == "approve" and d.flagged == ("spam",)


def test_overrides_validate_labels_and_order():
    assert POLICY.with_overrides({"spam": {"hold": 0.2}}).thresholds["spam"] == Thresholds(0.2, 0.9)
    with pytest.raises(ValueError, match="unknown label"):
        POLICY.with_overrides({"spamm": {"hold": 0.2}})
    with pytest.raises(ValueError, match="must not exceed"):
        POLICY.with_overrides({"spam": {"hold": 0.95}})
    with pytest.raises(ValueError, match="unknown mode"):
        POLICY.with_overrides(mode="yolo")


def test_policy_round_trips_through_dict():
    assert Policy.from_dict(POLICY.to_dict()) == POLICY
