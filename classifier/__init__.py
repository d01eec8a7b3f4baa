"""Moderato's engine: pure ML, no web or database imports.

    from classifier import Engine, Article
    engine = Engine.load()                      # the default bundle shipped with the package
    a = engine.assess(text, Article(title, body))
    a.decision, a.scores, a.attributes, a.reasons   # reasons carry spans into `text`

Training and evaluation live in `classifier.training` / `classifier.evaluation` and are driven by
`scripts/train.py` and `scripts/evaluate.py`.
"""

from classifier.bundle import Bundle, load_bundle
from classifier.decision import ATTRIBUTES, DECISIONS, LABELS, Decision, Policy, Thresholds, decide
from classifier.engine import Engine
from classifier.errors import BundleError, BundleNotFound, ClassifierError, IncompatibleBundle, InputError
from classifier.types import Article, Assessment, Reason, Span

__all__ = [
    "ATTRIBUTES",
    "DECISIONS",
    "LABELS",
    "Article",
    "Assessment",
    "Bundle",
    "BundleError",
    "BundleNotFound",
    "ClassifierError",
    "Decision",
    "Engine",
    "IncompatibleBundle",
    "InputError",
    "Policy",
    "Reason",
    "Span",
    "Thresholds",
    "decide",
    "load_bundle",
]
