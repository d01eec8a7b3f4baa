"""`moderato`: the single command line entry point.

    moderato serve [--host H] [--port P] [--workers N]
    moderato score [--input in.jsonl] [--output out.jsonl] [--bundle DIR]
    moderato site create NAME [--url URL] [--webhook-url URL] [--retention-days N]
    moderato site rotate-key NAME [--grace-hours H]
    moderato site policy NAME [--mode enforce|log_only] [--set spam.hold=0.5 ...] [--clear LABEL ...]
    moderato site list | show NAME | update NAME ... | rotate-webhook-secret NAME
    moderato site coral-secret NAME [--secret S] [--grace-hours H]
    moderato moderator create SITE NAME [--role moderator|admin]
    moderato models list | promote VERSION [--note TEXT] | rollback
    moderato db upgrade
    moderato purge

Every command reads the same Settings as the service (MODERATO_DATA_DIR, DATABASE_URL, ...).
Imports are lazy so that `moderato score` never loads FastAPI or the database layer.
Each group is added by one `_add_<group>_commands(subparsers)` function; a new group (e.g. `models`)
is one more such function.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from api.config import Settings
    from api.db import Database
    from classifier import Engine

Handler = Callable[[argparse.Namespace], int]


class CommandError(Exception):
    """A user error: printed as `moderato: error: ...`, exit code 2 (or `exit_code`: 1 when the database,
    a file or the output pipe failed rather than the command line)."""

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


#: The longest grace period a rotated key or Coral secret may keep: 100 years, as for retention.
#: Beyond it `now + grace` leaves the datetime range (and NaN or inf cannot be added at all).
MAX_GRACE_HOURS = 36500 * 24


# ---------------------------------------------------------------------------------------------
# helpers


def _settings() -> Settings:
    from api.config import Settings

    return Settings()


def _database(settings: Settings) -> Database:
    from api.db import Database, migrate

    if settings.auto_migrate:
        migrate(settings.database_url)
    return Database.from_url(settings.database_url)


@contextmanager
def _database_errors() -> Iterator[None]:
    """A database that cannot be reached, a DATABASE_URL that does not parse, an unknown migration
    revision: one line naming the cause, not a traceback."""
    from alembic.util import CommandError as AlembicError
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except (SQLAlchemyError, AlembicError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CommandError(f"database: {first_line}", exit_code=1) from exc


def _run_store(fn: Callable[[Any], Any]) -> Any:
    """Run `fn(session)` in one committed transaction; domain errors become CommandError."""
    from api.errors import ModeratoError

    with _database_errors():
        db = _database(_settings())
        try:
            with db.write_session() as session:
                return fn(session)
        except ModeratoError as exc:
            detail = exc.detail
            if isinstance(detail, list):
                detail = "; ".join(str(d.get("msg", d)) for d in detail)
            raise CommandError(str(detail)) from exc
        finally:
            db.dispose()


def _engine(path: Any) -> Engine:
    """The bundle at `path` (None: the packaged one); a missing or damaged bundle is a one-line error."""
    from classifier import Engine
    from classifier.errors import BundleError

    try:
        return Engine.load(path)
    except BundleError as exc:
        raise CommandError(str(exc), exit_code=1) from exc


def _grace(hours: float | None) -> timedelta:
    """The grace period of a rotated credential: `--grace-hours`, else MODERATO_KEY_GRACE_HOURS."""
    if hours is None:
        hours = _settings().key_grace_hours
    if not (math.isfinite(hours) and 0 <= hours <= MAX_GRACE_HOURS):
        raise CommandError(
            f"the grace period (--grace-hours, MODERATO_KEY_GRACE_HOURS) must be 0 to {MAX_GRACE_HOURS} hours, "
            f"got {hours}"
        )
    return timedelta(hours=hours)


# ---------------------------------------------------------------------------------------------
# serve / score / db / purge


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings()
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers or settings.workers,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
    return 0


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # the output does not exist yet
        return False


def _score(args: argparse.Namespace) -> int:
    from classifier.batch import score_stream

    engine = _engine(args.bundle)
    reading, writing = args.input not in (None, "-"), args.output not in (None, "-")
    if reading and writing and _same_file(args.input, args.output):
        raise CommandError(f"--output {args.output} is the input file: opening it would erase it before it is read")
    # Bytes that are not UTF-8 reach `parse_line` as surrogates, so such a line is reported and skipped
    # like any bad line instead of ending the run; only "\n" ends a line (as for `wc -l`), so a "\r"
    # inside a line (JSON whitespace) does not cut a comment in two. JSON Lines are UTF-8 whatever the locale.
    text_mode: dict[str, Any] = {"encoding": "utf-8", "errors": "surrogateescape", "newline": "\n"}
    if not reading and sys.stdin is None:  # started with standard input closed (`moderato score <&-`)
        raise CommandError("no standard input to read: give --input FILE")
    if not writing and sys.stdout is None:
        raise CommandError("no standard output to write: give --output FILE")
    if isinstance(sys.stdin, io.TextIOWrapper):
        sys.stdin.reconfigure(**text_mode)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(encoding="utf-8")
    try:
        infile = open(args.input, **text_mode) if reading else sys.stdin  # noqa: SIM115
    except OSError as exc:
        raise CommandError(f"cannot read --input {args.input}: {exc.strerror or exc}") from exc
    try:
        outfile = open(args.output, "w", encoding="utf-8") if writing else sys.stdout  # noqa: SIM115
    except OSError as exc:
        infile.close()
        raise CommandError(f"cannot write --output {args.output}: {exc.strerror or exc}") from exc
    try:
        code = int(score_stream(engine, infile, outfile, sys.stderr))
        if outfile is not sys.stdout:
            outfile.close()  # a write that fails only now is still reported
        return code
    except BrokenPipeError as exc:
        if outfile is sys.stdout:
            # The reader went away (`moderato score | head`); the interpreter's own flush of stdout at exit
            # would fail again and print a traceback, so what is left goes nowhere.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise CommandError("the output was closed before every verdict was written", exit_code=1) from exc
    except OSError as exc:
        raise CommandError(f"scoring stopped: {exc.strerror or exc}", exit_code=1) from exc
    finally:
        if infile is not sys.stdin:
            infile.close()
        if outfile is not sys.stdout and not outfile.closed:
            with suppress(OSError):  # the write that failed is reported above; closing flushes it again
                outfile.close()


def _db_upgrade(args: argparse.Namespace) -> int:
    from api.db import migrate

    settings = _settings()
    with _database_errors():
        now = migrate(settings.database_url, args.revision)
    print(f"database at revision {now or 'base (no tables)'}")
    return 0


def _purge(args: argparse.Namespace) -> int:
    from api.store.comments import purge_expired_text

    purged = _run_store(lambda s: purge_expired_text(session=s))
    print(f"purged text and author fields of {purged} comments")
    return 0


# ---------------------------------------------------------------------------------------------
# site


def _site_create(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from api.schemas import SiteCreate
    from api.store.sites import create_site

    try:
        site_in = SiteCreate.model_validate(
            {"name": args.name, "url": args.url, "webhook_url": args.webhook_url, "retention_days": args.retention_days}
        )
    except ValidationError as exc:
        raise CommandError("; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())) from exc
    created = _run_store(lambda s: create_site(session=s, site_in=site_in))
    print(f"created site {created.site.name}; shown once, keep them now:")
    if created.webhook_secret:
        print("the webhook signing secret (X-Moderato-Signature), then the API key (Authorization: Bearer KEY):")
        print(created.webhook_secret)
    else:
        print("the API key (Authorization: Bearer KEY):")
    print(created.api_key)
    return 0


def _site_rotate_key(args: argparse.Namespace) -> int:
    from api.store.sites import rotate_key

    grace = _grace(args.grace_hours)
    key, until = _run_store(lambda s: rotate_key(session=s, name=args.name, grace=grace))
    print(f"previous key(s) of {args.name} keep working until {until.isoformat()}")
    print("new API key (shown once):")
    print(key)
    return 0


def _parse_assignments(values: Sequence[str]) -> dict[str, dict[str, float]]:
    thresholds: dict[str, dict[str, float]] = {}
    for item in values:
        target, sep, raw = item.partition("=")
        label, dot, kind = target.partition(".")
        if not sep or not dot or kind not in ("hold", "reject"):
            raise CommandError(f"--set expects LABEL.hold=X or LABEL.reject=X, got {item!r}")
        try:
            thresholds.setdefault(label, {})[kind] = float(raw)
        except ValueError as exc:
            raise CommandError(f"not a number in {item!r}") from exc
    return thresholds


def _site_policy(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from api.schemas import PolicyUpdate
    from api.store.sites import get_site, policy_public, update_policy

    engine = _engine(_settings().bundle)
    raw: dict[str, Any] = {}
    if args.mode:
        raw["mode"] = args.mode
    thresholds: dict[str, Any] = dict(_parse_assignments(args.set or []))
    for label in args.clear or []:
        thresholds[label] = None
    if thresholds:
        raw["thresholds"] = thresholds
    try:
        update = PolicyUpdate.model_validate(raw)
    except ValidationError as exc:
        raise CommandError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from exc

    def apply(session: Any) -> Any:
        site = get_site(session=session, name=args.name)
        if raw:
            site = update_policy(session=session, site=site, update=update, base=engine.policy)
        return policy_public(site=site, base=engine.policy, bundle_version=engine.version)

    print(json.dumps(_run_store(apply).model_dump(), indent=2))
    return 0


def _site_list(args: argparse.Namespace) -> int:
    from api.store.sites import list_sites

    for site in _run_store(lambda s: list_sites(session=s)):
        print(f"{site.name}\t{site.url or '-'}\t{site.webhook_url or '-'}")
    return 0


def _site_show(args: argparse.Namespace) -> int:
    from api.schemas import SitePublic
    from api.store.sites import get_site

    site = _run_store(lambda s: SitePublic.model_validate(get_site(session=s, name=args.name)))
    print(json.dumps(site.model_dump(mode="json"), indent=2))
    return 0


def _site_update(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from api.schemas import SitePublic, SiteUpdate
    from api.store.sites import get_site, update_site

    data: dict[str, Any] = {}
    if args.url is not None:
        data["url"] = args.url or None
    if args.webhook_url is not None:
        data["webhook_url"] = args.webhook_url or None
    if args.retention_days is not None:
        data["retention_days"] = args.retention_days or None
    try:
        update = SiteUpdate.model_validate(data)
    except ValidationError as exc:
        raise CommandError("; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())) from exc

    def apply(session: Any) -> tuple[SitePublic, str | None]:
        site = get_site(session=session, name=args.name)
        had_secret = site.webhook_secret
        site = update_site(session=session, site=site, update=update)
        return SitePublic.model_validate(site), (site.webhook_secret if site.webhook_secret != had_secret else None)

    site, new_secret = _run_store(apply)
    print(json.dumps(site.model_dump(mode="json"), indent=2))
    if new_secret:
        print("webhook signing secret:")
        print(new_secret)
    return 0


def _site_rotate_webhook_secret(args: argparse.Namespace) -> int:
    from api.store.sites import rotate_webhook_secret

    print("new webhook signing secret:")
    print(_run_store(lambda s: rotate_webhook_secret(session=s, name=args.name)))
    return 0


def _site_coral_secret(args: argparse.Namespace) -> int:
    from api.store.coral import set_coral_secret

    grace = _grace(args.grace_hours)
    secret, until = _run_store(lambda s: set_coral_secret(session=s, name=args.name, secret=args.secret, grace=grace))
    if until is not None:
        print(f"previous Coral secret(s) of {args.name} stay valid until {until.isoformat()}")
    print(f"Coral phase URL: <moderato base URL>/v1/integrations/coral/{args.name}")
    print("active Coral signing secret (X-Coral-Signature):")
    print(secret)
    return 0


def _moderator_create(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from api.schemas import ModeratorCreate
    from api.store.sites import create_moderator

    # The API's rules for a name: not blank, at most 100 characters, no NUL or undecodable bytes.
    try:
        moderator_in = ModeratorCreate.model_validate({"name": args.name, "role": args.role})
    except ValidationError as exc:
        raise CommandError("; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())) from exc
    moderator, secret = _run_store(
        lambda s: create_moderator(session=s, site_name=args.site, name=moderator_in.name, role=moderator_in.role)
    )
    print(f"created {moderator.role} {moderator.name} for site {args.site}")
    print("moderator secret (shown once):")
    print(secret)
    return 0


# ---------------------------------------------------------------------------------------------
# models (bundles in $MODERATO_DATA_DIR/bundles; the promoted one is recorded in the database)


def _models_list(args: argparse.Namespace) -> int:
    from api.reload import DEFAULT_VERSION
    from api.store.bundles import promoted_version, promotion_history
    from classifier.bundle import DEFAULT_BUNDLE_DIR, bundle_rows, read_manifest
    from classifier.errors import BundleError

    settings = _settings()
    current, history = _run_store(lambda s: (promoted_version(session=s), promotion_history(session=s)))
    if settings.bundle is not None:
        print(f"note: MODERATO_BUNDLE={settings.bundle} pins the service to that bundle")
    promoted_at = {row.version: row.promoted_at for row in history}
    print(f"  {'VERSION':<22} {'CREATED':<26} {'ROWS':>7} {'FEEDBACK':>8}  STATUS")
    try:
        packaged = read_manifest(DEFAULT_BUNDLE_DIR)
    except BundleError:
        packaged = {"version": "missing"}
    lines: list[tuple[str, dict[str, Any], dict[str, Any]]] = [(DEFAULT_VERSION, packaged, {})]
    lines += bundle_rows(settings.bundles_dir)
    for version, manifest, gate in lines:
        marker = "*" if version == (current or DEFAULT_VERSION) else " "
        rows = manifest.get("rows", {})
        feedback = manifest.get("sources", {}).get("feedback", {}).get("rows", 0)
        if version == DEFAULT_VERSION:
            status = f"packaged ({manifest.get('version')})"
        elif version in promoted_at:
            status = f"promoted {promoted_at[version]:%Y-%m-%d %H:%M}"
        elif gate:
            status = "refused by the gate" if not gate.get("promote") else "passed the gate (dry run?)"
        else:
            status = "never promoted"
        total = rows.get("fit", 0) + rows.get("validation", 0)
        print(f"{marker} {version:<22} {manifest.get('created_at', '?'):<26} {total:>7} {feedback:>8}  {status}")
    return 0


def _validated_bundle(settings: Settings, version: str) -> str:
    """Load the bundle once (manifest, checksum, library versions) before any worker is told to."""
    from api.reload import bundle_dir
    from classifier import load_bundle
    from classifier.errors import BundleError

    try:
        return load_bundle(bundle_dir(settings, version)).version
    except BundleError as exc:
        raise CommandError(f"bundle {version} cannot be promoted: {exc}") from exc


#: How long a `moderato models` command waits for a retrain or another one to finish with the bundles.
BUNDLES_LOCK_WAIT = 10.0


@contextmanager
def _bundles_locked(settings: Settings) -> Iterator[None]:
    """The bundles' lock file (`classifier.bundle.bundles_lock`), or exit 1 naming it."""
    from classifier.bundle import bundles_lock
    from classifier.errors import BundlesBusy

    try:
        with bundles_lock(settings.bundles_lock_file, wait=BUNDLES_LOCK_WAIT):
            yield
    except BundlesBusy as exc:
        raise CommandError(str(exc), exit_code=1) from None


def _models_promote(args: argparse.Namespace) -> int:
    from api.store.bundles import record_promotion

    if not is_version_name(args.version):
        raise CommandError(f"{args.version!r} is not a version: give a directory name from `moderato models list`")
    settings = _settings()
    note = args.note or "promoted with `moderato models promote`"
    with _bundles_locked(settings):  # a prune cannot delete it between the check and the promotion
        _validated_bundle(settings, args.version)
        _run_store(lambda s: record_promotion(session=s, version=args.version, promoted_by="cli", note=note))
    print(
        f"promoted {args.version}; running services switch within {settings.bundle_check_seconds:g}s "
        "(or POST /v1/admin/reload)"
    )
    return 0


def _models_rollback(args: argparse.Namespace) -> int:
    from api.reload import DEFAULT_VERSION
    from api.store.bundles import ROLLBACK_NOTE, promoted_version, record_promotion, rollback_target

    settings = _settings()
    with _bundles_locked(settings):
        current, target = _run_store(
            lambda s: (promoted_version(session=s), rollback_target(session=s, default=DEFAULT_VERSION))
        )
        if target is None:
            raise CommandError("nothing to roll back to: the packaged bundle is already served")
        _validated_bundle(settings, target)
        _run_store(
            lambda s: record_promotion(session=s, version=target, promoted_by="cli", note=f"{ROLLBACK_NOTE}{current}")
        )
    print(f"rolled back from {current} to {target}; running services switch within {settings.bundle_check_seconds:g}s")
    return 0


def _models_prune(args: argparse.Namespace) -> int:
    """Delete the bundle directories nothing can serve again: every nightly retrain writes one (about
    16 MB), promoted or not. Kept: each version a rollback can reach (the promotion stack, the served
    one on top), a bundle pinned by MODERATO_BUNDLE, and the `--keep` newest (candidates someone may
    still promote by hand). Directories without a readable manifest are not bundles: left alone.
    Nothing is written or promoted while it decides and deletes (the bundles lock)."""
    if args.keep < 0:
        raise CommandError("--keep must be 0 or more")
    settings = _settings()
    with _bundles_locked(settings):
        freed = _prune(settings, keep=args.keep, dry_run=args.dry_run)
    print(f"{'would free' if args.dry_run else 'freed'} {freed / 1e6:.1f} MB")
    return 0


def _prune(settings: Settings, *, keep: int, dry_run: bool) -> int:
    """`models prune` with the lock held: prints each bundle's fate, returns the bytes freed."""
    import shutil

    from api.store.bundles import promotion_stack
    from classifier.bundle import bundle_rows

    stack = _run_store(lambda s: promotion_stack(session=s))
    rows = sorted(bundle_rows(settings.bundles_dir), key=lambda row: (str(row[1].get("created_at", "")), row[0]))
    why: dict[str, str] = {}
    if stack:
        why[stack[-1]] = "served (promoted)"
    for version in reversed(stack[:-1]):
        why.setdefault(version, "a rollback can return to it")
    if settings.bundle is not None and settings.bundle.resolve().parent == settings.bundles_dir.resolve():
        why.setdefault(settings.bundle.name, "pinned by MODERATO_BUNDLE")
    for version, _, _ in rows[max(len(rows) - keep, 0) :] if keep > 0 else []:
        why.setdefault(version, f"one of the {keep} newest")
    freed = 0
    for version, _, _ in rows:
        if version in why:
            print(f"keep    {version:<22} {why[version]}")
            continue
        directory = settings.bundles_dir / version
        size = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
        if not dry_run:
            shutil.rmtree(directory)
        freed += size
        print(f"{'would remove' if dry_run else 'removed':<7} {version:<22} {size / 1e6:.1f} MB")
    return freed


# ---------------------------------------------------------------------------------------------
# parser


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer from `low` to `high` (argparse prints the reason and exits 2).
    Shared with scripts/train.py and scripts/retrain.py, so every command refuses a bad number alike."""

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {raw!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {value}")
        return value

    return parse


def bounded_number(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a finite number from `low` to `high` (NaN passes no comparison, so a NaN
    tolerance would switch a gate off rather than fail it)."""

    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {raw!r}") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"must be from {low:g} to {high:g}, got {raw}")
        return value

    return parse


def is_version_name(raw: str) -> bool:
    """A version names a directory inside the bundles directory. A path ("/srv/x", "../x") would
    record or write a bundle outside it, which `models list` and `prune` never see (MODERATO_BUNDLE
    pins any path)."""
    return raw not in ("", ".", "..") and os.sep not in raw and not (os.altsep and os.altsep in raw)


def version_name(raw: str) -> str:
    """An argparse type: a version name (`is_version_name`)."""
    if not is_version_name(raw):
        raise argparse.ArgumentTypeError(f"{raw!r} is not a version name (a directory name, no '/')")
    return raw


#: Seeds scikit-learn and numpy take (others fail only after the data is loaded).
SEED = bounded_int(0, 2**32 - 1)


def _add_service_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="bind address (default 127.0.0.1 or MODERATO_HOST)")
    serve.add_argument("--port", type=bounded_int(1, 65535), help="port (default 8000 or MODERATO_PORT)")
    serve.add_argument("--workers", type=bounded_int(1, 512), help="worker processes (default 1 or MODERATO_WORKERS)")
    serve.set_defaults(handler=_serve)

    score = sub.add_parser("score", help="score JSONL comments offline (one per line)")
    score.add_argument("--input", help="input JSONL (default: stdin)")
    score.add_argument("--output", help="output JSONL (default: stdout)")
    score.add_argument("--bundle", help="bundle directory (default: the packaged bundle)")
    score.set_defaults(handler=_score)

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply Alembic migrations")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(handler=_db_upgrade)

    purge = sub.add_parser("purge", help="erase text older than each site's retention period now")
    purge.set_defaults(handler=_purge)


def _add_site_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    site = sub.add_parser("site", help="sites, API keys, policy")
    site_sub = site.add_subparsers(dest="site_command", required=True)

    create = site_sub.add_parser("create", help="create a site; prints its API key last")
    create.add_argument("name", help="unique slug: [a-z0-9-]+")
    create.add_argument("--url", help="the blog's URL")
    create.add_argument("--webhook-url", help="where comment.decided webhooks go")
    create.add_argument("--retention-days", type=int, help="erase comment text and author after N days")
    create.set_defaults(handler=_site_create)

    rotate = site_sub.add_parser("rotate-key", help="issue a new API key; old ones work for a grace period")
    rotate.add_argument("name")
    rotate.add_argument("--grace-hours", type=float, help="default MODERATO_KEY_GRACE_HOURS (24)")
    rotate.set_defaults(handler=_site_rotate_key)

    policy = site_sub.add_parser("policy", help="show or change the site's thresholds and mode")
    policy.add_argument("name")
    policy.add_argument("--mode", choices=["enforce", "log_only"])
    policy.add_argument("--set", action="append", metavar="LABEL.hold|reject=X", help="e.g. spam.hold=0.5")
    policy.add_argument("--clear", action="append", metavar="LABEL", help="drop the site's override for LABEL")
    policy.set_defaults(handler=_site_policy)

    site_sub.add_parser("list", help="list sites").set_defaults(handler=_site_list)
    show = site_sub.add_parser("show", help="show a site")
    show.add_argument("name")
    show.set_defaults(handler=_site_show)

    update = site_sub.add_parser("update", help="change URL, webhook URL or retention ('' or 0 clears)")
    update.add_argument("name")
    update.add_argument("--url")
    update.add_argument("--webhook-url")
    update.add_argument("--retention-days", type=int)
    update.set_defaults(handler=_site_update)

    secret = site_sub.add_parser("rotate-webhook-secret", help="new webhook signing secret")
    secret.add_argument("name")
    secret.set_defaults(handler=_site_rotate_webhook_secret)

    coral = site_sub.add_parser("coral-secret", help="set Coral's phase signing secret; prints the active one last")
    coral.add_argument("name")
    coral.add_argument("--secret", help="the secret Coral generated for the phase (default: make one)")
    coral.add_argument("--grace-hours", type=float, help="how long the previous secret stays valid (default 24)")
    coral.set_defaults(handler=_site_coral_secret)


def _add_moderator_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    moderator = sub.add_parser("moderator", help="moderator accounts (people)")
    moderator_sub = moderator.add_subparsers(dest="moderator_command", required=True)
    create = moderator_sub.add_parser("create", help="create a moderator; prints the secret last")
    create.add_argument("site")
    create.add_argument("name")
    create.add_argument("--role", choices=["moderator", "admin"], default="moderator")
    create.set_defaults(handler=_moderator_create)


def _add_models_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    models = sub.add_parser("models", help="trained bundles: list, promote, roll back, prune")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    models_sub.add_parser("list", help="bundles in the data directory; * marks the promoted one").set_defaults(
        handler=_models_list
    )
    promote = models_sub.add_parser("promote", help="serve VERSION (checked first); services reload within seconds")
    promote.add_argument("version", help="a directory name under $MODERATO_DATA_DIR/bundles, or 'default'")
    promote.add_argument("--note", help="why (kept in the promotion history)")
    promote.set_defaults(handler=_models_promote)
    rollback = models_sub.add_parser("rollback", help="serve the version promoted before the current one")
    rollback.set_defaults(handler=_models_rollback)
    prune = models_sub.add_parser(
        "prune", help="delete bundles nothing can serve again (keeps the promoted, its rollbacks, the newest)"
    )
    prune.add_argument("--keep", type=int, default=3, help="also keep this many newest bundles (default 3)")
    prune.add_argument("--dry-run", action="store_true", help="print what would be removed, remove nothing")
    prune.set_defaults(handler=_models_prune)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="moderato", description="Self-hosted comment moderation.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_service_commands(sub)
    _add_site_commands(sub)
    _add_moderator_commands(sub)
    _add_models_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except CommandError as exc:
        print(f"moderato: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # the data directory cannot be created, a file cannot be read...
        print(f"moderato: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # `moderato score` writes whole lines only: its output holds complete verdicts up to the interrupt.
        print("moderato: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
