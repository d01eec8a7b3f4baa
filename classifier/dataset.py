"""Labelled comments from every source, in one record type, with the fixed train/dev split.

Sources: the public corpora in `../shared/corpora` (read by path, never copied), our own
`training_data/` (articles + comments we wrote), and moderator feedback handed over by the API.
Each source only fills the labels it really has; a head is trained on the rows that carry its label.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from classifier.decision import ATTRIBUTES
from classifier.errors import InputError
from classifier.text import sentence_spans
from classifier.types import Article

csv.field_size_limit(sys.maxsize)

TOXIC_FAMILY = ("toxicity", *ATTRIBUTES)


def split_of(text: str) -> str:
    """The shared corpora's rule: `dev` when SHA-1 of the lower-cased, stripped text is divisible by 5."""
    digest = hashlib.sha1(text.lower().strip().encode("utf-8")).hexdigest()
    return "dev" if int(digest, 16) % 5 == 0 else "train"


@dataclass(frozen=True)
class Example:
    """One labelled comment. `labels` maps a label or attribute name to 0/1 (or a soft 0..1)."""

    text: str
    source: str
    split: str
    labels: dict[str, float]
    article: Article | None = None
    spam_spans: tuple[tuple[int, int], ...] = ()
    toxic_spans: tuple[tuple[int, int], ...] | None = None  # None: not annotated
    kind: str = ""
    weight: float = 1.0
    meta: dict[str, str] = field(default_factory=dict)


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        yield from csv.DictReader(handle)


def _flag(value: str) -> float:
    return 1.0 if float(value) >= 0.5 else 0.0


def load_youtube(path: Path) -> list[Example]:
    return [
        Example(r["CONTENT"], "youtube", r["split"], {"spam": float(r["CLASS"])}, meta={"video": r["video"]})
        for r in _rows(path)
    ]


def load_sms(path: Path) -> list[Example]:
    return [Example(r["text"], "sms", r["split"], {"spam": float(r["label"] == "spam")}) for r in _rows(path)]


def load_davidson(path: Path) -> list[Example]:
    out = []
    for r in _rows(path):
        cls = int(r["class"])
        out.append(
            Example(
                r["tweet"],
                "davidson",
                r["split"],
                {"toxicity": float(cls in (0, 1)), "identity_attack": float(cls == 0)},
            )
        )
    return out


_JIGSAW_MAP = {
    "toxic": "toxicity",
    "severe_toxic": "severe_toxicity",
    "obscene": "obscene",
    "threat": "threat",
    "insult": "insult",
    "identity_hate": "identity_attack",
}


def load_jigsaw(path: Path, source: str) -> list[Example]:
    out = []
    for r in _rows(path):
        text = r.get("text") or r["comment_text"]
        out.append(Example(text, source, r["split"], {ours: float(r[theirs]) for theirs, ours in _JIGSAW_MAP.items()}))
    return out


def load_civil(path: Path) -> list[Example]:
    out = []
    for r in _rows(path):
        labels = {"toxicity": _flag(r["toxicity"])}
        for name in ("severe_toxicity", "obscene", "threat", "insult", "identity_attack"):
            labels[name] = _flag(r[name])
        out.append(Example(r["text"], "civil", r["split"], labels, meta={"toxicity_fraction": r["toxicity"]}))
    return out


def load_wiki_talk(path: Path) -> list[Example]:
    return [Example(r["text"], "wiki_talk", r["split"], {"toxicity": float(r["label"])}) for r in _rows(path)]


_SPAN_TYPES = {
    "Insult": "insult",
    "Threat": "threat",
    "Profane/Obscene": "obscene",
    "Identity based Attack": "identity_attack",
}


def toxicspans_gold(row: dict[str, object]) -> tuple[tuple[int, int], ...]:
    """SemEval-2021 Task 5 gold: characters marked by at least half of the post's raters."""
    text = str(row["comment_text"])
    n_raters = int(row["n_annotators"])  # type: ignore[call-overload]
    marked: dict[object, set[int]] = {}
    for span in row["spans"]:  # type: ignore[attr-defined]
        marked.setdefault(span["annotation"], set()).update(range(span["start"], min(span["end"], len(text))))
    counts = [0] * len(text)
    for chars in marked.values():
        for c in chars:
            counts[c] += 1
    gold = [i for i, n in enumerate(counts) if n * 2 >= n_raters and n > 0]
    return _runs(gold)


def _runs(chars: Iterable[int]) -> tuple[tuple[int, int], ...]:
    runs: list[list[int]] = []
    for c in sorted(chars):
        if runs and c == runs[-1][1]:
            runs[-1][1] = c + 1
        else:
            runs.append([c, c + 1])
    return tuple((a, b) for a, b in runs)


def load_toxicspans(path: Path) -> list[Example]:
    """Civil Comments posts rated toxic, with raters' spans. All were toxic (>= 0.5) in Civil Comments."""
    out = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            n = int(row["n_annotators"])
            votes = row.get("span_type_votes") or {}
            labels = {"toxicity": 1.0}
            for theirs, ours in _SPAN_TYPES.items():
                labels[ours] = float(votes.get(theirs, 0) * 2 >= n and votes.get(theirs, 0) > 0)
            out.append(
                Example(
                    row["comment_text"],
                    "toxicspans",
                    row["split"],
                    labels,
                    toxic_spans=toxicspans_gold(row),
                    meta={"majority_not_toxic": str(row.get("majority_not_toxic", 0))},
                )
            )
    return out


SHARED_FILES = {
    "youtube": ("youtube_spam_psy_katyperry_lmfao.csv", load_youtube),
    "sms": ("sms_spam_collection.csv", load_sms),
    "davidson": ("davidson_hate_offensive.csv", load_davidson),
    "jigsaw5k": ("jigsaw_wiki_toxic_5k.csv", lambda p: load_jigsaw(p, "jigsaw5k")),
    "jigsaw_sample": ("jigsaw_wiki_toxic_sample.csv", lambda p: load_jigsaw(p, "jigsaw_sample")),
    "civil": ("civil_comments_stratified.csv", load_civil),
    "wiki_talk": ("wiki_talk_context_toxicity.csv", load_wiki_talk),
    "toxicspans": ("toxicspans_civilcomments.jsonl", load_toxicspans),
}


def default_corpora_dir() -> Path:
    """`../shared/corpora` beside the repository checkout."""
    return Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"


def load_shared(corpora_dir: Path, names: Iterable[str] | None = None) -> dict[str, list[Example]]:
    """Every shared corpus that exists in `corpora_dir`, by short name."""
    out = {}
    for name in names or SHARED_FILES:
        filename, loader = SHARED_FILES[name]
        path = corpora_dir / filename
        if path.exists():
            out[name] = loader(path)
    return out


# --- our own corpus -------------------------------------------------------------------------

OUR_KINDS = ("ham", "hard_ham", "embedded_spam", "spam", "toxic", "off_topic")


def load_articles(path: Path) -> dict[str, Article]:
    articles = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                articles[row["id"]] = Article(title=row["title"], body=row["body"])
    return articles


def load_training_data(directory: Path) -> list[Example]:
    """`training_data/comments.jsonl` joined with `articles.jsonl` (see training_data/README.md)."""
    articles = load_articles(directory / "articles.jsonl")
    out = []
    with (directory / "comments.jsonl").open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            article_id = row.get("article_id")
            if article_id is not None and article_id not in articles:
                raise InputError(f"comments.jsonl line {number}: unknown article_id {article_id!r}")
            spans = row.get("spans", {})
            out.append(
                Example(
                    row["text"],
                    "moderato",
                    row["split"],
                    {k: float(v) for k, v in row["labels"].items()},
                    article=articles.get(article_id) if article_id else None,
                    spam_spans=tuple(tuple(s) for s in spans.get("spam", [])),  # type: ignore[misc]
                    toxic_spans=tuple(tuple(s) for s in spans.get("toxicity", [])) if row["kind"] == "toxic" else (),  # type: ignore[misc]
                    kind=row["kind"],
                    meta={"id": row["id"], "article_id": article_id or ""},
                )
            )
    return out


def default_training_data_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "training_data"


# --- augmentation ---------------------------------------------------------------------------


def splice_spam(
    hams: list[Example], spams: list[Example], *, n: int, seed: int, source: str = "spliced"
) -> list[Example]:
    """Slip real spam messages into real ham comments at a sentence boundary (start, middle or end).

    Public data has whole-comment spam only; this teaches the sentence-level spam head and the
    document head what an embedded plug looks like. The spam span of each result is known exactly.
    Built at training time from `train` rows only and never written to disk.
    """
    rng = random.Random(seed)
    out: list[Example] = []
    if not hams or not spams:
        return out
    for _ in range(n):
        ham = rng.choice(hams).text.strip()
        plug = " ".join(rng.choice(spams).text.split())
        bounds = [0] + [e for _, e in sentence_spans(ham)]
        cut = rng.choice(bounds)
        before, after = ham[:cut].rstrip(), ham[cut:].lstrip()
        if before and before[-1] not in ".!?":
            before += "."
        pieces = [p for p in (before, plug, after) if p]
        text = " ".join(pieces)
        start = text.index(plug, len(before))
        out.append(
            Example(
                text, source, "train", {"spam": 1.0}, spam_spans=((start, start + len(plug)),), kind="embedded_spam"
            )
        )
    return out


def span_residual(example: Example) -> Example | None:
    """A ToxicSpans post with its agreed toxic spans cut out, as a non-toxic row (None if too little is left).

    ToxicSpans holds toxic posts only, so on its own it teaches that every word common in angry
    news comments is toxic, the topic words ("Muslims", "Trump") as much as the insults. Its raters
    said which words made each post toxic; the rest of the post without them is the contrast it
    lacks. Only posts with agreed spans have one: where raters did not agree, nothing can be cut.
    """
    if not example.toxic_spans:
        return None
    pieces, last = [], 0
    for start, end in example.toxic_spans:
        pieces.append(example.text[last:start])
        last = end
    pieces.append(example.text[last:])
    text = " ".join(" ".join(pieces).split())
    if sum(c.isalpha() for c in text) < 20:
        return None
    return Example(text, "toxicspans_residual", example.split, {"toxicity": 0.0})


def with_split(examples: Iterable[Example], split: str) -> list[Example]:
    return [e for e in examples if e.split == split]


def relabel(example: Example, **labels: float) -> Example:
    return replace(example, labels={**example.labels, **labels})


# --- the training pool ----------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class TrainingPool:
    """The rows a bundle is trained on, and what the manifest records about where they came from."""

    examples: list[Example]
    sources: dict[str, dict[str, object]]


def _sample(rows: list[Example], n: int, seed: int) -> list[Example]:
    if len(rows) <= n:
        return list(rows)
    return random.Random(seed).sample(rows, n)


def assemble_training_pool(
    *,
    training_data_dir: Path | None,
    corpora_dir: Path | None,
    feedback: Sequence[Example] = (),
    seed: int = 1234,
    n_spliced: int = 2500,
    spam_negatives_per_corpus: int = 600,
) -> TrainingPool:
    """Train-split rows of our corpus and the shared corpora, moderator feedback, and spliced plugs.

    Toxicity corpora also serve as spam negatives (a sample per corpus): they are real reader
    comments with no spam, which keeps angry or rude comments from looking like spam.
    """
    examples: list[Example] = []
    sources: dict[str, dict[str, object]] = {}
    if training_data_dir is not None and (training_data_dir / "comments.jsonl").exists():
        ours = with_split(load_training_data(training_data_dir), "train")
        examples.extend(ours)
        sources["training_data"] = {
            "rows": len(ours),
            "sha256": {name: file_sha256(training_data_dir / name) for name in ("articles.jsonl", "comments.jsonl")},
        }
    shared: dict[str, list[Example]] = {}
    if corpora_dir is not None and corpora_dir.exists():
        shared = {name: with_split(rows, "train") for name, rows in load_shared(corpora_dir).items()}
        for name, rows in shared.items():
            filename = SHARED_FILES[name][0]
            sources[name] = {"rows": len(rows), "file": filename, "sha256": file_sha256(corpora_dir / filename)}
            if name in ("youtube", "sms"):
                examples.extend(rows)
                continue
            spam_free = {id(e) for e in _sample(rows, spam_negatives_per_corpus, seed)}
            examples.extend(relabel(e, spam=0.0) if id(e) in spam_free else e for e in rows)
    if feedback:
        examples.extend(feedback)
        sources["feedback"] = {"rows": len(feedback)}
    hams = [
        e
        for name in ("civil", "wiki_talk", "jigsaw5k")
        for e in shared.get(name, [])
        if e.labels.get("toxicity", 1.0) < 0.5 and 40 <= len(e.text) <= 500
    ]
    spams = [e for name in ("youtube", "sms") for e in shared.get(name, []) if e.labels.get("spam", 0) >= 0.5]
    spliced = splice_spam(hams, spams, n=n_spliced, seed=seed)
    if spliced:
        examples.extend(spliced)
        sources["spliced"] = {
            "rows": len(spliced),
            "from": "train rows of civil/wiki_talk/jigsaw5k ham + youtube/sms spam",
        }
    return TrainingPool(examples, sources)
