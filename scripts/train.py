"""Train a bundle: `python scripts/train.py [--out DIR]`.

Without --out it rebuilds the default bundle shipped in the package (classifier/bundles/default),
from training_data/ plus the `train` split of ../shared/corpora when present. Same inputs and
seed give the same bundle. Then it scores the held-out (dev) rows and writes `model_card.md`
beside the bundle: its data, library versions, thresholds and measured quality (--no-card skips
that; `scripts/evaluate.py` gives the full report with plots).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from api.cli import SEED
from classifier.bundle import DEFAULT_BUNDLE_DIR
from classifier.dataset import assemble_training_pool, default_corpora_dir, default_training_data_dir
from classifier.engine import Engine
from classifier.errors import ClassifierError
from classifier.evaluation import dev_sets, evaluate
from classifier.retraining import write_model_card
from classifier.training import TrainParams, train_bundle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_BUNDLE_DIR, help="bundle directory to write")
    parser.add_argument("--training-data", type=Path, default=default_training_data_dir())
    parser.add_argument("--corpora", type=Path, default=default_corpora_dir(), help="shared corpora directory")
    parser.add_argument("--no-corpora", action="store_true", help="train on training_data/ only")
    parser.add_argument("--version", default=None, help="version name (default: m<UTC timestamp>)")
    parser.add_argument("--seed", type=SEED, default=1234)
    parser.add_argument("--no-card", action="store_true", help="do not evaluate on dev or write model_card.md")
    args = parser.parse_args(argv)
    if not (args.training_data / "comments.jsonl").is_file():
        # Without it the pool is empty or corpora only, and training would fail late with "empty vocabulary".
        parser.error(f"--training-data {args.training_data}: no comments.jsonl there")
    if args.out.exists() and not args.out.is_dir():  # refused now, not after training
        parser.error(f"--out {args.out} is not a directory")
    try:
        return _train(args)
    except (ClassifierError, OSError, ValueError) as exc:  # unreadable data, an --out that cannot be written
        first_line = (str(exc).strip().splitlines() or [""])[0]
        print(f"train: error: {type(exc).__name__}: {first_line}", file=sys.stderr)
        return 1


def _train(args: argparse.Namespace) -> int:
    corpora = None if args.no_corpora else args.corpora
    if corpora is not None and not corpora.exists():
        print(f"note: {corpora} not found; training on training_data/ only", file=sys.stderr)
        corpora = None
    pool = assemble_training_pool(training_data_dir=args.training_data, corpora_dir=corpora, seed=args.seed)
    print(f"training pool: {len(pool.examples)} rows from {', '.join(pool.sources)}", flush=True)
    train_bundle(
        pool.examples,
        args.out,
        params=TrainParams(seed=args.seed),
        version=args.version,
        sources=pool.sources,
        progress=lambda message: print(message, flush=True),
    )
    if not args.no_card:
        sets = dev_sets(corpora, args.training_data)
        engine = Engine.load(args.out)
        results = evaluate(engine, sets, progress=lambda message: print(message, flush=True))
        card = write_model_card(engine, results, args.out, plots=False)
        print(f"model card: {card}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
