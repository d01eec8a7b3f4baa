"""The engine: one comment (and its article) in, an explained assessment out.

The bundle holds scikit-learn objects (a fitted TfidfVectorizer and LogisticRegression heads).
Calling them per request costs most of a millisecond in input validation alone, so the engine
reads their fitted arrays once at load time and scores with a few numpy operations on the
features of one analysis. `tests/classifier/test_engine.py` checks that this fast path gives
the same numbers as the scikit-learn objects.
"""

from __future__ import annotations

import math
import multiprocessing
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from classifier.bundle import Bundle, load_bundle
from classifier.decision import ATTRIBUTES, Policy, decide
from classifier.errors import IncompatibleBundle, InputError
from classifier.features import Analysis, analyze, analyze_normalized, article_words
from classifier.text import normalize, signals
from classifier.types import Article, Assessment, Reason, Span

MAX_CHARS = 100_000  # the engine's own guard; the API enforces its tighter limit first

#: Heads scored on the whole comment, in the column order of the weight matrix.
DOC_HEADS: tuple[str, ...] = ("spam", "spam_sentence", "toxicity", *ATTRIBUTES, "off_topic_text", "toxic_span_gate")
SPAN_REFERENCE_CHARS = 200  # comment length at which the toxic-word cut is exactly `word`
MIN_SENTENCE_WORDS = 3  # shorter fragments ("!!!", "lol") are too small to judge as plugs on their own

_STOP = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being this that these "
    "those it its i me my we our you your he him his she her they them their what which who whom there here not "
    "no so do does did done have has had will would can could should may might must just than then too very also "
    "only about into over after before again more most some any all such own same other out up down off once why "
    "how when where while because until during each few both nor s t don now said says".split()
)


def log_sigmoid(z: float) -> float:
    """log(sigmoid(z)) without overflow: an attribute is (roughly) P(toxic) * P(attribute | toxic),
    so calibration adds the log of the toxicity probability rather than its logit."""
    return -math.log1p(math.exp(-z)) if z > -30 else z


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z > -500 else 0.0


class VectorSpace:
    """Feature strings -> ids -> l2-normalised sublinear TF-IDF, exactly as the fitted vectorizer does."""

    def __init__(self, vocabulary: dict[str, int], idf: np.ndarray) -> None:
        self.vocabulary = vocabulary
        self.idf = np.asarray(idf, dtype=np.float64)
        self._word_cache: dict[str, tuple[int, ...]] = {}

    def ids(self, features: Sequence[str]) -> list[int]:
        get = self.vocabulary.get
        return [i for i in (get(f) for f in features) if i is not None]

    def word_ids(self, token: str, features: tuple[str, ...]) -> tuple[int, ...]:
        cached = self._word_cache.get(token)
        if cached is None:
            cached = tuple(self.ids(features))
            if len(self._word_cache) < 500_000:
                self._word_cache[token] = cached
        return cached

    def vectorize(self, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(unique ids, values): TfidfVectorizer(sublinear_tf=True, norm='l2') for one document."""
        if not ids:
            return np.empty(0, dtype=np.intp), np.empty(0)
        ordered = np.array(ids, dtype=np.intp)
        ordered.sort()
        first = np.empty(len(ordered), dtype=bool)
        first[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        counts = np.empty(len(starts), dtype=np.intp)
        counts[:-1] = starts[1:] - starts[:-1]
        counts[-1] = len(ordered) - starts[-1]
        unique = ordered[starts]
        values = (1.0 + np.log(counts)) * self.idf[unique]
        norm = math.sqrt(float(values @ values))
        return unique, values / norm if norm else values

    def analysis_ids(self, analysis: Analysis) -> AnalysisIds:
        """All ids of the document, the ids of each sentence, and each word's own ids."""
        sentence_ids: list[list[int]] = []
        word_lengths: list[int] = []
        word_flat: list[int] = []
        doc: list[int] = []
        for sentence in analysis.sentences:
            ids: list[int] = []
            for word in sentence.words:
                own = self.word_ids(word.token, word.features)
                word_lengths.append(len(own))
                ids.extend(own)
            word_flat.extend(ids)
            ids.extend(self.ids(sentence.extra))
            sentence_ids.append(ids)
            doc.extend(ids)
        doc.extend(self.ids(analysis.extra))
        return AnalysisIds(doc, sentence_ids, word_flat, word_lengths)


class AnalysisIds(NamedTuple):
    """Vocabulary ids of one analysis: the document's, each sentence's, and the words' (flat + lengths)."""

    doc: list[int]
    sentences: list[list[int]]
    word_flat: list[int]
    word_lengths: list[int]


@dataclass(frozen=True)
class ArticleVector:
    """An article prepared once for off-topic comparison (cached: many comments share an article)."""

    unique: np.ndarray
    values: np.ndarray
    stems: frozenset[str]
    title_stems: frozenset[str]
    words: frozenset[str]  # every word, lower-cased (for brands the article does not mention)


def content_stems(text: str) -> list[str]:
    """Content words cut to a 5-letter prefix: a crude stemmer that costs nothing per request."""
    out = []
    for token in text.split():
        word = token.strip(".,!?;:'\"()[]{}<>-_*/\\|`~")
        if len(word) >= 3 and word.isalpha() and word not in _STOP:
            out.append(word[:5])
    return out


#: Dense features of the off-topic stacker, in column order.
OFF_TOPIC_FEATURES: tuple[str, ...] = (
    "cosine_article",
    "max_sentence_cosine",
    "stem_overlap",
    "title_overlap",
    "shared_stems_log",
    "length_log",
    "text_logit",
    "spam_logit",
)


def article_vector(space: VectorSpace, article: Article) -> ArticleVector:
    text = f"{article.title}. {article.body}"
    unique, values = space.vectorize(space.analysis_ids(analyze(text)).doc)
    return ArticleVector(
        unique,
        values,
        frozenset(content_stems(normalize(text).text)),
        frozenset(content_stems(normalize(article.title).text)),
        article_words(article.title, article.body),
    )


def _cosine(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]) -> float:
    if not len(first[0]) or not len(second[0]):
        return 0.0
    _, i1, i2 = np.intersect1d(first[0], second[0], assume_unique=True, return_indices=True)
    return float(first[1][i1] @ second[1][i2])


def off_topic_features(
    analysis: Analysis,
    doc: tuple[np.ndarray, np.ndarray],
    sentence_vectors: list[tuple[np.ndarray, np.ndarray]],
    text_logit: float,
    spam_logit: float,
    article: ArticleVector,
) -> np.ndarray:
    """The off-topic stacker's inputs (OFF_TOPIC_FEATURES): similarity to the article plus logits."""
    art = (article.unique, article.values)
    cosine = _cosine(doc, art)
    best = max((_cosine(v, art) for v in sentence_vectors), default=0.0)
    stems = content_stems(analysis.normalized.text)
    shared = sum(1 for s in stems if s in article.stems)
    overlap = shared / len(stems) if stems else 0.0
    title = sum(1 for s in stems if s in article.title_stems) / max(len(article.title_stems), 1)
    return np.array(
        [cosine, max(best, cosine), overlap, title, math.log1p(shared), math.log1p(len(stems)), text_logit, spam_logit]
    )


@dataclass(frozen=True)
class RawScores:
    """Uncalibrated internals of one scoring, shared by `assess` and threshold tuning."""

    analysis: Analysis
    logits: dict[str, float]  # spam (max of comment and sentences), toxicity, attributes, off_topic
    sentence_logits: list[float]
    ids: AnalysisIds
    off_topic_features: np.ndarray | None


class Engine:
    """Scores comments with one loaded bundle. Thread-safe for reading; build one per bundle.

    engine = Engine.load()                      # the default bundle shipped with the package
    a = engine.assess("Great post! Visit bit.ly/x", Article("Flood hits town", "..."))
    a.decision, a.scores["spam"], a.reasons[0].spans
    """

    def __init__(self, bundle: Bundle) -> None:
        try:
            self._read(bundle)
        except (KeyError, AttributeError, IndexError, TypeError, ValueError) as exc:
            raise IncompatibleBundle(
                f"bundle {bundle.path} lacks parts this engine needs ({exc!r}); "
                "retrain it with `python scripts/train.py`",
                path=str(bundle.path),
            ) from exc
        self._articles_lock = threading.Lock()

    def _read(self, bundle: Bundle) -> None:
        self.bundle = bundle
        artifact = bundle.artifact
        vectorizer = artifact["vectorizer"]
        self.space = VectorSpace(vectorizer.vocabulary_, vectorizer.idf_)
        heads = artifact["heads"]
        self._weights = np.column_stack([heads[name].coef_[0] for name in DOC_HEADS]).astype(np.float64)
        self._bias = np.array([heads[name].intercept_[0] for name in DOC_HEADS], dtype=np.float64)
        self._column = {name: i for i, name in enumerate(DOC_HEADS)}
        span_head = heads["toxic_span"]
        self._span_weights = span_head.coef_[0].astype(np.float64)
        self._span_bias = float(span_head.intercept_[0])
        # name -> (a, b, c): p = sigmoid(a * logit + b + c * log sigmoid(toxicity_logit)). Attributes
        # lean on toxicity (c != 0) because their own positives are few; other labels have c = 0.
        self._calibration: dict[str, tuple[float, float, float]] = artifact["calibration"]
        stacker = artifact["off_topic_stacker"]
        self._off_topic_coef = stacker.coef_[0].astype(np.float64)
        self._off_topic_bias = float(stacker.intercept_[0])
        self.span_gate = float(artifact["spans"]["gate"])
        self.span_word = float(artifact["spans"]["word"])
        self.span_length = float(artifact["spans"]["length"])
        self._articles: OrderedDict[tuple[str, str], ArticleVector] = OrderedDict()
        self.policy: Policy = bundle.policy
        self.version: str = bundle.version

    @classmethod
    def load(cls, path: str | Path | None = None) -> Engine:
        """Load a bundle directory (None: the default bundle inside the package)."""
        return cls(load_bundle(path))

    @property
    def manifest(self) -> dict[str, Any]:
        return self.bundle.manifest

    # --- scoring ---------------------------------------------------------------------------

    def _calibrated(self, name: str, logit: float, toxicity_logit: float = 0.0) -> float:
        a, b, c = self._calibration[name]
        return _sigmoid(a * logit + b + c * log_sigmoid(toxicity_logit)) if c else _sigmoid(a * logit + b)

    def article_vector(self, article: Article) -> ArticleVector:
        """The article's vector from a small LRU cache (the engine is shared by threads: locked)."""
        key = (article.title, article.body)
        with self._articles_lock:
            cached = self._articles.get(key)
            if cached is not None:
                self._articles.move_to_end(key)
                return cached
        vector = article_vector(self.space, article)
        with self._articles_lock:
            self._articles[key] = vector
            if len(self._articles) > 2048:
                self._articles.popitem(last=False)
        return vector

    def _word_span_logits(self, ids: AnalysisIds) -> np.ndarray:
        """Each word's toxic-span logit from its own features (unit-normalised IDF weights)."""
        lengths = np.asarray(ids.word_lengths, dtype=np.intp)
        out = np.full(len(lengths), -50.0)
        if not ids.word_flat:
            return out
        flat = np.asarray(ids.word_flat, dtype=np.intp)
        nonempty = lengths > 0
        idf = self.space.idf[flat]
        starts = (np.cumsum(lengths) - lengths)[nonempty]
        dots = np.add.reduceat(idf * self._span_weights[flat], starts)
        norms = np.sqrt(np.add.reduceat(idf * idf, starts))
        out[nonempty] = dots / norms + self._span_bias
        return out

    def raw_scores(self, text: str, article: Article | None = None) -> RawScores:
        """Score without calibration or decision (training tunes calibration and thresholds on this)."""
        if not isinstance(text, str):
            raise InputError("comment text must be a string", field="text")
        if len(text) > MAX_CHARS:
            raise InputError(f"comment text longer than {MAX_CHARS} characters", field="text")
        if article is not None and not isinstance(article, Article):
            raise InputError("article must be an Article", field="article")
        article_vec = self.article_vector(article) if article is not None and not article.is_empty else None
        analysis = analyze_normalized(normalize(text), article_vec.words if article_vec is not None else None)
        ids = self.space.analysis_ids(analysis)
        doc = self.space.vectorize(ids.doc)
        doc_logits = doc[1] @ self._weights[doc[0]] + self._bias

        # Spam: the comment as a whole (a head trained on comments), or its most spam-like sentence
        # (a head trained on single sentences with marked plugs), whichever is worse.
        sent_col = self._column["spam_sentence"]
        sentence_w = self._weights[:, sent_col]
        sentence_vectors = []
        sentence_logits = []
        for sentence, sentence_ids in zip(analysis.sentences, ids.sentences, strict=True):
            vector = self.space.vectorize(sentence_ids) if len(ids.sentences) > 1 else doc
            sentence_vectors.append(vector)
            if len(sentence.words) >= MIN_SENTENCE_WORDS:
                sentence_logits.append(float(vector[1] @ sentence_w[vector[0]]) + self._bias[sent_col])
            else:
                sentence_logits.append(-math.inf)
        spam_col = self._column["spam"]
        logits = {name: float(doc_logits[self._column[name]]) for name in ("toxicity", "toxic_span_gate", *ATTRIBUTES)}
        logits["spam"] = max([float(doc_logits[spam_col]), *sentence_logits])
        features = None
        if article_vec is not None:
            features = off_topic_features(
                analysis,
                doc,
                sentence_vectors,
                float(doc_logits[self._column["off_topic_text"]]),
                float(doc_logits[spam_col]),
                article_vec,
            )
            logits["off_topic"] = float(features @ self._off_topic_coef) + self._off_topic_bias
        return RawScores(analysis, logits, sentence_logits, ids, features)

    def assess(self, text: str, article: Article | None = None, *, policy: Policy | None = None) -> Assessment:
        """Score one comment; `article` enables the off-topic score; `policy` overrides thresholds."""
        raw = self.raw_scores(text, article)
        scores: dict[str, float | None] = {
            "spam": self._calibrated("spam", raw.logits["spam"]),
            "toxicity": self._calibrated("toxicity", raw.logits["toxicity"]),
            "off_topic": self._calibrated("off_topic", raw.logits["off_topic"]) if "off_topic" in raw.logits else None,
        }
        attributes = {name: self._calibrated(name, raw.logits[name], raw.logits["toxicity"]) for name in ATTRIBUTES}
        used = policy or self.policy
        evidence = self._evidence(raw, scores, attributes, used)
        verdict = decide(scores, used)
        reasons = tuple(evidence[label] for label in verdict.flagged)
        return Assessment(verdict.action, scores, attributes, reasons, self.version, evidence)

    def _span(self, analysis: Analysis, start: int, end: int) -> Span:
        o_start, o_end = analysis.normalized.to_original(start, end)
        original = analysis.normalized.original
        return Span(o_start, o_end, original[o_start:o_end])

    def _evidence(
        self, raw: RawScores, scores: dict[str, float | None], attributes: dict[str, float], policy: Policy
    ) -> dict[str, Reason]:
        """A reason per label: spans and signals, computed whether or not the label is flagged."""
        analysis, sentence_logits = raw.analysis, raw.sentence_logits
        off_topic_features = raw.off_topic_features
        text = analysis.normalized.text
        evidence: dict[str, Reason] = {}

        # Spam: sentences whose own calibrated score reaches the hold threshold; else the worst one.
        spam_score = scores["spam"] or 0.0
        spam_hold = policy.thresholds["spam"].hold
        sentence_scores = [self._calibrated("spam", z) if z > -math.inf else 0.0 for z in sentence_logits]
        picked = [i for i, p in enumerate(sentence_scores) if p >= spam_hold]
        if not picked and sentence_scores and spam_score >= spam_hold:
            picked = [int(np.argmax(sentence_scores))]
        # A plug split by a dash or line break ("bit.ly/x — I made $3k a month") continues into a
        # neighbouring fragment that is spam-ish on its own: take it along.
        grown = set(picked)
        for i in picked:
            for j in (i - 1, i + 1):
                k = j
                while 0 <= k < len(sentence_scores) and k not in grown and sentence_scores[k] >= spam_hold / 2:
                    grown.add(k)
                    k += j - i
        picked = sorted(grown)
        spans = []
        spam_text = []
        for i in picked:
            sentence = analysis.sentences[i]
            spans.append(self._span(analysis, sentence.start, sentence.end))
            spam_text.append(text[sentence.start : sentence.end])
        spam_signals = signals(" ".join(spam_text), obfuscated=analysis.normalized.obfuscated) if spam_text else []
        if any("s:novel_brand" in analysis.sentences[i].extra for i in picked):
            spam_signals.append("unmentioned_brand")
        elif any("s:novel_name" in analysis.sentences[i].extra for i in picked):
            spam_signals.append("unmentioned_name")
        evidence["spam"] = Reason("spam", spam_score, tuple(spans), tuple(spam_signals))

        # Toxicity: words whose span head fires, merged into phrases.
        toxicity = scores["toxicity"] or 0.0
        tox_spans: list[Span] = []
        if toxicity >= policy.thresholds["toxicity"].hold:
            spans_found = self.toxic_word_spans(raw, gate=self.span_gate, word=self.span_word, length=self.span_length)
            tox_spans = [self._span(analysis, s, e) for s, e in spans_found]
        tox_signals = tuple(name for name in ATTRIBUTES if attributes[name] >= 0.5)
        evidence["toxicity"] = Reason("toxicity", toxicity, tuple(tox_spans), tox_signals)

        off_topic = scores["off_topic"]
        if off_topic is not None and off_topic_features is not None:
            off_signals = []
            if off_topic_features[0] < 0.05:
                off_signals.append("low_article_similarity")
            if off_topic_features[2] < 0.1:
                off_signals.append("few_article_words")
            evidence["off_topic"] = Reason("off_topic", off_topic, (), tuple(off_signals))
        return evidence

    def toxic_word_spans(
        self, raw: RawScores, *, gate: float, word: float, length: float = 0.0
    ) -> list[tuple[int, int]]:
        """Toxic phrases as normalized-text spans: none unless the comment-level gate (trained on
        whether raters agreed on any toxic span) passes, then every word above `word`, merged.

        In a longer comment raters mark different words and fewer reach agreement, so a word needs
        more evidence there: the cut rises by `length` per e-fold of length beyond 200 characters.
        """
        if _sigmoid(raw.logits["toxic_span_gate"]) < gate or not raw.ids.word_lengths:
            return []
        word_logits = self._word_span_logits(raw.ids)
        chars = max(len(raw.analysis.normalized.original), SPAN_REFERENCE_CHARS / 10)
        cut = math.log(word / (1.0 - word)) + length * math.log(chars / SPAN_REFERENCE_CHARS)
        words = [w for s in raw.analysis.sentences for w in s.words]
        text = raw.analysis.normalized.text
        merged: list[list[int]] = []
        for k in np.flatnonzero(word_logits >= cut).tolist():
            start, end = words[k].start, words[k].end
            if merged and not text[merged[-1][1] : start].strip(" ,'\"-"):
                merged[-1][1] = end
            else:
                merged.append([start, end])
        return [(s, e) for s, e in merged]

    def assess_batch(
        self, items: Sequence[tuple[str, Article | None]], *, policy: Policy | None = None, processes: int = 1
    ) -> list[Assessment]:
        """Score many comments, in order (articles are vectorised once each thanks to the article cache).

        `processes > 1` splits a large batch over forked worker processes that share this engine's
        memory (nothing is pickled but the comments and the results). Only for single-threaded
        callers such as batch scripts: forking a process that runs other threads (a web server) is
        unsafe, so the service never passes it.
        """
        if processes <= 1 or len(items) < 200 * processes:
            return [self.assess(text, article, policy=policy) for text, article in items]
        global _BATCH
        _BATCH = (self, policy)
        chunk = -(-len(items) // (processes * 4))
        chunks = [list(items[i : i + chunk]) for i in range(0, len(items), chunk)]
        try:
            with multiprocessing.get_context("fork").Pool(processes) as pool:
                parts = pool.map(_assess_chunk, chunks)
        finally:
            _BATCH = None
        return [a for part in parts for a in part]


_BATCH: tuple[Engine, Policy | None] | None = None


def _assess_chunk(items: list[tuple[str, Article | None]]) -> list[Assessment]:
    """Worker side of `Engine.assess_batch(processes=N)`: the engine came with the fork."""
    assert _BATCH is not None
    engine, policy = _BATCH
    return [engine.assess(text, article, policy=policy) for text, article in items]
