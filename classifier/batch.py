"""Batch scoring of JSON Lines: what `moderato score` runs.

Input, one comment per line: {"id": str, "text": str, "article": {"title", "body"}?, "author": {...}?}
Output, one verdict per line: {"id", "decision", "scores", "attributes", "reasons", "model_version"}.
A bad line is reported on the error stream with its line number and skipped; the run goes on and
the exit code says that something was skipped. A line that is not UTF-8 (read with
errors="surrogateescape") or whose strings hold lone surrogates is bad too: it could not be written
back out as UTF-8, and one such verdict would otherwise fail its whole chunk.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TextIO

from classifier.engine import Engine, check_input
from classifier.errors import InputError
from classifier.text import is_blank
from classifier.types import Article


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_line(line: str) -> tuple[str | None, str, Article | None]:
    """(id, text, article) from one input line; raises InputError saying what is wrong."""
    if not _encodable(line):
        raise InputError("not UTF-8 text")
    try:
        # A BOM opens files written by some Windows tools (and every file of a `cat a.jsonl b.jsonl`).
        item: Any = json.loads(line.removeprefix("\ufeff"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON ({exc.msg} at column {exc.colno})") from exc
    except (ValueError, RecursionError) as exc:  # an integer of over 4300 digits; arrays nested too deep
        raise InputError("not JSON that can be read (a number too long or nesting too deep)") from exc
    if not isinstance(item, dict):
        raise InputError("not a JSON object")
    text = item.get("text")
    if not isinstance(text, str) or is_blank(text):
        raise InputError("no text: 'text' must be a non-empty string", field="text")
    comment_id = item.get("id")
    if comment_id is not None and (not isinstance(comment_id, str | int) or isinstance(comment_id, bool)):
        raise InputError("'id' must be a string", field="id")
    article = None
    raw_article = item.get("article")
    if raw_article is not None:
        if not isinstance(raw_article, dict):
            raise InputError("'article' must be an object with 'title' and 'body'", field="article")
        title, body = raw_article.get("title", ""), raw_article.get("body", "")
        if not isinstance(title, str) or not isinstance(body, str):
            raise InputError("'article.title' and 'article.body' must be strings", field="article")
        article = Article(title=title, body=body)
    strings = [str(comment_id), text, *((article.title, article.body) if article else ())]
    if not all(_encodable(value) for value in strings):
        raise InputError("lone surrogate (e.g. \\ud800) in a string: not valid Unicode")
    check_input(text, article)
    return (None if comment_id is None else str(comment_id)), text, article


#: Span texts are copied from the comment; JSON lets these line breaks stand unescaped, but `str.splitlines`
#: (and other line readers) would cut a verdict in two at them, so they are written as escapes.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})

#: Lines scored together: `Engine.assess_batch` does the arithmetic for a chunk at a time. Output
#: for a chunk is written (and flushed) once the chunk is read, so a slow producer sees it late.
CHUNK_LINES = 64


def score_stream(engine: Engine, infile: Iterable[str], outfile: TextIO, errfile: TextIO) -> int:
    """Score every line of `infile` into `outfile`; 0 when all lines were scored, 1 otherwise."""
    bad = 0
    pending: list[tuple[str | None, str, Article | None]] = []

    def flush() -> None:
        assessments = engine.assess_batch([(text, article) for _, text, article in pending])
        for (comment_id, _, _), assessment in zip(pending, assessments, strict=True):
            line = json.dumps({"id": comment_id, **assessment.to_dict()}, ensure_ascii=False)
            outfile.write(line.translate(_LINE_BREAKS) + "\n")
        outfile.flush()
        pending.clear()

    for number, line in enumerate(infile, 1):
        if not line.lstrip("\ufeff").strip():  # blank (a file saved empty by some editors holds only a BOM)
            continue
        try:
            pending.append(parse_line(line))
        except InputError as exc:
            bad += 1
            errfile.write(f"line {number}: {exc}\n")
            continue
        if len(pending) >= CHUNK_LINES:
            flush()
    flush()
    if bad:
        errfile.write(f"{bad} line(s) skipped\n")
    return 1 if bad else 0
