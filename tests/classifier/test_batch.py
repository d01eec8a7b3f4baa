"""`moderato score`'s engine side: JSONL in, verdicts out, bad lines reported and skipped."""

from __future__ import annotations

import io
import json

import pytest

from classifier import Engine
from classifier.batch import score_stream
from classifier.engine import MAX_CHARS


@pytest.fixture(scope="module")
def engine(tiny_bundle):
    return Engine.load(tiny_bundle)


def test_scores_good_lines_and_reports_bad_ones_with_line_numbers(engine):
    lines = [
        json.dumps({"id": "a", "text": "Flooding again in the square, the council knew."}),
        "{not json",
        json.dumps({"id": "b"}),
        "",
        json.dumps({"id": "c", "text": "Great post", "article": {"title": "Flood", "body": "River burst."}}),
        json.dumps({"id": "d", "text": "x", "article": "nope"}),
    ]
    out, err = io.StringIO(), io.StringIO()
    code = score_stream(engine, io.StringIO("\n".join(lines) + "\n"), out, err)
    assert code == 1
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["id"] for r in results] == ["a", "c"]
    assert "line 2: not JSON" in err.getvalue()
    assert "line 3: no text" in err.getvalue()
    assert "line 6:" in err.getvalue()
    first = results[0]
    assert set(first) == {"id", "decision", "scores", "attributes", "reasons", "model_version"}
    assert first["decision"] in {"approve", "hold", "reject"}
    assert first["scores"]["off_topic"] is None
    assert results[1]["scores"]["off_topic"] is not None
    assert set(first["attributes"]) == {"insult", "threat", "obscene", "identity_attack", "severe_toxicity"}
    assert first["model_version"] == "tiny-test"


def test_all_good_lines_exit_zero(engine):
    out, err = io.StringIO(), io.StringIO()
    assert score_stream(engine, io.StringIO(json.dumps({"id": "1", "text": "hi"}) + "\n"), out, err) == 0
    assert err.getvalue() == ""


def test_a_long_input_is_scored_in_chunks_in_order_with_bad_lines_skipped(engine):
    texts = [f"Comment {i}: the council must publish the flood report" + " now" * (i % 7) for i in range(150)]
    lines = [json.dumps({"id": str(i), "text": t}) for i, t in enumerate(texts)]
    lines[70] = json.dumps({"id": "70", "text": "x" * (MAX_CHARS + 1)})
    lines[140] = "{broken"
    out, err = io.StringIO(), io.StringIO()
    assert score_stream(engine, io.StringIO("\n".join(lines) + "\n"), out, err) == 1
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    kept = [i for i in range(150) if i not in (70, 140)]
    assert [r["id"] for r in results] == [str(i) for i in kept]
    assert [r["scores"]["spam"] for r in results] == [engine.assess(texts[i]).to_dict()["scores"]["spam"] for i in kept]
    assert "line 71: comment text longer than" in err.getvalue() and "line 141: not JSON" in err.getvalue()


def test_hostile_lines_are_reported_and_skipped_and_the_rest_still_written_as_utf8(engine):
    """Bytes that are not UTF-8 and escaped lone surrogates used to end the run with a UnicodeEncodeError
    (and lose the whole chunk); a huge integer or deep nesting with a ValueError / RecursionError."""
    raw = b"\n".join(
        [
            b'\xef\xbb\xbf{"id": "bom", "text": "First line of a file saved with a BOM."}\r',
            b'{"id": "bad-bytes", "text": "caf\xe9 au lait"}',
            json.dumps({"id": "text", "text": "a \ud800 b"}).encode(),
            json.dumps({"id": "\udc00", "text": "fine"}).encode(),
            json.dumps({"id": "article", "text": "fine", "article": {"title": "\ud83d", "body": ""}}).encode(),
            b'{"id": true, "text": "a boolean is no id"}',
            b'{"id": "big", "text": "x", "n": ' + b"9" * 5000 + b"}",
            b"[" * 100_000 + b"]" * 100_000,
            json.dumps({"id": "invisible", "text": "\u200b\u00ad\ufeff"}).encode(),
            json.dumps({"id": "nul", "text": "a\x00b, the council again"}).encode(),
            b'{"id": "cr", \r "text": "a CR is JSON whitespace, not the end of a line"}',
            b"\xef\xbb\xbf",
            b'{"id": "last", "text": "The council should publish the report."}',
        ]
    )
    infile = io.TextIOWrapper(io.BytesIO(raw + b"\n"), encoding="utf-8", errors="surrogateescape", newline="\n")
    out, err = io.BytesIO(), io.StringIO()
    outfile = io.TextIOWrapper(out, encoding="utf-8")
    assert score_stream(engine, infile, outfile, err) == 1
    outfile.flush()
    ids = [json.loads(line)["id"] for line in out.getvalue().decode("utf-8").splitlines()]
    assert ids == ["bom", "nul", "cr", "last"]
    reported = [line.split(":")[0] for line in err.getvalue().splitlines()[:-1]]
    assert reported == [f"line {n}" for n in (2, 3, 4, 5, 6, 7, 8, 9)]
    assert "line 2: not UTF-8" in err.getvalue() and "line 3: lone surrogate" in err.getvalue()
    assert err.getvalue().splitlines()[-1] == "8 line(s) skipped"


def test_line_breaks_inside_span_texts_are_escaped(engine):
    """U+2028 / U+0085 are valid raw in JSON, but `splitlines` would cut the verdict in two there."""
    text = "Buy followers cheap \u2028 at bit.ly/xyz now"
    out, err = io.StringIO(), io.StringIO()
    score_stream(engine, io.StringIO(json.dumps({"id": "1", "text": text}) + "\n"), out, err)
    [line] = out.getvalue().splitlines()
    spans = [span["text"] for reason in json.loads(line)["reasons"] for span in reason["spans"]]
    assert any("\u2028" in span for span in spans), spans
