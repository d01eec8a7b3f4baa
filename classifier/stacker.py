"""The plug stacker: a second look at each sentence of a comment that came with its article.

The first-stage spam heads are linear in n-grams, so each clue adds to a sentence's score on its
own. A stealth plug is a conjunction of weak clues: a name the article never mentions, in a
sentence that shares few words with the article, near a price, worded as a testimonial, while
the rest of the comment is on topic. Each clue alone is common in honest comments, and a sum of
them either misses the plug or holds the honest reader. Gradient-boosted trees over 28 numbers
per sentence (the first stage's logits, the sentence's and the comment's similarity to the
article, the sentence's signals) learn such conjunctions.

The trees are fitted on out-of-fold first-stage logits (`training.train_bundle`), so they learn how
far to trust the heads on comments the heads have not seen. At scoring time scikit-learn's own
`predict` would spend most of a millisecond validating a few rows, more than the rest of the
scoring; `Trees` keeps the fitted trees' public arrays (`estimators_[i].tree_`) and walks all of
them at once with numpy, exactly as scikit-learn does (`tests/classifier/test_stacker.py`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier

#: Sentence signals (`features.analyze`) the trees see as 0/1 inputs.
PLUG_SIGNALS: tuple[str, ...] = (
    "s:attribution",
    "s:brand",
    "s:brand_benefit",
    "s:brand_price",
    "s:brand_testimonial",
    "s:contact",
    "s:income",
    "s:income_anywhere",
    "s:link",
    "s:novel_brand",
    "s:novel_name",
    "s:obfuscated",
    "s:price",
    "s:price_boast",
    "s:price_drop",
    "s:price_rise",
    "s:rate",
    "s:short_link",
)

#: One row per sentence, in this order (the first six article measures are `OFF_TOPIC_FEATURES`'s).
PLUG_FEATURES: tuple[str, ...] = (
    "sentence_logit",  # the first-stage spam-sentence head on this sentence
    "comment_logit",  # the first-stage spam head on the whole comment
    "best_other_logit",  # the most spam-like other sentence (-20: none)
    "sentence_cosine",  # this sentence against the article
    "cosine",  # the whole comment against the article
    "best_cosine",
    "overlap",
    "title",
    "log_shared",
    "log_stems",
    *PLUG_SIGNALS,
)

NO_LOGIT = -20.0  # stands in for "no other sentence" (a plain number: the trees need no NaN)


def plug_rows(
    sentence_extras: Sequence[Sequence[str]],
    sentence_logits: Sequence[float],
    comment_logit: float,
    sentence_cosines: Sequence[float],
    article_measures: Sequence[float],
) -> tuple[tuple[int, ...], np.ndarray]:
    """The stacker's rows for the sentences the first stage judges (finite logit), and their indices.

    Where the sentence sits in the comment and how long it is are left out on purpose: in our
    corpus they tell how our writers placed their plugs, not what spam is. With them the trees
    located about 0.02 more plugs on the validation slice.
    """
    judged = tuple(i for i, z in enumerate(sentence_logits) if z > -math.inf)
    rows = np.empty((len(judged), len(PLUG_FEATURES)))
    width = len(PLUG_FEATURES) - len(PLUG_SIGNALS)
    # The best other sentence of each is the best of all, or the runner-up for the best itself.
    ranked = sorted((sentence_logits[i] for i in judged), reverse=True)[:2] + [NO_LOGIT, NO_LOGIT]
    best = max(judged, key=lambda i: sentence_logits[i], default=-1)
    for r, i in enumerate(judged):
        extra = set(sentence_extras[i])
        rows[r, :width] = (
            sentence_logits[i],
            comment_logit,
            ranked[1] if i == best else ranked[0],
            sentence_cosines[i],
            *article_measures[:6],
        )
        rows[r, width:] = [name in extra for name in PLUG_SIGNALS]
    return judged, rows


@dataclass(frozen=True)
class Trees:
    """A fitted binary GradientBoostingClassifier as flat arrays: `decision_function` without sklearn.

    Every tree's nodes are stacked. `children[2 * i]` is node i's right child and `children[2 * i + 1]`
    its left one, so one step is `children[2 * node + (x <= threshold)]`; a leaf is its own child
    with an infinite threshold, so walking `depth` steps from each root lands on a leaf in every tree.
    """

    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    children: np.ndarray
    value: np.ndarray  # the leaf's value times the learning rate (0 elsewhere)
    depth: int
    baseline: float

    @classmethod
    def from_model(cls, model: GradientBoostingClassifier, probe: np.ndarray) -> Trees:
        """Flatten `model`; `probe` (any row) recovers the prior's log-odds from `decision_function`."""
        roots, feature, threshold, children, value = [], [], [], [], []
        offset = 0
        estimators = model.estimators_[:, 0]
        for estimator in estimators:
            tree = estimator.tree_
            leaf = tree.children_left == -1
            nodes = np.arange(tree.node_count)
            roots.append(offset)
            feature.append(np.where(leaf, 0, tree.feature))
            threshold.append(np.where(leaf, np.inf, tree.threshold))
            right = np.where(leaf, nodes, tree.children_right) + offset
            left = np.where(leaf, nodes, tree.children_left) + offset
            children.append(np.column_stack([right, left]).ravel())
            value.append(np.where(leaf, tree.value[:, 0, 0] * model.learning_rate, 0.0))
            offset += tree.node_count
        trees = cls(
            np.array(roots, dtype=np.int64),
            np.concatenate(feature).astype(np.int64),
            np.concatenate(threshold),
            np.concatenate(children).astype(np.int64),
            np.concatenate(value),
            max(int(estimator.tree_.max_depth) for estimator in estimators),
            0.0,
        )
        row = np.asarray(probe, dtype=np.float64).reshape(1, -1)
        baseline = float(model.decision_function(row)[0]) - float(trees.decision_function(row)[0])
        return replace(trees, baseline=baseline)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Log-odds per row. Inputs are compared as float32, as scikit-learn's trees do; each row's
        leaves are summed in tree order on their own, so a row scores the same in any batch."""
        values = np.asarray(X, dtype=np.float32)
        n_rows, width = values.shape
        flat = values.ravel()
        row = np.repeat(np.arange(n_rows), len(self.roots))
        base = row * width
        node = np.tile(self.roots, n_rows)
        for _ in range(self.depth):
            go_left = flat[base + self.feature[node]] <= self.threshold[node]
            node = self.children[2 * node + go_left]
        return np.bincount(row, weights=self.value[node], minlength=n_rows) + self.baseline


def fit_plug_stacker(rows: np.ndarray, labels: np.ndarray, seed: int) -> Trees:
    """Fit the trees on out-of-fold rows.

    100 trees of depth 3. On the validation slice, 60 to 300 trees of depth 2 or 3, with or
    without subsampling or leaves of at least 50 rows, located plugs within 0.02 of each other at
    the same rate of ham held (0.905-0.926 at 4 %), so the plain setting stays.
    """
    model = GradientBoostingClassifier(n_estimators=100, max_depth=3, learning_rate=0.1, random_state=seed)
    model.fit(rows, labels)
    return Trees.from_model(model, rows[0])
