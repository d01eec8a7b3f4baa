"""Training refuses dev rows, tunes thresholds on its own validation slice, and is reproducible."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from classifier import Article, Engine
from classifier.dataset import Example
from classifier.stacker import PLUG_FEATURES
from classifier.training import (
    TrainParams,
    article_views,
    balanced_weights,
    in_validation,
    span_f1,
    stacker_training_rows,
    train_bundle,
    tune_thresholds,
)
from tests.conftest import tiny_training_rows

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import train  # noqa: E402


def test_dev_rows_are_refused(tmp_path):
    with pytest.raises(ValueError, match="train-split rows only"):
        train_bundle([Example("x", "moderato", "dev", {"spam": 0.0})], tmp_path / "b")


def test_same_inputs_and_seed_give_the_same_model(tiny_bundle, tmp_path):
    again = train_bundle(
        tiny_training_rows(),
        tmp_path / "again",
        params=TrainParams(min_df=1, max_features=60_000, validation_fraction=0.25),
        version="tiny-test",
    )
    first = json.loads((tiny_bundle / "manifest.json").read_text())
    second = json.loads((again / "manifest.json").read_text())
    assert first["thresholds"] == second["thresholds"]
    assert first["metrics"] == second["metrics"]


def test_the_plug_stacker_is_fitted_out_of_fold_and_calibrated_on_its_own(tiny_bundle):
    """Our comments come with articles: the tiny bundle has a stacker, fitted on one row per judged
    sentence of each such comment (each scored by heads fitted without it), with its own calibration."""
    engine = Engine.load(tiny_bundle)
    manifest = engine.manifest
    assert engine._plug_trees is not None
    assert manifest["rows"]["plug_stacker_sentences"] > manifest["rows"]["fit"] / 4
    assert engine._calibration["spam_in_context"] != engine._calibration["spam"]
    assert engine._calibration["spam_in_context"] != (1.0, 0.0, 0.0)


def test_the_plug_stacker_sees_each_comment_under_its_whole_article_a_teaser_and_a_headline(tiny_bundle):
    article = Article("Council votes on the bridge", "The council voted 7-2 on Monday. Work starts in May.")
    assert article_views(article) == [
        article,
        Article(article.title, "The council voted 7-2 on Monday."),
        Article(article.title, ""),
    ]
    assert article_views(Article("Headline only", "")) == [Article("Headline only", "")]
    assert article_views(Article("", "One sentence.")) == [Article("", "One sentence.")]

    text = "The vote was close. Fix your credit fast at creditfixer.example today! Work in May is fine."
    plug = text.index("Fix"), text.index(" Work")
    example = Example(text, "moderato", "train", {"spam": 1.0}, article=article, spam_spans=(plug,))
    inputs, labels = stacker_training_rows(Engine.load(tiny_bundle), example)
    assert len(inputs) == 9 and labels.tolist() == [0, 1, 0] * 3  # three sentences under three views
    title = PLUG_FEATURES.index("title")
    sentence_cosine = PLUG_FEATURES.index("sentence_cosine")
    blocks = [inputs[k : k + 3] for k in (0, 3, 6)]
    assert not np.array_equal(blocks[0][:, sentence_cosine], blocks[2][:, sentence_cosine])
    assert all(np.array_equal(b[:, title], blocks[0][:, title]) for b in blocks)  # the title never changes


def test_toxicspans_residuals_join_the_fitted_rows_first(tmp_path):
    """Each fitted ToxicSpans post with agreed spans adds its residual; validation posts add none
    until calibration and thresholds are chosen (then the toxicity head is refitted with them)."""
    params = TrainParams(min_df=1, max_features=20_000, validation_fraction=0.25)
    texts = [f"Council story {i}: what a stupid idiot the mayor is, resign now." for i in range(40)]
    posts = [
        Example(t, "toxicspans", "train", {"toxicity": 1.0}, toxic_spans=((t.index("stupid"), t.index(" the")),))
        for t in texts
    ]
    rows = tiny_training_rows()[::3] + posts
    fitted = sum(not in_validation(p, params.seed, params.validation_fraction) for p in posts)
    assert 0 < fitted < len(posts)
    messages: list[str] = []
    train_bundle(rows, tmp_path / "b", params=params, version="residuals", progress=messages.append)
    assert f"({fitted} ToxicSpans residuals)" in messages[0]
    # The validation slice's posts add theirs only when the toxicity head is refitted at the end.
    assert any(f"({len(posts) - fitted} ToxicSpans residuals); calibration" in m for m in messages)
    messages.clear()
    off = TrainParams(**{**params.to_dict(), "span_residuals": False})
    train_bundle(rows, tmp_path / "c", params=off, version="none", progress=messages.append)
    assert "(0 ToxicSpans residuals)" in messages[0]


def test_the_toxicity_head_is_refitted_with_the_validation_slice(tmp_path):
    """A made-up word is harmless in every fitted row and an insult in every validation row: only
    the refitted head learns the insult. Calibration and thresholds stay the first head's."""
    params = TrainParams(min_df=1, max_features=20_000, validation_fraction=0.25)
    texts = [f"Comment {i} about the grobnik at the council meeting." for i in range(80)]
    rows = [
        Example(t, "civil", "train", {"toxicity": float(in_validation(probe, params.seed, 0.25))})
        for t in texts
        for probe in [Example(t, "civil", "train", {})]
    ]
    assert 10 < sum(r.labels["toxicity"] for r in rows) < 70
    rows += tiny_training_rows()[::6]
    messages: list[str] = []
    refitted = Engine.load(train_bundle(rows, tmp_path / "refit", params=params, progress=messages.append))
    off = TrainParams(**{**params.to_dict(), "refit_toxicity": False})
    first = Engine.load(train_bundle(rows, tmp_path / "first", params=off))
    insult = "You absolute grobnik."
    assert refitted.raw_scores(insult).logits["toxicity"] > first.raw_scores(insult).logits["toxicity"] + 1.0
    assert refitted.manifest["thresholds"] == first.manifest["thresholds"]
    assert refitted._calibration == first._calibration
    assert any(m.startswith("toxicity head refitted on ") for m in messages)


def test_span_f1_is_the_semeval_metric():
    assert span_f1(set(), set()) == 1.0
    assert span_f1({1}, set()) == 0.0
    assert span_f1({1, 2}, {2, 3}) == pytest.approx(0.5)


def test_balanced_weights_give_each_source_and_class_a_fair_say():
    sources = ["big"] * 8 + ["small"] * 2
    y = np.array([1] * 6 + [0] * 2 + [1, 0])
    weights = balanced_weights(sources, y, power=1.0)
    assert weights.mean() == pytest.approx(1.0)
    # with power 1 every (source, class) group carries the same total weight
    totals = [weights[:6].sum(), weights[6:8].sum(), weights[8:9].sum(), weights[9:].sum()]
    assert totals == pytest.approx([totals[0]] * 4)
    assert balanced_weights(sources, y, power=0.0) == pytest.approx(np.ones(10))


def test_hold_is_half_the_best_mean_f1():
    # best F1 here is 0.91 (threshold 0.6); a calibrated score's F1-optimal threshold is F1*/2
    scores = np.array([0.1, 0.2, 0.3, 0.45, 0.5, 0.55, 0.6, 0.7, 0.9, 0.95, 0.99])
    y = np.array([0, 0, 0, 1, 0, 0, 1, 1, 1, 1, 1])
    groups = np.array(["a"] * 11)
    hold, reject, extra = tune_thresholds(scores, y, groups, TrainParams(hold_fpr_cap=1.0), reject_fpr=0.0)
    assert extra["validation_best_mean_f1"] == pytest.approx(10 / 11, abs=1e-4)
    assert hold == pytest.approx(5 / 11, abs=1e-4)
    assert reject >= hold
    # the cap keeps the hold above all but `hold_fpr_cap` of the ham
    capped, _, _ = tune_thresholds(scores, y, groups, TrainParams(hold_fpr_cap=0.0), reject_fpr=0.0)
    assert capped >= 0.55


def test_sources_listed_in_hold_ignores_do_not_choose_the_hold():
    # "comments" are separated perfectly; "sms" has ham above its spam's lowest score
    scores = np.array([0.1, 0.3, 0.9, 0.5, 0.55, 0.6, 0.45, 0.95])
    y = np.array([0, 1, 1, 0, 0, 0, 1, 1])
    groups = np.array(["comments"] * 3 + ["sms"] * 5)
    params = TrainParams(hold_fpr_cap=1.0)
    ignoring, _, best = tune_thresholds(scores, y, groups, params, reject_fpr=0.0)
    without = TrainParams(**{**params.to_dict(), "hold_ignores": ()})
    counting, _, mixed = tune_thresholds(scores, y, groups, without, reject_fpr=0.0)
    assert best["validation_best_mean_f1"] == pytest.approx(1.0)
    assert mixed["validation_best_mean_f1"] < 1.0
    assert ignoring == pytest.approx(0.5) and counting < ignoring


def test_train_script_writes_the_bundle_and_a_model_card_naming_data_libraries_and_metrics(tmp_path, capsys):
    out = tmp_path / "bundle"
    assert train.main(["--training-data", str(REPO / "tests" / "data"), "--no-corpora", "--out", str(out)]) == 0
    assert (out / "bundle.joblib").is_file() and (out / "manifest.json").is_file()
    card = (out / "model_card.md").read_text(encoding="utf-8")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert f"scikit-learn {manifest['libraries']['scikit-learn']}" in card
    rows = manifest["sources"]["training_data"]["rows"]
    assert "## Training data (rows per source)\n" in card and f"| training_data | {rows} |" in card
    assert "| training_data | spam | 4 |" in card  # measured on the 4 dev rows of tests/data
    assert "## Floors of the engine issue" in card and "| training_data | off_topic | roc_auc |" in card
    assert not list(out.glob("*.png"))  # the card alone: the default bundle ships in the package
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"model card: {out / 'model_card.md'}"


@pytest.mark.parametrize(
    "argv",
    [
        ["--training-data", "/nonexistent"],  # used to fail after loading everything with "empty vocabulary"
        ["--seed", "-1"],
        ["--out", __file__],  # a file, not a directory: refused before training
    ],
)
def test_train_script_refuses_a_bad_command_line_before_training(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as exited:
        train.main(["--training-data", str(REPO / "tests" / "data"), "--no-corpora", "--out", str(tmp_path), *argv])
    assert exited.value.code == 2 and "error: " in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_evaluate_script_reports_a_missing_or_damaged_bundle_in_one_line(tmp_path, capsys, tiny_bundle):
    import evaluate

    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_bundle, damaged)
    (damaged / "bundle.joblib").write_bytes(b"truncated")
    for bundle in (tmp_path / "nope", damaged):
        assert evaluate.main(["--bundle", str(bundle), "--out", str(tmp_path / "report")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("evaluate: error: ") and err.count("\n") == 1
    assert not (tmp_path / "report").exists()
