"""The `moderato` command: site create / rotate-key / policy, moderator create, db upgrade, lazy imports."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from api.cli import main
from api.store.sites import authenticate_moderator, authenticate_site, get_site


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


def test_db_upgrade_creates_the_default_sqlite_database(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MODERATO_DATA_DIR", str(tmp_path / "data"))
    assert main(["db", "upgrade"]) == 0
    assert (tmp_path / "data" / "moderato.db").is_file()


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
