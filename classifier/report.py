"""Evaluation reports: a Markdown table plus PR curves and confusion matrices as PNG.

Used by scripts/evaluate.py and by the model card written for every retrained bundle.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402

from classifier.engine import Engine  # noqa: E402
from classifier.evaluation import DatasetResult, Floor  # noqa: E402

_COLUMNS = ("roc_auc", "pr_auc", "precision", "recall", "f1", "ham_fpr_at_reject")


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def metrics_table(results: dict[str, DatasetResult]) -> str:
    lines = [
        "| dataset | label | n | positives | " + " | ".join(_COLUMNS) + " |",
        "|---|---|---|---|" + "---|" * len(_COLUMNS),
    ]
    for name, result in results.items():
        for label, r in result.labels.items():
            cells = " | ".join(_fmt(r.metrics.get(c)) for c in _COLUMNS)
            lines.append(f"| {name} | {label} | {r.n} | {r.positives} | {cells} |")
    return "\n".join(lines)


def floors_table(checks: list[tuple[Floor, float | None, bool]]) -> str:
    lines = ["| dataset | label | metric | floor | measured | |", "|---|---|---|---|---|---|"]
    for floor, value, passed in checks:
        bound = f"≥ {floor.minimum}" if floor.minimum is not None else f"≤ {floor.maximum}"
        lines.append(
            f"| {floor.dataset} | {floor.label} | {floor.metric} | {bound} | {_fmt(value)} | "
            f"{'pass' if passed else '**FAIL**'} |"
        )
    return "\n".join(lines)


def other_measures(results: dict[str, DatasetResult]) -> str:
    """The measures that are not per label (span F1, plug location, ...), one Markdown line each."""
    return "\n".join(
        f"- {name} {key}: {_fmt(value)}" for name, result in results.items() for key, value in result.extra.items()
    )


def plot_curves(results: dict[str, DatasetResult], out: Path) -> list[Path]:
    files = []
    for name, result in results.items():
        curves = {label: r.curve for label, r in result.labels.items() if r.curve is not None}
        if not curves:
            continue
        fig, ax = plt.subplots(figsize=(5, 4))
        for label, (recall, precision) in curves.items():
            ax.plot(recall, precision, label=label)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title(f"PR curves: {name} (dev)")
        ax.legend(fontsize=7)
        path = out / f"pr_{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=80)
        plt.close(fig)
        files.append(path)
        matrices = {label: r.confusion for label, r in result.labels.items() if r.confusion is not None}
        fig, axes = plt.subplots(1, len(matrices), figsize=(2.6 * len(matrices), 2.6), squeeze=False)
        for ax, (label, matrix) in zip(axes[0], matrices.items(), strict=True):
            ax.imshow(matrix, cmap="Blues")
            for (i, j), value in np.ndenumerate(matrix):
                ax.text(j, i, str(value), ha="center", va="center", fontsize=8)
            ax.set_title(label, fontsize=8)
            ax.set_xticks([0, 1], ["pred 0", "pred 1"], fontsize=7)
            ax.set_yticks([0, 1], ["true 0", "true 1"], fontsize=7)
        path = out / f"confusion_{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=80)
        plt.close(fig)
        files.append(path)
    return files


def write_report(
    engine: Engine, results: dict[str, DatasetResult], checks: list[tuple[Floor, float | None, bool]], out: Path
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    images = plot_curves(results, out)
    thresholds = ", ".join(f"{k} hold {v.hold} / reject {v.reject}" for k, v in engine.policy.thresholds.items())
    text = "\n\n".join(
        [
            f"# Evaluation of bundle `{engine.version}` on held-out (dev) rows",
            f"Thresholds: {thresholds}.",
            "## Floors\n" + floors_table(checks),
            "## Per label (precision/recall/F1 at the hold threshold)\n" + metrics_table(results),
            "## Other measures\n" + other_measures(results),
            "## Plots\n" + "\n".join(f"![{p.stem}]({p.name})" for p in images),
        ]
    )
    report = out / "report.md"
    report.write_text(text + "\n", encoding="utf-8")
    return report
