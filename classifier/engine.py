"""The engine: one comment (and its article) in, an explained assessment out.

The bundle holds scikit-learn objects (a fitted TfidfVectorizer and LogisticRegression heads).
Calling them per request costs most of a millisecond in input validation alone, so the engine
reads their fitted arrays once at load time and scores with a few numpy operations on the
features of the analyses. `tests/classifier/test_engine.py` checks that this fast path gives
the same numbers as the scikit-learn objects.

One comment and a batch go through the same arithmetic (`Engine._score`): a batch just hands it
a chunk of comments at a time, which spreads numpy's per-call cost over them. Every row is
computed on its own (sorts, sums in a fixed order, no vectorised transcendental functions), so a
comment gets bit for bit the same assessment alone and in any batch.
"""

from __future__ import annotations

import gc
import math
import multiprocessing
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from classifier.bundle import Bundle, load_bundle
from classifier.decision import ATTRIBUTES, Policy, decide
from classifier.errors import IncompatibleBundle, InputError
from classifier.features import Analysis, WordFeatures, analyze, analyze_normalized, article_words
from classifier.stacker import Trees, plug_rows
from classifier.text import normalize, signals, visible_length
from classifier.types import Article, Assessment, Reason, Span

MAX_CHARS = 100_000  # the engine's own guard; the API enforces its tighter limit first

#: Heads scored on the whole comment, in the column order of the weight matrix.
DOC_HEADS: tuple[str, ...] = ("spam", "spam_sentence", "toxicity", *ATTRIBUTES, "off_topic_text", "toxic_span_gate")
SPAN_REFERENCE_CHARS = 200  # comment length at which the toxic-word cut is exactly `word`
# Comments per sparse product in assess_batch: enough to amortise numpy's calls, few kept alive. Timed
# on the bench's 2,000 comments (median of four rounds): 8 -> 622 ms, 16 -> 579, 32 -> 559, 64 -> 556,
# 128 -> 604 (the gathered weight rows outgrow the cache).
BATCH_CHUNK = 32
MIN_SENTENCE_WORDS = 3  # shorter fragments ("!!!", "lol") are too small to judge as plugs on their own
# The most toxic word's logit, as toxicity's calibration sees it, is never below this: a comment
# with no word the span head knows (or none at all) scores like one of harmless words (the 1st
# percentile of validation comments is -5), not like the -50 an unknown word gets.
TOXIC_WORD_FLOOR = -6.0

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


#: Labels whose calibration takes a second input (`calibration_input`).
CALIBRATED_WITH_SECOND_INPUT = frozenset({"toxicity", *ATTRIBUTES})


def calibration_input(name: str, logits: dict[str, float]) -> float:
    """The second input of a label's calibration (`Engine._calibrated`), beside its own logit.

    - An attribute: log P(toxic) from the toxicity head (`log_sigmoid`); with few positives of
      their own, attributes rank better when the much better trained toxicity head has a say.
    - Toxicity: the most toxic word's logit from the span head (`RawScores.logits["toxic_word"]`).
      The document head dilutes one insult in a long comment; the word head, fitted on the words
      ToxicSpans raters marked, does not. The calibration weighs it about 0.36 against the
      document logit's 1.3; on dev that adds about 0.006 ROC AUC on news and Wikipedia comments
      (Civil, Wikipedia talk) and costs tweets (Davidson) 0.0008 (README, "The most toxic word").
    - Anything else: nothing (its calibration's third coefficient is 0).
    A bundle whose calibration was fitted without a second input has c = 0 and scores as before.
    """
    if name in ATTRIBUTES:
        return log_sigmoid(logits["toxicity"])
    if name == "toxicity":
        return logits.get("toxic_word", TOXIC_WORD_FLOOR)
    return 0.0


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z > -500 else 0.0


class VectorSpace:
    """Feature strings -> ids -> l2-normalised sublinear TF-IDF, exactly as the fitted vectorizer does."""

    def __init__(self, vocabulary: dict[str, int], idf: np.ndarray) -> None:
        # A fitted vectorizer's ids are numpy integers; plain ints turn into an array about three
        # times faster (`_score` converts a few hundred per comment).
        self.vocabulary = {term: int(i) for term, i in vocabulary.items()}
        self.idf = np.asarray(idf, dtype=np.float64)
        self._word_cache: dict[str, tuple[int, ...]] = {}
        self._tf_table = np.zeros(1)

    def ids(self, features: Sequence[str]) -> list[int]:
        return [i for i in map(self.vocabulary.get, features) if i is not None]

    def word_ids(self, token: str, features: tuple[str, ...]) -> tuple[int, ...]:
        cached = self._word_cache.get(token)
        if cached is None:
            cached = tuple(self.ids(features))
            if len(self._word_cache) < 500_000:
                self._word_cache[token] = cached
        return cached

    def vectorize(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(unique ids, values): TfidfVectorizer(sublinear_tf=True, norm='l2') for one document."""
        rows = self.vectorize_rows(np.array(ids, dtype=np.int64), np.zeros(len(ids), dtype=np.int64), 1)
        return rows.indices, rows.values

    def vectorize_rows(self, ids: np.ndarray, rows: np.ndarray, n_rows: int) -> SparseRows:
        """`vectorize` for many documents at once: `ids[k]` belongs to document `rows[k]`.

        One sort over every row replaces a dozen small numpy calls per row (they cost more than the
        arithmetic). Each row's numbers depend on that row alone, whatever else is in the call: its
        ids sort together, term weights come from a table rather than a vectorised log, and its norm
        is summed in id order. So a comment scores bit for bit the same alone and in any batch.
        """
        width = len(self.idf)
        if not len(ids):
            empty = np.empty(0, dtype=np.intp)
            return SparseRows(np.zeros(n_rows + 1, dtype=np.intp), empty, np.empty(0), empty)
        # (row, id) as one integer; 32 bits sort about twice as fast when they are enough.
        dtype = np.int32 if n_rows * width < 2**31 else np.int64
        keys = rows.astype(dtype) * width + ids.astype(dtype)
        keys.sort()
        first = np.empty(len(keys), dtype=bool)
        first[0] = True
        np.not_equal(keys[1:], keys[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        counts = np.empty(len(starts), dtype=np.intp)
        counts[:-1] = starts[1:] - starts[:-1]
        counts[-1] = len(keys) - starts[-1]
        row_of, columns = np.divmod(keys[starts], width)
        row_of = row_of.astype(np.intp)
        columns = columns.astype(np.intp)
        values = self._sublinear_tf(int(counts.max()))[counts] * self.idf[columns]
        norms = np.sqrt(np.bincount(row_of, weights=values * values, minlength=n_rows))
        norms[norms == 0.0] = 1.0
        values /= norms[row_of]
        indptr = np.zeros(n_rows + 1, dtype=np.intp)
        np.cumsum(np.bincount(row_of, minlength=n_rows), out=indptr[1:])
        return SparseRows(indptr, columns, values, row_of)

    def _sublinear_tf(self, largest: int) -> np.ndarray:
        """1 + log(count) for counts up to `largest`, indexed by count: one value per count however
        the array is laid out (a vectorised log can round its tail differently from its body)."""
        table = self._tf_table
        if len(table) <= largest:
            size = max(2 * len(table), largest + 1)
            table = np.array([0.0, *(1.0 + math.log(count) for count in range(1, size))])
            self._tf_table = table  # grown copies agree on every entry: safe to swap under threads
        return table

    def analysis_ids(self, analysis: Analysis) -> AnalysisIds:
        """All ids of the document, the ids of each sentence, and each word's own ids.

        This runs for every comment, so the cache lookup of `word_ids` and `ids` are inlined as
        bound methods: calling them per word cost more than the lookups themselves.
        """
        sentence_ids: list[list[int]] = []
        word_lengths: list[int] = []
        word_flat: list[int] = []
        doc: list[int] = []
        cached = self._word_cache.get
        get = self.vocabulary.get
        for sentence in analysis.sentences:
            owns = [
                own if (own := cached(word.token)) is not None else self.word_ids(word.token, word.features)
                for word in sentence.words
            ]
            word_lengths.extend(map(len, owns))
            ids = list(chain.from_iterable(owns))
            word_flat.extend(ids)
            ids.extend([i for i in map(get, sentence.extra) if i is not None])
            sentence_ids.append(ids)
            doc.extend(ids)
        doc.extend([i for i in map(get, analysis.extra) if i is not None])
        return AnalysisIds(doc, sentence_ids, word_flat, word_lengths)


class SparseRows(NamedTuple):
    """Vectors in CSR form (as scipy.sparse takes them): row r is `indices[indptr[r]:indptr[r + 1]]`
    with the matching `values`; `rows` repeats each non-zero's row."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    rows: np.ndarray


class AnalysisIds(NamedTuple):
    """Vocabulary ids of one analysis: the document's, each sentence's, and the words' (flat + lengths).

    `doc` is the sentences' ids one after the other, then the document-level ones.
    """

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


def article_cosines(rows: SparseRows, owners: np.ndarray, articles: Sequence[ArticleVector], width: int) -> np.ndarray:
    """Each row's cosine with its article (`owners[r]` indexes `articles`; -1: none, cosine 0).

    Every row of a batch against its own article in a few array operations: an (article, id) key
    per non-zero found by binary search among the articles' keys. Both sides are unit vectors, so
    the cosine is the dot product, summed per row in id order. `width` exceeds every id.
    """
    n_rows = len(owners)
    if not articles or not len(rows.indices):
        return np.zeros(n_rows)
    article_keys = np.concatenate([k * width + a.unique.astype(np.int64) for k, a in enumerate(articles)])
    if not len(article_keys):
        return np.zeros(n_rows)
    article_values = np.concatenate([a.values for a in articles])
    row_of = rows.rows
    owner = np.asarray(owners, dtype=np.int64)[row_of]
    kept = np.flatnonzero(owner >= 0)
    keys = owner[kept] * width + rows.indices[kept]
    found = np.minimum(np.searchsorted(article_keys, keys), len(article_keys) - 1)
    hit = article_keys[found] == keys
    products = rows.values[kept[hit]] * article_values[found[hit]]
    return np.bincount(row_of[kept[hit]], weights=products, minlength=n_rows)


def off_topic_features(
    space: VectorSpace,
    analysis: Analysis,
    ids: AnalysisIds,
    text_logit: float,
    spam_logit: float,
    article: ArticleVector,
) -> np.ndarray:
    """The off-topic stacker's inputs (OFF_TOPIC_FEATURES) for one comment, with logits chosen by the
    caller (training's way in: its text logits are out-of-fold). The comment and, when it has
    several, each sentence are vectorised and compared with the article as `Engine._score` does."""
    pieces = [ids.doc, *(ids.sentences if len(ids.sentences) > 1 else ())]
    lengths = [len(piece) for piece in pieces]
    vectors = space.vectorize_rows(
        np.fromiter(chain.from_iterable(pieces), dtype=np.int64, count=sum(lengths)),
        np.repeat(np.arange(len(pieces), dtype=np.int64), lengths),
        len(pieces),
    )
    cosines = article_cosines(vectors, np.zeros(len(pieces), dtype=np.int64), [article], len(space.idf)).tolist()
    return off_topic_row(analysis, cosines[0], max(cosines[1:], default=0.0), text_logit, spam_logit, article)


def off_topic_row(
    analysis: Analysis, cosine: float, best: float, text_logit: float, spam_logit: float, article: ArticleVector
) -> np.ndarray:
    """The off-topic stacker's inputs given the comment's cosine with the article and its best
    sentence's (0 without sentences)."""
    stems = content_stems(analysis.normalized.text)
    shared = sum(1 for s in stems if s in article.stems)
    overlap = shared / len(stems) if stems else 0.0
    title = sum(1 for s in stems if s in article.title_stems) / max(len(article.title_stems), 1)
    return np.array(
        [cosine, max(best, cosine), overlap, title, math.log1p(shared), math.log1p(len(stems)), text_logit, spam_logit]
    )


class _Prepared(NamedTuple):
    """A comment after the text work, waiting for the arithmetic (`Engine._score`)."""

    analysis: Analysis
    ids: AnalysisIds
    article: ArticleVector | None


def check_input(text: object, article: object = None) -> None:
    """Raise InputError unless the engine can score this comment (callers that score many at once
    check each first, so one bad comment cannot fail the others)."""
    if not isinstance(text, str):
        raise InputError("comment text must be a string", field="text")
    if len(text) > MAX_CHARS:
        raise InputError(f"comment text longer than {MAX_CHARS} characters", field="text")
    if article is not None and not isinstance(article, Article):
        raise InputError("article must be an Article", field="article")


@dataclass(frozen=True)
class RawScores:
    """Uncalibrated internals of one scoring, shared by `assess` and threshold tuning."""

    analysis: Analysis
    # spam (the worst of the comment and its sentences; under an article, the plug stacker's worst
    # sentence, the first stage's kept as spam_first_stage), toxicity, attributes, off_topic, the
    # toxic-span gate, and toxic_word (the most toxic word's span-head logit, at least TOXIC_WORD_FLOOR)
    logits: dict[str, float]
    sentence_logits: list[float]  # per sentence; -inf: too short to judge
    ids: AnalysisIds
    off_topic_features: np.ndarray | None
    # With an article: the plug stacker's inputs for the judged sentences (`stacker.plug_rows`).
    plug_sentences: tuple[int, ...] = ()
    plug_inputs: np.ndarray | None = None
    # Which calibration turns the spam logits into probabilities: "spam" for the first stage's,
    # "spam_in_context" once the plug stacker has rescored the sentences.
    spam_calibration: str = "spam"


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
        self._sentence_weights = np.ascontiguousarray(self._weights[:, self._column["spam_sentence"]])
        span_head = heads["toxic_span"]
        self._span_weights = span_head.coef_[0].astype(np.float64)
        self._span_bias = float(span_head.intercept_[0])
        self._span_logits: dict[str, float] = {}  # token -> its toxic-span logit (see _word_span_logit)
        # name -> (a, b, c): p = sigmoid(a * logit + b + c * log sigmoid(toxicity_logit)). Attributes
        # lean on toxicity (c != 0) because their own positives are few; other labels have c = 0.
        self._calibration: dict[str, tuple[float, float, float]] = artifact["calibration"]
        self._plug_trees: Trees | None = artifact["plug_stacker"]
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

    def _calibrated(self, name: str, logits: dict[str, float], logit: float | None = None) -> float:
        """sigmoid(a * logit + b + c * second input), with (a, b, c) fitted on the validation slice;
        `logit` defaults to `logits[name]` (spam passes a sentence's or the plug stacker's)."""
        a, b, c = self._calibration[name]
        z = a * (logits[name] if logit is None else logit) + b
        return _sigmoid(z + c * calibration_input(name, logits)) if c else _sigmoid(z)

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

    def _word_span_logit(self, word: WordFeatures) -> float:
        """A word's toxic-span logit from its own features (unit-normalised IDF weights).

        It depends on the token alone, so it is cached like the token's ids: a comment's words are
        mostly common ones. Summed in plain Python, in id order, so it is the same number whichever
        comment or batch asks first.
        """
        logit = self._span_logits.get(word.token)
        if logit is None:
            ids = list(self.space.word_ids(word.token, word.features))
            logit = -50.0
            if ids:
                dot = norm = 0.0
                for value, weight in zip(self.space.idf[ids].tolist(), self._span_weights[ids].tolist(), strict=True):
                    dot += value * weight
                    norm += value * value
                logit = dot / math.sqrt(norm) + self._span_bias
            if len(self._span_logits) < 500_000:
                self._span_logits[word.token] = logit
        return logit

    def raw_scores(self, text: str, article: Article | None = None) -> RawScores:
        """Score without calibration or decision (training tunes calibration and thresholds on this)."""
        return self._score([self._prepare(text, article)])[0]

    def _prepare(self, text: str, article: Article | None) -> _Prepared:
        """Check the input and do the per-comment text work: everything before the arithmetic."""
        check_input(text, article)
        article_vec = self.article_vector(article) if article is not None and not article.is_empty else None
        analysis = analyze_normalized(normalize(text), article_vec.words if article_vec is not None else None)
        return _Prepared(analysis, self.space.analysis_ids(analysis), article_vec)

    def _score(self, batch: Sequence[_Prepared]) -> list[RawScores]:
        """The arithmetic of `raw_scores` for many comments at once, the same code for one or many.

        Every comment has a document vector and, when it has several sentences, one per sentence
        (a single sentence is the document). All of them are vectorised together, the documents go
        through one sparse product with the heads' weights, the sentences through one sum, and all
        through one pass of cosines with the articles: per comment, numpy's call overhead would
        cost more than the arithmetic. Each row is computed on its own, so the numbers do not
        depend on what else is in the batch.
        """
        n_docs = len(batch)
        flat: list[int] = []
        doc_lengths: list[int] = []
        # Each comment's `doc` ids in pieces: its sentences (when it has several), then the rest;
        # the row of each piece's sentence vector (-1: the rest, in the document vector only).
        piece_lengths: list[int] = []
        piece_rows: list[int] = []
        row_owners: list[int] = []  # per document, then per sentence row: its article in `articles`, or -1
        sentence_owners: list[int] = []
        articles: list[ArticleVector] = []
        article_index: dict[int, int] = {}  # by id(): the batch holds every article it indexes
        first_sentence_rows: list[int] = []  # each comment's first sentence row (if it has several)
        n_rows = n_docs
        for prepared in batch:
            ids = prepared.ids
            owner = -1
            if prepared.article is not None:
                owner = article_index.setdefault(id(prepared.article), len(articles))
                if owner == len(articles):
                    articles.append(prepared.article)
            row_owners.append(owner)
            flat.extend(ids.doc)
            doc_lengths.append(len(ids.doc))
            first_sentence_rows.append(n_rows)
            rest = len(ids.doc)
            if len(ids.sentences) > 1:
                for sentence in ids.sentences:
                    piece_lengths.append(len(sentence))
                    piece_rows.append(n_rows)
                    sentence_owners.append(owner)
                    rest -= len(sentence)
                    n_rows += 1
            piece_lengths.append(rest)
            piece_rows.append(-1)
        ids_array = np.fromiter(flat, dtype=np.int64, count=len(flat))
        sentence_of = np.repeat(np.array(piece_rows, dtype=np.int64), piece_lengths)
        in_sentence = np.flatnonzero(sentence_of >= 0)
        doc_rows = np.repeat(np.arange(n_docs, dtype=np.int64), doc_lengths)
        vectors = self.space.vectorize_rows(
            np.concatenate([ids_array, ids_array[in_sentence]]),
            np.concatenate([doc_rows, sentence_of[in_sentence]]),
            n_rows,
        )
        cut = vectors.indptr[n_docs]
        doc_logits = (self._doc_dots(vectors, n_docs) + self._bias).tolist()
        sentence_sums = np.bincount(
            vectors.rows[cut:] - n_docs,
            weights=vectors.values[cut:] * self._sentence_weights[vectors.indices[cut:]],
            minlength=n_rows - n_docs,
        )
        sentence_logits = (sentence_sums + self._bias[self._column["spam_sentence"]]).tolist()
        cosines: list[float] = []
        if articles:
            owners = np.array(row_owners + sentence_owners, dtype=np.int64)
            cosines = article_cosines(vectors, owners, articles, len(self.space.idf)).tolist()
        out = []
        for k, (prepared, first) in enumerate(zip(batch, first_sentence_rows, strict=True)):
            z = doc_logits[k]
            n_sentences = len(prepared.analysis.sentences)
            several = n_sentences > 1  # else the only sentence (if any) is the document
            if several:
                sentence_z = sentence_logits[first - n_docs : first - n_docs + n_sentences]
            else:
                sentence_z = [z[self._column["spam_sentence"]]] * n_sentences
            similarity = None
            if prepared.article is not None:
                own = cosines[first : first + n_sentences] if several else [cosines[k]] * n_sentences
                similarity = (cosines[k], own)
            out.append(self._raw(prepared, z, sentence_z, similarity))
        return self._restack(out)

    def _restack(self, raws: list[RawScores]) -> list[RawScores]:
        """The plug stacker's second look at the sentences of comments with an article (one pass of
        the trees over every such sentence of the batch); comments without one keep the first stage's."""
        trees = self._plug_trees
        stacked = [k for k, raw in enumerate(raws) if raw.plug_inputs is not None and len(raw.plug_sentences)]
        if trees is None or not stacked:
            return raws
        inputs = [raws[k].plug_inputs for k in stacked]
        logits = trees.decision_function(np.vstack([x for x in inputs if x is not None])).tolist()
        start = 0
        for k in stacked:
            raw = raws[k]
            mine = logits[start : start + len(raw.plug_sentences)]
            start += len(mine)
            sentence_logits = [-math.inf] * len(raw.sentence_logits)
            for i, logit in zip(raw.plug_sentences, mine, strict=True):
                sentence_logits[i] = logit
            raws[k] = replace(
                raw,
                logits={**raw.logits, "spam": max(mine), "spam_first_stage": raw.logits["spam"]},
                sentence_logits=sentence_logits,
                spam_calibration="spam_in_context",
            )
        return raws

    def _doc_dots(self, vectors: SparseRows, n_docs: int) -> np.ndarray:
        """Rows 0..n_docs-1 of `vectors` times the heads' weights: one gather, one product, one sum
        per row and head (numpy, in row order: cheaper than building a scipy matrix for a few rows)."""
        out = np.zeros((n_docs, len(self._bias)))
        cut = vectors.indptr[n_docs]
        if not cut:
            return out
        products = np.take(self._weights, vectors.indices[:cut], axis=0)
        products *= vectors.values[:cut, None]
        starts = vectors.indptr[:n_docs]
        filled = np.flatnonzero(vectors.indptr[1 : n_docs + 1] > starts)  # an empty row adds nothing
        out[filled] = np.add.reduceat(products, starts[filled], axis=0)
        return out

    def _raw(
        self,
        prepared: _Prepared,
        z: list[float],
        sentence_z: list[float],
        similarity: tuple[float, list[float]] | None,
    ) -> RawScores:
        """One comment's RawScores from its document logits `z` (in DOC_HEADS order), each
        sentence's spam-sentence logit and, with an article, the document's and each sentence's
        cosine with it."""
        analysis, article_vec = prepared.analysis, prepared.article
        column = self._column
        # Spam: the comment as a whole (a head trained on comments), or its most spam-like sentence
        # (a head trained on single sentences with marked plugs), whichever is worse.
        sentence_logits = [
            logit if len(sentence.words) >= MIN_SENTENCE_WORDS else -math.inf
            for sentence, logit in zip(analysis.sentences, sentence_z, strict=True)
        ]
        spam_logit = z[column["spam"]]
        logits = {name: z[column[name]] for name in ("toxicity", "toxic_span_gate", *ATTRIBUTES)}
        logits["spam"] = max([spam_logit, *sentence_logits])
        # The most toxic word (toxicity's second calibration input): a plain loop over the
        # per-token cache of `_word_span_logit`, 2.5 % of a batch, a quarter less than a generator.
        cached = self._span_logits.get
        most_toxic = TOXIC_WORD_FLOOR
        for sentence in analysis.sentences:
            for word in sentence.words:
                logit = cached(word.token)
                if logit is None:
                    logit = self._word_span_logit(word)
                if logit > most_toxic:
                    most_toxic = logit
        logits["toxic_word"] = most_toxic
        features = None
        if article_vec is None or similarity is None:
            return RawScores(analysis, logits, sentence_logits, prepared.ids, features)
        cosine, sentence_cosines = similarity
        text_logit = z[column["off_topic_text"]]
        best = max(sentence_cosines, default=0.0)
        features = off_topic_row(analysis, cosine, best, text_logit, spam_logit, article_vec)
        logits["off_topic"] = float(features @ self._off_topic_coef) + self._off_topic_bias
        judged, inputs = plug_rows(
            [sentence.extra for sentence in analysis.sentences],
            sentence_logits,
            spam_logit,
            sentence_cosines,
            features.tolist(),
        )
        return RawScores(analysis, logits, sentence_logits, prepared.ids, features, judged, inputs)

    def assess(self, text: str, article: Article | None = None, *, policy: Policy | None = None) -> Assessment:
        """Score one comment; `article` enables the off-topic score; `policy` overrides thresholds."""
        return self._assess_raw(self.raw_scores(text, article), policy)

    def _assess_many(self, items: Sequence[tuple[str, Article | None]], policy: Policy | None) -> list[Assessment]:
        """`assess` for each item, with the arithmetic done a chunk of comments at a time."""
        out: list[Assessment] = []
        with _collector_paused():
            for start in range(0, len(items), BATCH_CHUNK):
                prepared = [self._prepare(text, article) for text, article in items[start : start + BATCH_CHUNK]]
                out.extend(self._assess_raw(raw, policy) for raw in self._score(prepared))
        return out

    def _assess_raw(self, raw: RawScores, policy: Policy | None) -> Assessment:
        """Calibrate, explain and decide: the part of `assess` after the scoring."""
        scores: dict[str, float | None] = {
            "spam": self._calibrated(raw.spam_calibration, raw.logits, raw.logits["spam"]),
            "toxicity": self._calibrated("toxicity", raw.logits),
            "off_topic": self._calibrated("off_topic", raw.logits) if "off_topic" in raw.logits else None,
        }
        attributes = {name: self._calibrated(name, raw.logits) for name in ATTRIBUTES}
        used = policy or self.policy
        evidence = self._evidence(raw, scores, attributes, used)
        verdict = decide(scores, used)
        reasons = tuple(evidence[label] for label in verdict.flagged)
        return Assessment(verdict.action, scores, attributes, reasons, self.version, evidence)

    def _spans(self, analysis: Analysis, pieces: Sequence[tuple[int, int]]) -> tuple[Span, ...]:
        """Normalized [start, end) pieces, in order, as spans of the original text. Pieces that meet
        in one original character (one that normalized into several, "¼" -> "1⁄4", each part in
        another piece) are one span: spans of a reason never overlap."""
        merged: list[list[int]] = []
        for start, end in pieces:
            o_start, o_end = analysis.normalized.to_original(start, end)
            if merged and o_start < merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], o_end)
            else:
                merged.append([o_start, o_end])
        original = analysis.normalized.original
        return tuple(Span(s, e, original[s:e]) for s, e in merged)

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
        sentence_scores = [
            self._calibrated(raw.spam_calibration, raw.logits, z) if z > -math.inf else 0.0 for z in sentence_logits
        ]
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
        spans = self._spans(analysis, [(analysis.sentences[i].start, analysis.sentences[i].end) for i in picked])
        spam_text = [text[analysis.sentences[i].start : analysis.sentences[i].end] for i in picked]
        spam_signals = signals(" ".join(spam_text), obfuscated=analysis.normalized.obfuscated) if spam_text else []
        if any("s:novel_brand" in analysis.sentences[i].extra for i in picked):
            spam_signals.append("unmentioned_brand")
        elif any("s:novel_name" in analysis.sentences[i].extra for i in picked):
            spam_signals.append("unmentioned_name")
        evidence["spam"] = Reason("spam", spam_score, spans, tuple(spam_signals))

        # Toxicity: words whose span head fires, merged into phrases.
        toxicity = scores["toxicity"] or 0.0
        tox_spans: tuple[Span, ...] = ()
        if toxicity >= policy.thresholds["toxicity"].hold:
            spans_found = self.toxic_word_spans(raw, gate=self.span_gate, word=self.span_word, length=self.span_length)
            tox_spans = self._spans(analysis, spans_found)
        tox_signals = tuple(name for name in ATTRIBUTES if attributes[name] >= 0.5)
        evidence["toxicity"] = Reason("toxicity", toxicity, tox_spans, tox_signals)

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
        # The length a reader sees: zero-width characters stuffed in must not raise the cut.
        chars = max(visible_length(raw.analysis.normalized.original), SPAN_REFERENCE_CHARS / 10)
        cut = math.log(word / (1.0 - word)) + length * math.log(chars / SPAN_REFERENCE_CHARS)
        text = raw.analysis.normalized.text
        merged: list[list[int]] = []
        toxic = (w for s in raw.analysis.sentences for w in s.words if self._word_span_logit(w) >= cut)
        for start, end in ((w.start, w.end) for w in toxic):
            if merged and not text[merged[-1][1] : start].strip(" ,'\"-"):
                merged[-1][1] = end
            else:
                merged.append([start, end])
        return [(s, e) for s, e in merged]

    def assess_batch(
        self, items: Sequence[tuple[str, Article | None]], *, policy: Policy | None = None, processes: int = 1
    ) -> list[Assessment]:
        """Score many comments, in order (articles are vectorised once each thanks to the article cache).

        Exactly what `assess` says for each, faster: the arithmetic runs for `BATCH_CHUNK`
        comments at a time.

        `processes > 1` splits a large batch over forked worker processes that share this engine's
        memory (nothing is pickled but the comments and the results). Only for single-threaded
        callers such as batch scripts: forking a process that runs other threads (a web server) is
        unsafe, so the service never passes it.
        """
        if processes <= 1 or len(items) < 200 * processes:
            return self._assess_many(items, policy)
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


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a batch is scored.

    Scoring allocates a few hundred small container objects per comment (words, sentences,
    reasons) that reference counting frees; none form cycles (a batch leaves no cyclic garbage:
    `tests/classifier/test_engine.py`). The collector still walks the young ones every 700
    allocations and, every few batches, every object the process has imported (about 100,000, a
    35-50 ms pass). On `scripts/bench.py`'s 2,000 comments that was about a tenth of batch time.
    Only the batch path pauses it: one `assess` allocates too little to be worth it, and the
    server scores requests one at a time on several threads. When threads batch at once, the
    collector is back on once the first of them ends, which costs speed, never memory.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_BATCH: tuple[Engine, Policy | None] | None = None


def _assess_chunk(items: list[tuple[str, Article | None]]) -> list[Assessment]:
    """Worker side of `Engine.assess_batch(processes=N)`: the engine came with the fork."""
    assert _BATCH is not None
    engine, policy = _BATCH
    return engine._assess_many(items, policy)
