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
