"""Retrain from people's decisions and promote the result only when it is better.

    python scripts/retrain.py [--dry-run] [--force] [--tolerance 0.005] [--corpora DIR | --no-corpora]

Same settings as the service (MODERATO_DATA_DIR, DATABASE_URL, ...). Steps:

 1. Read every moderator decision and Akismet submit-spam/submit-ham from the database (latest
    decision per comment; erased comments skipped). The newest 20% of each label are held back.
 2. Train a candidate on training_data/, the `train` split of the shared corpora (when present) and
    the rest of the feedback, into $MODERATO_DATA_DIR/bundles/<version>/ (thresholds re-tuned on
    the candidate's own validation slice, so the ham false-positive rate at reject stays <= 1%).
 3. Evaluate the current bundle and the candidate on the same rows: the shared `dev` split, the
    `dev` rows of training_data/ and the held-back feedback; print them side by side; write the
    candidate's model card (model_card.md + PR curves) into its directory.
 4. Promote (record the version in the database; running services reload it within seconds) only
    if no label's ROC AUC drops by more than --tolerance on any dev set and the held-back feedback
    improves (agreement with the people; on a tie, the Brier score). --force promotes anyway.

Exit codes (for cron):
    0  the candidate was promoted (--dry-run: it would have been; nothing is written)
    3  the current bundle is kept: the candidate was refused, or there is no new feedback
    1  error (database unreachable, unusable data or bundle, or another retrain or `moderato models`
       command busy with the bundles); the current bundle is kept
    2  bad command line
The last line printed is a one-line summary starting with `retrain:`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from api.cli import BUNDLES_LOCK_WAIT, SEED, bounded_int, bounded_number, version_name
from api.config import Settings
from api.db import Database, migrate
from api.reload import current_bundle_dir
from api.store.bundles import record_promotion
from api.store.feedback import FEEDBACK_SOURCE, feedback_examples
from classifier.bundle import FORMAT, GATE_FILE, bundle_rows, bundles_lock, library_versions, new_version
from classifier.dataset import assemble_training_pool, default_corpora_dir, default_training_data_dir
from classifier.engine import Engine
from classifier.errors import BundleError, ClassifierError
from classifier.evaluation import DatasetResult, dev_sets
from classifier.retraining import (
    DEFAULT_TOLERANCE,
    FEEDBACK,
    HOLDOUT_FRACTION,
    MIN_POSITIVES,
    Gate,
    compare,
    evaluate_all,
    feedback_label,
    hold_back_newest,
    side_by_side,
    write_model_card,
)
from classifier.training import TrainParams, train_bundle

PROMOTED, KEPT, ERROR = 0, 3, 1


class Clock:
    """Progress lines with the seconds since start: `[  42s] message`."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:5.0f}s] {message}", flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="retrain.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="train and compare, but keep nothing and promote nothing"
    )
    parser.add_argument("--force", action="store_true", help="promote even if the gate refuses (or nothing is new)")
    parser.add_argument(
        "--tolerance", type=bounded_number(0, 1), default=DEFAULT_TOLERANCE, help="largest ROC AUC drop allowed"
    )
    parser.add_argument(
        "--min-positives",
        type=bounded_int(0, 10**9),
        default=MIN_POSITIVES,
        help="labels with fewer dev positives are not gated",
    )
    parser.add_argument(
        "--holdout",
        type=bounded_number(0, 1),
        default=HOLDOUT_FRACTION,
        help="share of newest feedback held back",
    )
    parser.add_argument(
        "--feedback-weight", type=bounded_number(0, 1000), default=3.0, help="weight of feedback rows in the spam head"
    )
    parser.add_argument("--corpora", type=Path, default=default_corpora_dir(), help="shared corpora directory")
    parser.add_argument("--no-corpora", action="store_true", help="train and evaluate without the shared corpora")
    parser.add_argument("--training-data", type=Path, default=default_training_data_dir())
    parser.add_argument(
        "--version", type=version_name, default=None, help="candidate version name (default: m<UTC timestamp>)"
    )
    parser.add_argument("--seed", type=SEED, default=1234)
    return parser


def _unique_version(bundles_dir: Path, wanted: str | None) -> str:
    version = wanted or new_version()
    if wanted is None:
        base, n = version, 1
        while (bundles_dir / version).exists():
            n += 1
            version = f"{base}-{n}"
    elif (bundles_dir / version).exists():
        raise FileExistsError(f"bundle {version} already exists in {bundles_dir}")
    return version


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not (args.training_data / "comments.jsonl").is_file():
        parser.error(f"--training-data {args.training_data}: no comments.jsonl there")
    try:
        return run(args, Settings())
    except (ClassifierError, SQLAlchemyError, OSError, ValueError) as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        print(f"retrain: error: {type(exc).__name__}: {first_line}; current bundle kept", flush=True)
        return ERROR


def run(args: argparse.Namespace, settings: Settings) -> int:
    progress = Clock()
    if settings.auto_migrate:
        migrate(settings.database_url)
    db = Database.from_url(settings.database_url)
    try:
        with ExitStack() as stack:
            if not args.dry_run:  # a dry run writes into a scratch directory and promotes nothing
                # Held from the first look at the bundles to the promotion: `moderato models prune`
                # must not delete the candidate in between, nor another retrain race this one.
                stack.enter_context(bundles_lock(settings.bundles_lock_file, wait=BUNDLES_LOCK_WAIT))
            return _retrain(args, settings, db, progress)
    finally:
        db.dispose()


def _retrain(args: argparse.Namespace, settings: Settings, db: Database, progress: Clock) -> int:
    with db.read_session() as session:
        feedback = feedback_examples(session=session)
    by_label = Counter(feedback_label(e) for e in feedback)
    newest = feedback[-1].meta["decided_at"] if feedback else None
    progress(f"feedback: {len(feedback)} decisions {dict(sorted(by_label.items()))}")

    current_dir = current_bundle_dir(settings, db)
    current: Engine | None
    try:
        current = Engine.load(current_dir)
        progress(f"current bundle: {current.version} ({current_dir})")
    except BundleError as exc:
        current = None
        progress(f"current bundle unusable ({exc}); the candidate is judged on its own")

    if current is not None and not args.force:
        seen = current.manifest.get("sources", {}).get(FEEDBACK, {})
        if not feedback or (seen.get("total") == len(feedback) and seen.get("newest") == newest):
            what = "no feedback in the database" if not feedback else f"no new feedback since {current.version}"
            print(f"retrain: kept {current.version}: {what}; nothing to train", flush=True)
            return KEPT

    train_rows, held_back = hold_back_newest(feedback, fraction=args.holdout)
    progress(f"feedback: {len(train_rows)} to train on, {len(held_back)} newest held back to judge")
    corpora = None if args.no_corpora else args.corpora
    if corpora is not None and not corpora.exists():
        progress(f"note: {corpora} not found; training on training_data/ and feedback only")
        corpora = None
    pool = assemble_training_pool(
        training_data_dir=args.training_data, corpora_dir=corpora, feedback=train_rows, seed=args.seed
    )
    pool.sources[FEEDBACK] = {
        "rows": len(train_rows),
        "held_back": len(held_back),
        "total": len(feedback),
        "newest": newest,
        "labels": dict(sorted(by_label.items())),
        "note": "moderator decisions + Akismet submit-spam/ham",
    }
    progress(f"training pool: {len(pool.examples)} rows from {', '.join(pool.sources)}")
    params = TrainParams(seed=args.seed, source_weights={"youtube": 3.0, FEEDBACK_SOURCE: args.feedback_weight})
    if current is not None and not args.force and not args.dry_run:
        refused = _refused_before(settings.bundles_dir, current.version, pool.sources, params)
        if refused is not None:
            print(
                f"retrain: kept {current.version}: candidate {refused} was trained on this same data and refused; "
                "nothing to train (--force trains and promotes anyway)",
                flush=True,
            )
            return KEPT

    settings.bundles_dir.mkdir(parents=True, exist_ok=True)
    version = _unique_version(settings.bundles_dir, args.version)
    scratch = tempfile.TemporaryDirectory(prefix="moderato-dry-run-") if args.dry_run else None
    out_dir = Path(scratch.name) / version if scratch else settings.bundles_dir / version
    try:
        train_bundle(pool.examples, out_dir, params=params, version=version, sources=pool.sources, progress=progress)
        candidate = Engine.load(out_dir)

        sets = dev_sets(corpora, args.training_data)
        progress(
            f"evaluating on {', '.join(f'{k} ({len(v)})' for k, v in sets.items())}, {FEEDBACK} ({len(held_back)})"
        )
        candidate_results = evaluate_all(candidate, sets, held_back)
        progress(f"candidate {version} evaluated")
        current_results = evaluate_all(current, sets, held_back) if current is not None else None
        if current is not None and current_results is not None:
            progress(f"current {current.version} evaluated")
            print(side_by_side(current_results, candidate_results, names=(current.version, version)), flush=True)
            gate = compare(
                current_results, candidate_results, tolerance=args.tolerance, min_positives=args.min_positives
            )
        else:
            gate = Gate(promote=True, reasons=["no usable current bundle to compare with"])
        if args.force and not gate.promote:
            gate = Gate(promote=True, reasons=["forced (--force)", *gate.reasons])
        write_model_card(
            candidate,
            candidate_results,
            out_dir,
            current=current_results,
            current_version=current.version if current else None,
            gate=gate,
        )
        (out_dir / GATE_FILE).write_text(
            json.dumps(
                {
                    "promote": gate.promote,
                    "reasons": gate.reasons,
                    "judged_against": current.version if current else None,
                    "tolerance": args.tolerance,
                    "forced": bool(args.force),
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        progress(f"model card: {out_dir / 'model_card.md'}")
    except BaseException:
        if scratch is None:
            shutil.rmtree(out_dir, ignore_errors=True)  # no half-written bundle is left behind
        raise
    finally:
        if scratch is not None:
            scratch.cleanup()

    headline = _headline(current_results, candidate_results)
    kept = current.version if current else "the packaged bundle"
    if not gate.promote:
        print(f"retrain: kept {kept}; candidate {version} refused: {gate.summary()}", flush=True)
        return KEPT
    if args.dry_run:
        print(f"retrain: dry run: candidate {version} would be promoted over {kept} ({headline})", flush=True)
        return PROMOTED
    with db.write_session() as session:
        record_promotion(session=session, version=version, promoted_by="retrain", note=gate.summary()[:2000])
    print(f"retrain: promoted {version} over {kept} ({headline})", flush=True)
    return PROMOTED


def _refused_before(bundles_dir: Path, current: str, sources: dict[str, Any], params: TrainParams) -> str | None:
    """A candidate already refused against `current` that was trained on these same sources (row counts
    and hashes of every corpus, the feedback's count and newest decision) with these parameters, by
    this bundle format and these library versions.

    Training it again would make the same bundle and the same refusal: a nightly cron would add
    another ~16 MB directory each night until new feedback arrives. After an upgrade that changes
    the bundle format or scikit-learn, the same data makes another bundle, so that one is trained."""
    made = {"sources": sources, "params": params.to_dict(), "format": FORMAT, "libraries": library_versions()}
    wanted = json.loads(json.dumps(made, sort_keys=True, default=str))
    for version, manifest, gate in bundle_rows(bundles_dir):
        refused_here = gate.get("promote") is False and gate.get("judged_against") == current
        if refused_here and {key: manifest.get(key) for key in wanted} == wanted:
            return version
    return None


def _headline(current: dict[str, DatasetResult] | None, candidate: dict[str, DatasetResult]) -> str:
    """Held-back feedback agreement and spam recall, before -> after."""
    after = candidate.get(FEEDBACK)
    if after is None:
        return "no held-back feedback"
    before = current.get(FEEDBACK) if current else None
    parts = []
    for name, value in (("agreement", _agreement), ("spam recall", _spam_recall)):
        new = value(after)
        old = value(before) if before is not None else None
        if new is not None:
            parts.append(f"held-back {name} {'?' if old is None else f'{old:.3f}'} -> {new:.3f}")
    return ", ".join(parts)


def _agreement(result: DatasetResult) -> float | None:
    return result.extra.get("agreement")


def _spam_recall(result: DatasetResult) -> float | None:
    spam = result.labels.get("spam")
    return None if spam is None else spam.metrics.get("recall")


if __name__ == "__main__":
    sys.exit(main())
