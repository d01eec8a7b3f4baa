"""Bundle versions: `moderato models list|promote|rollback`, feedback as training rows, and
`scripts/retrain.py` on a tiny corpus (tests/data) so it runs in seconds."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

import api.cli as cli_module
from api.cli import main as cli
from api.config import Settings
from api.db import Database
from api.schemas import DecisionCreate, SpanIn
from api.store.bundles import promoted_version, promotion_history, record_promotion
from api.store.comments import erase_comment
from api.store.decisions import record_decision
from api.store.feedback import feedback_examples
from classifier.bundle import bundles_lock
from tests.api.conftest import add_version, auth, moderate_body

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import retrain  # noqa: E402


@pytest.fixture
def env(monkeypatch, database_url, tmp_path, db):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MODERATO_DATA_DIR", str(tmp_path))
    return Settings()


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def current(db: Database) -> str | None:
    with db.read_session() as session:
        return promoted_version(session=session)


def starred(out: str) -> str:
    return next(line.split()[1] for line in out.splitlines() if line.startswith("*"))


# ---------------------------------------------------------------------------------------------
# moderato models


def test_list_marks_the_packaged_bundle_until_something_is_promoted(env, capsys, tiny_bundle):
    add_version(tiny_bundle, env, "v1")
    code, out, _ = run(capsys, "models", "list")
    assert code == 0
    assert starred(out) == "default"
    assert "v1" in out and "never promoted" in out


def test_promote_and_rollback_walk_the_history(env, capsys, tiny_bundle, db):
    for version in ("v1", "v2"):
        add_version(tiny_bundle, env, version)
    assert run(capsys, "models", "promote", "v1")[0] == 0
    assert run(capsys, "models", "promote", "v2")[0] == 0
    assert current(db) == "v2"
    assert starred(run(capsys, "models", "list")[1]) == "v2"

    code, out, _ = run(capsys, "models", "rollback")
    assert code == 0 and "from v2 to v1" in out
    assert current(db) == "v1"
    code, out, _ = run(capsys, "models", "rollback")
    assert code == 0 and current(db) == "default"  # below the first promotion: the packaged bundle
    code, _, err = run(capsys, "models", "rollback")
    assert code == 2 and "nothing to roll back to" in err
    with db.read_session() as session:
        assert [row.version for row in promotion_history(session=session)] == ["v1", "v2", "v1", "default"]


def test_rollback_after_a_rollback_goes_further_back(env, capsys, tiny_bundle, db):
    for version in ("v1", "v2", "v3"):
        add_version(tiny_bundle, env, version)
        run(capsys, "models", "promote", version)
    run(capsys, "models", "rollback")
    run(capsys, "models", "rollback")
    assert current(db) == "v1"


def test_promote_refuses_missing_and_damaged_bundles(env, capsys, tiny_bundle, db):
    code, _, err = run(capsys, "models", "promote", "nope")
    assert code == 2 and "bundle nope cannot be promoted" in err
    damaged = add_version(tiny_bundle, env, "damaged")
    (damaged / "bundle.joblib").write_bytes(b"truncated")
    code, _, err = run(capsys, "models", "promote", "damaged")
    assert code == 2 and "SHA-256" in err
    assert current(db) is None


def test_promote_takes_a_version_name_not_a_path(env, capsys, tiny_bundle, tmp_path, db):
    """A path used to be recorded as the served version: a bundle outside the bundles directory, which
    `models list` and `prune` never see."""
    outside = tmp_path / "outside"
    add_version(tiny_bundle, env, "v1")
    shutil.copytree(tiny_bundle, outside)
    for version in (str(outside), "../outside", "v1/", "..", ""):
        code, _, err = run(capsys, "models", "promote", version)
        assert code == 2 and "is not a version" in err, version
    assert current(db) is None


def test_list_and_prune_survive_a_damaged_gate_file(env, capsys, tiny_bundle):
    """A retrain killed while writing gate.json used to make `models list` and `prune` fail with a traceback."""
    (add_version(tiny_bundle, env, "v1") / "gate.json").write_text('{"promote": tr', encoding="utf-8")
    (add_version(tiny_bundle, env, "v2") / "gate.json").write_text("[]", encoding="utf-8")
    code, out, _ = run(capsys, "models", "list")
    assert code == 0 and "v1" in out and "v2" in out
    assert run(capsys, "models", "prune", "--dry-run")[0] == 0


def test_prune_keeps_what_can_be_served_again_and_removes_the_rest(env, capsys, tiny_bundle, db, monkeypatch):
    """v1..v6 trained in order; v2 then v4 promoted, v4 rolled back (so v2 serves, v4 is off the
    stack), v3 pinned by MODERATO_BUNDLE. With --keep 1: v2 (served), v3 (pinned), v6 (newest) stay."""
    for k, version in enumerate(("v1", "v2", "v3", "v4", "v5", "v6")):
        out = add_version(tiny_bundle, env, version)
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        manifest["created_at"] = f"2026-11-0{k + 1}T03:00:00+00:00"
        (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (env.bundles_dir / "half-written").mkdir()  # no manifest: not a bundle, never touched
    for version in ("v2", "v4"):
        run(capsys, "models", "promote", version)
    run(capsys, "models", "rollback")
    assert current(db) == "v2"

    code, out, _ = run(capsys, "models", "prune", "--keep", "10", "--dry-run")  # more than there are
    assert code == 0 and "would remove" not in out and "would free 0.0 MB" in out
    code, out, _ = run(capsys, "models", "prune", "--keep", "1", "--dry-run")
    assert code == 0 and "would remove v1" in out and "would free" in out
    assert sorted(p.name for p in env.bundles_dir.iterdir()) == ["half-written", "v1", "v2", "v3", "v4", "v5", "v6"]

    monkeypatch.setenv("MODERATO_BUNDLE", str(env.bundles_dir / "v3"))
    code, out, _ = run(capsys, "models", "prune", "--keep", "1")
    monkeypatch.delenv("MODERATO_BUNDLE")
    assert code == 0
    assert sorted(p.name for p in env.bundles_dir.iterdir()) == ["half-written", "v2", "v3", "v6"]
    assert "served (promoted)" in out and "pinned by MODERATO_BUNDLE" in out and "one of the 1 newest" in out
    assert run(capsys, "models", "rollback")[0] == 0 and current(db) == "default"  # v2's rollback target

    code, _, err = run(capsys, "models", "prune", "--keep", "-1")
    assert code == 2 and "--keep must be 0 or more" in err


def test_models_commands_wait_for_whoever_holds_the_bundles(env, capsys, tiny_bundle, db, monkeypatch):
    """A retrain (or another `models` command) holds the bundles' lock: prune, promote and rollback
    give up after their wait with exit 1 and change nothing, so prune cannot delete a candidate a
    retrain is about to promote. Once the lock is free they work."""
    add_version(tiny_bundle, env, "v1")
    monkeypatch.setattr(cli_module, "BUNDLES_LOCK_WAIT", 0.0)
    with bundles_lock(env.bundles_lock_file):
        for argv in (("models", "prune", "--keep", "0"), ("models", "promote", "v1"), ("models", "rollback")):
            code, _, err = run(capsys, *argv)
            assert code == 1 and "another process is writing, promoting or pruning bundles" in err, argv
        assert (env.bundles_dir / "v1").is_dir() and current(db) is None
        assert retrain.main(TINY) == 1  # a second retrain does not race the first
        assert "retrain: error: BundlesBusy" in capsys.readouterr().out.strip().splitlines()[-1]
    assert run(capsys, "models", "promote", "v1")[0] == 0 and current(db) == "v1"


# ---------------------------------------------------------------------------------------------
# feedback rows


def _decide(db: Database, site_id: int, comment_id: int, source: str = "moderator", **decision) -> None:
    with db.write_session() as session:
        record_decision(
            session=session,
            site_id=site_id,
            comment_id=comment_id,
            decision=DecisionCreate.model_validate(decision),
            source=source,
        )


def test_feedback_examples_carry_labels_spans_and_skip_erased_and_reopened(client, site, db):
    ids = []
    texts = [
        "Great article. Check out Quokka vault, my pouch doubled.",
        "I agree with the council on this one.",
        "You absolute idiot.",
        "Erased later.",
        "Reopened later.",
    ]
    for i, text in enumerate(texts):
        body = moderate_body(text, f"c{i}", article={"title": "Cycle lanes", "body": "The council voted."})
        ids.append(client.post("/v1/moderate", json=body, headers=auth(site)).json()["id"])
    site_id = site.site.id
    _decide(db, site_id, ids[0], action="reject", label="spam", spans=[SpanIn(start=15, end=len(texts[0]))])
    _decide(db, site_id, ids[1], action="approve")
    _decide(db, site_id, ids[2], action="reject", label="toxicity", spans=[SpanIn(start=13, end=18)])
    _decide(db, site_id, ids[3], action="reject", label="spam")
    _decide(db, site_id, ids[4], action="approve")
    _decide(db, site_id, ids[4], action="reopen")
    with db.write_session() as session:
        erase_comment(session=session, site_id=site_id, comment_id=ids[3])

    with db.read_session() as session:
        examples = feedback_examples(session=session)
    assert [e.text for e in examples] == texts[:3]
    spam, ham, toxic = examples
    assert spam.labels == {"spam": 1.0} and spam.spam_spans == ((15, len(texts[0])),)
    assert ham.labels == {"spam": 0.0, "toxicity": 0.0, "off_topic": 0.0} and ham.article is not None
    assert toxic.labels == {"toxicity": 1.0} and toxic.toxic_spans == ((13, 18),)
    assert {e.source for e in examples} == {"feedback"} and all(e.split == "train" for e in examples)
    assert [e.meta["label"] for e in examples] == ["spam", "ham", "toxicity"]


def test_akismet_feedback_is_a_training_row_too(client, site, db):
    comment_id = client.post("/v1/moderate", json=moderate_body("Buy followers now"), headers=auth(site)).json()["id"]
    _decide(db, site.site.id, comment_id, action="reject", label="spam", source="akismet")
    with db.read_session() as session:
        [example] = feedback_examples(session=session)
    assert example.meta["decided_by"] == "akismet" and example.labels == {"spam": 1.0}


# ---------------------------------------------------------------------------------------------
# scripts/retrain.py (tiny corpus, no shared corpora)

TINY = ["--training-data", str(REPO / "tests" / "data"), "--no-corpora"]


def _feedback(client, site, db, n: int = 24) -> None:
    wave = [json.loads(line) for line in (REPO / "tests" / "data" / "spam_wave.jsonl").read_text().splitlines()][:n]
    hams = [f"Rents here went up {i}0 pounds again, and the flat still has damp." for i in range(n // 3)]
    for i, row in enumerate(wave):
        verdict = client.post("/v1/moderate", json=moderate_body(row["text"], f"w{i}"), headers=auth(site)).json()
        _decide(db, site.site.id, verdict["id"], action="reject", label="spam")
    for i, text in enumerate(hams):
        verdict = client.post("/v1/moderate", json=moderate_body(text, f"h{i}"), headers=auth(site)).json()
        _decide(db, site.site.id, verdict["id"], action="approve")


def test_retrain_without_feedback_keeps_the_current_bundle(env, capsys, db):
    assert retrain.main(TINY) == 3
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("retrain: kept ")
    assert current(db) is None and not env.bundles_dir.exists()


def test_retrain_trains_judges_and_records_the_outcome(env, capsys, client, site, db, tiny_bundle):
    add_version(tiny_bundle, env, "tiny-current")
    with db.write_session() as session:
        record_promotion(session=session, version="tiny-current")
    _feedback(client, site, db)

    code = retrain.main([*TINY, "--version", "cand"])
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert code in (0, 3), out
    assert "tiny-current" in out and "agreement" in out  # the side-by-side table
    card = env.bundles_dir / "cand" / "model_card.md"
    assert card.is_file() and "## Training data (rows per source)" in card.read_text(encoding="utf-8")
    gate = json.loads((env.bundles_dir / "cand" / "gate.json").read_text(encoding="utf-8"))
    manifest = json.loads((env.bundles_dir / "cand" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["sources"]["feedback"]["total"] == 32 and manifest["sources"]["feedback"]["held_back"] > 0
    if code == 0:
        assert lines[-1].startswith("retrain: promoted cand") and gate["promote"] and current(db) == "cand"
        assert retrain.main(TINY) == 3  # nothing new since
        assert "no new feedback since cand" in capsys.readouterr().out
    else:
        assert lines[-1].startswith("retrain: kept tiny-current") and not gate["promote"]
        assert current(db) == "tiny-current"


def test_retrain_does_not_train_again_what_it_refused_on_the_same_data(env, capsys, client, site, db, tiny_bundle):
    add_version(tiny_bundle, env, "tiny-current")
    with db.write_session() as session:
        record_promotion(session=session, version="tiny-current")
    _feedback(client, site, db, n=9)
    assert retrain.main([*TINY, "--version", "cand"]) in (0, 3)
    # Whatever the gate said, make it the refusal a nightly cron meets: cand refused against tiny-current.
    gate_file = env.bundles_dir / "cand" / "gate.json"
    gate = json.loads(gate_file.read_text(encoding="utf-8"))
    gate_file.write_text(json.dumps({**gate, "promote": False, "judged_against": "tiny-current"}), encoding="utf-8")
    with db.write_session() as session:
        record_promotion(session=session, version="tiny-current")
    capsys.readouterr()

    assert retrain.main(TINY) == 3
    assert "candidate cand was trained on this same data and refused" in capsys.readouterr().out
    assert sorted(p.name for p in env.bundles_dir.iterdir()) == ["cand", "tiny-current"]
    # Refused by an older Moderato (another bundle format): this one would make another bundle.
    manifest_file = env.bundles_dir / "cand" / "manifest.json"
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    manifest_file.write_text(json.dumps({**manifest, "format": manifest["format"] - 1}), encoding="utf-8")
    assert retrain.main([*TINY, "--dry-run", "--version", "upgraded"]) in (0, 3)
    out = capsys.readouterr().out
    assert "trained on this same data" not in out and "candidate upgraded evaluated" in out
    manifest_file.write_text(json.dumps(manifest), encoding="utf-8")
    # Another seed is other training: it runs (and --force always does).
    assert retrain.main([*TINY, "--seed", "7", "--version", "seed7"]) in (0, 3)
    assert (env.bundles_dir / "seed7" / "manifest.json").is_file()


def test_retrain_force_promotes_and_dry_run_writes_nothing(env, capsys, client, site, db, tiny_bundle):
    add_version(tiny_bundle, env, "tiny-current")
    with db.write_session() as session:
        record_promotion(session=session, version="tiny-current")
    _feedback(client, site, db, n=9)

    assert retrain.main([*TINY, "--dry-run", "--version", "dry"]) in (0, 3)
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("retrain: ")
    assert not (env.bundles_dir / "dry").exists() and current(db) == "tiny-current"

    assert retrain.main([*TINY, "--force", "--version", "forced"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("retrain: promoted forced")
    assert current(db) == "forced"


def test_retrain_reports_errors_with_exit_code_1(env, capsys, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("MODERATO_AUTO_MIGRATE", "false")
    assert retrain.main(TINY) == 1
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("retrain: error:")


@pytest.mark.parametrize(
    "argv",
    [
        ["--tolerance", "nan"],  # would pass every comparison: any drop promoted
        ["--tolerance", "-0.1"],
        ["--holdout", "inf"],
        ["--holdout", "1.5"],
        ["--feedback-weight", "-3"],
        ["--min-positives", "-1"],
        ["--seed", "-1"],
        ["--version", "../outside"],
        ["--version", "/tmp/outside"],
        ["--training-data", "/nonexistent"],
    ],
)
def test_retrain_refuses_a_bad_command_line_before_touching_anything(env, capsys, argv):
    with pytest.raises(SystemExit) as exited:
        retrain.main([*TINY, *argv])
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("retrain.py: error: ")
    assert not env.bundles_dir.exists()
