"""Evaluate a bundle on held-out data: `python scripts/evaluate.py [--bundle DIR] [--out reports/eval]`.

Held-out data = the `dev` split of every corpus in ../shared/corpora and the `dev` rows of
training_data/. Prints per label ROC AUC, PR AUC, precision/recall/F1 at the shipped (hold)
threshold and the ham false-positive rate at the reject threshold; span F1 on ToxicSpans; plug
location on our embedded spam. Writes PR curves and confusion matrices (PNG) and a Markdown
report. Exits 1 when a floor of issue 2 is missed, 2 when it cannot evaluate (no bundle, no data).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from classifier.dataset import default_corpora_dir, default_training_data_dir
from classifier.engine import Engine
from classifier.errors import ClassifierError
from classifier.evaluation import check_floors, dev_sets, evaluate, summary
from classifier.report import write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=None, help="bundle directory (default: the shipped one)")
    parser.add_argument("--corpora", type=Path, default=default_corpora_dir())
    parser.add_argument("--training-data", type=Path, default=default_training_data_dir())
    parser.add_argument("--out", type=Path, default=Path("reports/eval"), help="where PNGs and report.md go")
    parser.add_argument("--json", action="store_true", help="also print the metrics as JSON")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():  # refused now, not after scoring every dev set
        parser.error(f"--out {args.out} is not a directory")
    try:
        return _evaluate(args)
    except (ClassifierError, OSError) as exc:  # a missing or damaged bundle, an --out that cannot be written
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return 2


def _evaluate(args: argparse.Namespace) -> int:
    engine = Engine.load(args.bundle)
    print(f"bundle {engine.version} ({engine.bundle.path})", flush=True)
    sets = dev_sets(args.corpora, args.training_data)
    if not sets:
        print("no held-out data found (../shared/corpora, training_data/)", file=sys.stderr)
        return 2
    results = evaluate(engine, sets, progress=lambda message: print(message, flush=True))
    checks = check_floors(results)
    report = write_report(engine, results, checks, args.out)
    print(report.read_text(encoding="utf-8"))
    if args.json:
        print(json.dumps(summary(results), indent=2))
    failed = [c for c in checks if not c[2]]
    print(f"{len(checks) - len(failed)}/{len(checks)} floors met; report in {report}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
