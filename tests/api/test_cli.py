"""The `moderato` command: site create / rotate-key / policy, moderator create, db upgrade, lazy imports."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from api.cli import main
from api.db import alembic_config
from api.store.sites import authenticate_moderator, authenticate_site, get_site
from classifier.batch import CHUNK_LINES


@pytest.fixture
def cli_env(monkeypatch, database_url, tmp_path, tiny_bundle, db):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MODERATO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MODERATO_BUNDLE", str(tiny_bundle))


def run(capsys, *argv: str) -> tuple[int, list[str], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.strip().splitlines(), err


def test_site_create_prints_the_key_last_and_the_webhook_secret_before(cli_env, capsys, db):
    code, lines, _ = run(
        capsys,
        "site",
        "create",
        "my-blog",
        "--url",
        "https://blog.example",
        "--webhook-url",
        "https://blog.example/hook",
    )
    assert code == 0
    key, secret = lines[-1], lines[-2]
    assert secret.startswith("whsec_")
    with db.read_session() as session:
        assert authenticate_site(session=session, api_key=key).name == "my-blog"
        site = get_site(session=session, name="my-blog")
        assert site.webhook_secret == secret and site.url == "https://blog.example"
    code, lines, _ = run(capsys, "site", "create", "plain")
    assert code == 0 and not any(line.startswith("whsec_") for line in lines)


@pytest.mark.parametrize("name", ["My Blog", "blog_1", "", "x" * 64, "ÄÖ"])
def test_site_names_are_slugs(cli_env, capsys, name):
    code, _, err = run(capsys, "site", "create", name)
    assert code == 2 and "name" in err


def test_duplicate_site_is_refused(cli_env, capsys):
    run(capsys, "site", "create", "twice")
    code, _, err = run(capsys, "site", "create", "twice")
    assert code == 2 and "already exists" in err


def test_rotate_key(cli_env, capsys, db):
    old = run(capsys, "site", "create", "rotating")[1][-1]
    code, lines, _ = run(capsys, "site", "rotate-key", "rotating", "--grace-hours", "1")
    assert code == 0
    new = lines[-1]
    assert new != old
    with db.read_session() as session:
        assert authenticate_site(session=session, api_key=old).name == "rotating"
        assert authenticate_site(session=session, api_key=new).name == "rotating"
    assert run(capsys, "site", "rotate-key", "missing")[0] == 2


def test_site_policy_shows_and_sets(cli_env, capsys, db, engine):
    run(capsys, "site", "create", "tuned")
    code, lines, _ = run(capsys, "site", "policy", "tuned")
    assert code == 0 and json.loads("\n".join(lines))["mode"] == "enforce"
    code, lines, _ = run(
        capsys, "site", "policy", "tuned", "--mode", "log_only", "--set", "spam.hold=0.2", "--set", "spam.reject=0.6"
    )
    policy = json.loads("\n".join(lines))
    assert code == 0 and policy["mode"] == "log_only"
    assert policy["thresholds"]["spam"] == {"hold": 0.2, "reject": 0.6}
    with db.read_session() as session:
        assert get_site(session=session, name="tuned").policy_overrides == {"spam": {"hold": 0.2, "reject": 0.6}}
    code, lines, _ = run(capsys, "site", "policy", "tuned", "--clear", "spam")
    assert json.loads("\n".join(lines))["overrides"] == {}
    for bad in (
        ["--set", "spam=0.2"],
        ["--set", "spam.hold=high"],
        ["--set", "spam.hold=0.9", "--set", "spam.reject=0.1"],
        ["--set", "ham.hold=0.1"],
    ):
        assert run(capsys, "site", "policy", "tuned", *bad)[0] == 2, bad


def test_moderator_create_prints_the_secret_last(cli_env, capsys, db):
    run(capsys, "site", "create", "staffed")
    code, lines, _ = run(capsys, "moderator", "create", "staffed", "alice", "--role", "admin")
    assert code == 0
    with db.read_session() as session:
        moderator = authenticate_moderator(session=session, secret=lines[-1])
    assert (moderator.name, moderator.role) == ("alice", "admin")
    assert run(capsys, "moderator", "create", "staffed", "alice")[0] == 2


def test_db_upgrade_creates_the_default_sqlite_database_and_says_its_revision(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MODERATO_DATA_DIR", str(tmp_path / "data"))
    assert main(["db", "upgrade", "0001"]) == 0
    assert capsys.readouterr().out == "database at revision 0001\n"
    assert (tmp_path / "data" / "moderato.db").is_file()
    assert main(["db", "upgrade"]) == 0
    head = capsys.readouterr().out
    newest = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head == f"database at revision {newest}\n"
    assert main(["db", "upgrade", "base"]) == 0  # upgrading never goes back: it says where the database is
    assert capsys.readouterr().out == head


def test_cli_import_is_light():
    heavy = "('fastapi', 'sqlalchemy', 'sqlmodel', 'uvicorn')"
    code = f"import sys, api.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2]
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.skipif(importlib.util.find_spec("classifier.batch") is None, reason="classifier.batch not written yet")
def test_score_runs_without_the_web_stack(tmp_path, tiny_bundle):
    infile = tmp_path / "in.jsonl"
    infile.write_text(json.dumps({"id": "1", "text": "Nice article, thanks."}) + "\n")
    outfile = tmp_path / "out.jsonl"
    code = (
        "import sys; from api.cli import main; "
        f"rc = main(['score', '--input', {str(infile)!r}, '--output', {str(outfile)!r}, "
        f"'--bundle', {str(tiny_bundle)!r}]); "
        "print(rc, 'fastapi' in sys.modules, 'sqlalchemy' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2]
    )
    assert out.stdout.split() == ["0", "False", "False"]
    assert json.loads(outfile.read_text().splitlines()[0])["decision"] in ("approve", "hold", "reject")


@pytest.mark.parametrize(
    "option", [("--webhook-url", "file:///etc/passwd"), ("--webhook-url", "not a url"), ("--retention-days", "36501")]
)
@pytest.mark.parametrize("command", ["create", "update"])
def test_site_create_and_update_refuse_what_the_api_refuses(cli_env, capsys, command, option):
    if command == "update":
        run(capsys, "site", "create", "my-blog")
    code, _, err = run(capsys, "site", command, "my-blog", *option)
    assert code == 2 and option[0].removeprefix("--").replace("-", "_") in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# hostile input: one line on stderr and a non-zero exit, never a traceback or lost data

REPO = Path(__file__).resolve().parents[2]


def score_cli(tiny_bundle: Path, *argv: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "api.cli", "score", "--bundle", str(tiny_bundle), *argv],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def test_score_with_standard_input_closed_is_one_line(tiny_bundle):
    # `moderato score <&-`: Python then has no sys.stdin at all.
    done = subprocess.run(
        f"{shlex.quote(sys.executable)} -m api.cli score --bundle {shlex.quote(str(tiny_bundle))} <&-",
        shell=True,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == "moderato: error: no standard input to read: give --input FILE\n"


def test_score_refuses_to_write_over_its_own_input(tmp_path, capsys, tiny_bundle):
    infile = tmp_path / "in.jsonl"
    content = json.dumps({"id": "1", "text": "Nice article, thanks."}) + "\n"
    infile.write_text(content, encoding="utf-8")
    (tmp_path / "link.jsonl").symlink_to(infile)
    for output in (infile, tmp_path / "." / "in.jsonl", tmp_path / "link.jsonl"):
        code, _, err = run(
            capsys, "score", "--bundle", str(tiny_bundle), "--input", str(infile), "--output", str(output)
        )
        assert code == 2 and "is the input file" in err
    assert infile.read_text(encoding="utf-8") == content


@pytest.mark.parametrize(
    "case", ["missing input", "directory input", "output in a missing directory", "directory output", "no bundle"]
)
def test_score_bad_paths_are_one_line_errors(tmp_path, capsys, tiny_bundle, case):
    infile = tmp_path / "in.jsonl"
    infile.write_text(json.dumps({"id": "1", "text": "Nice article, thanks."}) + "\n", encoding="utf-8")
    args = {"--input": str(infile), "--output": str(tmp_path / "out.jsonl"), "--bundle": str(tiny_bundle)}
    args.update(
        {
            "missing input": {"--input": str(tmp_path / "nope.jsonl")},
            "directory input": {"--input": str(tmp_path)},
            "output in a missing directory": {"--output": str(tmp_path / "nope" / "out.jsonl")},
            "directory output": {"--output": str(tmp_path)},
            "no bundle": {"--bundle": str(tmp_path)},
        }[case]
    )
    code, _, err = run(capsys, "score", *(part for pair in args.items() for part in pair))
    assert code in (1, 2) and err.startswith("moderato: error: ") and err.count("\n") == 1


def test_score_reads_and_writes_utf8_whatever_the_locale_says(tiny_bundle):
    """A latin-1 or strict ASCII stdin used to misread UTF-8 or end the run with UnicodeDecodeError."""
    good = json.dumps({"id": "café", "text": "Buy followers cheap \u2014 at bit.ly/xyz now"}, ensure_ascii=False)
    with score_cli(tiny_bundle, env={**os.environ, "PYTHONIOENCODING": "ascii:strict"}) as proc:
        out, err = proc.communicate(good.encode("utf-8") + b"\n\xff\xfe not utf-8\n", timeout=120)
    assert proc.returncode == 1, err
    assert err.decode().splitlines() == ["line 2: not UTF-8 text", "1 line(s) skipped"]
    assert json.loads(out.decode("utf-8"))["id"] == "café"


def test_score_into_a_closed_pipe_ends_with_one_line(tiny_bundle):
    with score_cli(tiny_bundle) as proc:
        assert proc.stdout is not None
        proc.stdout.close()  # `moderato score | head -0`
        _, err = proc.communicate((json.dumps({"id": "1", "text": "Nice article."}) + "\n").encode(), timeout=120)
    assert (
        proc.returncode == 1
        and err.decode() == "moderato: error: the output was closed before every verdict was written\n"
    )


def test_score_interrupted_leaves_whole_verdicts_and_one_line(tmp_path, tiny_bundle):
    output = tmp_path / "out.jsonl"
    lines = [json.dumps({"id": str(i), "text": f"Comment {i} on the flood report."}) for i in range(CHUNK_LINES + 5)]
    with score_cli(tiny_bundle, "--output", str(output)) as proc:
        assert proc.stdin is not None and proc.stderr is not None
        proc.stdin.write(("\n".join(lines) + "\n").encode())
        proc.stdin.flush()  # one chunk is scored and written; the rest waits for more input (Ctrl-C now)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not output.exists() or output.read_text().count("\n") < CHUNK_LINES):
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
        assert proc.stderr.read().decode() == "moderato: interrupted\n"
    verdicts = [json.loads(line)["id"] for line in output.read_text(encoding="utf-8").splitlines()]
    assert verdicts == [str(i) for i in range(CHUNK_LINES)]


@pytest.mark.parametrize("hours", ["-5", "nan", "inf", "1e12"])
@pytest.mark.parametrize("command", ["rotate-key", "coral-secret"])
def test_grace_hours_out_of_range_are_refused(cli_env, capsys, command, hours):
    run(capsys, "site", "create", "graceful")
    code, _, err = run(capsys, "site", command, "graceful", "--grace-hours", hours)
    assert code == 2 and "grace period" in err and err.count("\n") == 1


def test_grace_hours_from_the_environment_are_checked_too(cli_env, capsys, monkeypatch):
    run(capsys, "site", "create", "graceful")
    monkeypatch.setenv("MODERATO_KEY_GRACE_HOURS", "inf")
    code, _, err = run(capsys, "site", "rotate-key", "graceful")
    assert code == 2 and "MODERATO_KEY_GRACE_HOURS" in err


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "a\udcffb"])
def test_moderator_names_follow_the_apis_rules(cli_env, capsys, name):
    run(capsys, "site", "create", "staffed")
    code, _, err = run(capsys, "moderator", "create", "staffed", name)
    assert code == 2 and err.startswith("moderato: error: name") and err.count("\n") == 1


def test_moderator_names_are_stripped_as_by_the_api(cli_env, capsys, db):
    run(capsys, "site", "create", "staffed")
    code, lines, _ = run(capsys, "moderator", "create", "staffed", " carol ")
    assert code == 0 and lines[0] == "created moderator carol for site staffed"
    assert run(capsys, "moderator", "create", "staffed", "carol")[0] == 2


@pytest.mark.parametrize("option", [("--port", "-1"), ("--port", "70000"), ("--workers", "0"), ("--workers", "x")])
def test_serve_refuses_impossible_ports_and_worker_counts(capsys, option):
    with pytest.raises(SystemExit) as exited:
        main(["serve", *option])
    assert exited.value.code == 2 and f"argument {option[0]}" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["garbage", "postgresql+psycopg://nobody@127.0.0.1:1/none"])
def test_an_unusable_database_is_one_line(monkeypatch, tmp_path, capsys, url):
    monkeypatch.setenv("MODERATO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", url)
    code, _, err = run(capsys, "site", "list")
    assert code == 1 and err.startswith("moderato: error: database: ") and err.count("\n") == 1


def test_db_upgrade_to_an_unknown_revision_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MODERATO_DATA_DIR", str(tmp_path))
    code, _, err = run(capsys, "db", "upgrade", "nosuchrev")
    assert code == 1 and "nosuchrev" in err and err.count("\n") == 1


def test_site_policy_with_a_missing_bundle_is_one_line(cli_env, capsys, monkeypatch, tmp_path):
    run(capsys, "site", "create", "tuned")
    monkeypatch.setenv("MODERATO_BUNDLE", str(tmp_path / "nope"))
    code, _, err = run(capsys, "site", "policy", "tuned")
    assert code == 1 and "no bundle" in err and err.count("\n") == 1
