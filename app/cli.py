"""The command line: serve, migrate, manage users, import and export; it calls the same services as the web."""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.config import get_settings


def _project(session: Any, ref: str) -> Any:
    from app.errors import AppError
    from app.projects import service as projects_service

    try:
        return projects_service.find_project(session, ref)
    except AppError:
        sys.exit(f"error: no project {ref!r} (give its slug or id)")


def _admin(session: Any) -> Any:
    import sqlalchemy as sa

    from app.accounts.models import User

    admin = session.scalar(
        sa.select(User).where(User.role == "admin", User.is_active.is_(True)).order_by(User.created_at)
    )
    if admin is None:
        sys.exit("error: create an admin first: prefhub users create NAME --role admin --password-stdin")
    return admin


def cmd_db_upgrade(args: argparse.Namespace) -> None:
    from app.migrations_state import upgrade_to_head

    settings = get_settings()
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_to_head(settings.database_url)
    print("database is at the latest schema")


def cmd_seed_demo(args: argparse.Namespace) -> None:
    from app.db import database, session_scope
    from app.demo.seed import database_is_new, seed_demo

    database.configure(get_settings().database_url)
    with session_scope() as session:
        if not database_is_new(session):
            print("database already has users: demo not seeded")
            return
        logins = seed_demo(session)
    print("Demo projects created. Log in with (shown once):")
    for login in logins:
        print(f"  {login.role:<10} {login.username:<8} password: {login.password}")


def _prepare_shared_metrics() -> None:
    """Workers write their metrics to files in one directory, so /metrics on any worker reports them all.
    A directory given in the environment is emptied first: counts from an earlier run would add up."""
    from app.observability import METRICS_DIR_VARIABLE

    directory = os.environ.get(METRICS_DIR_VARIABLE) or tempfile.mkdtemp(prefix="prefhub-metrics-")
    os.makedirs(directory, exist_ok=True)
    for stale in glob.glob(os.path.join(directory, "*.db")):
        os.remove(stale)
    os.environ[METRICS_DIR_VARIABLE] = directory


def cmd_serve(args: argparse.Namespace) -> None:
    if not args.no_migrate:
        cmd_db_upgrade(args)
    print(f"PrefHub is serving on http://{args.host}:{args.port}/", flush=True)
    if args.workers > 1:
        _prepare_shared_metrics()
        # gunicorn supervises the workers (restarting any that die); uvicorn's own multi-process mode
        # answered small POSTs about 40 ms late on loopback in our measurements.
        os.execv(
            sys.executable,
            [
                sys.executable,
                "-m",
                "gunicorn",
                "app.asgi:app",
                "--worker-class",
                "app.serving.FairUvicornWorker",
                "--workers",
                str(args.workers),
                "--bind",
                f"{args.host}:{args.port}",
                "--graceful-timeout",
                "20",
                "--timeout",
                "120",
                "--log-level",
                "warning",
            ],
        )
    import uvicorn

    from app.serving import KEEP_ALIVE_S

    uvicorn.run(
        "app.asgi:app",
        host=args.host,
        port=args.port,
        log_level="warning",
        proxy_headers=True,
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_S,
    )


def cmd_users_create(args: argparse.Namespace) -> None:
    from app.db import database, session_scope
    from app.errors import AppError

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    if not password:
        sys.exit("error: give the password on standard input with --password-stdin")
    database.configure(get_settings().database_url)
    from app.accounts import service

    try:
        with session_scope() as session:
            user = service.create_user(session, args.name, password, args.role)
            print(f"created {user.role} {user.username} ({user.id})")
    except AppError as error:
        sys.exit(f"error: {error.message}")


def cmd_import(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from app.db import database, session_scope
    from app.errors import AppError
    from app.items import service
    from app.items.parsing import iter_jsonl_lines

    database.configure(get_settings().database_url)
    path = Path(args.file)
    pairs = args.pairs if args.pairs in ("none", "all") else int(args.pairs)
    try:
        with (
            session_scope() as session,
            path.open("rb") as handle,
            tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc="import") as bar,
        ):
            project = _project(session, args.project)

            def chunks() -> Iterator[bytes]:
                for chunk in iter(lambda: handle.read(1 << 16), b""):
                    bar.update(len(chunk))
                    yield chunk

            tally = service.import_items(
                session,
                project,
                iter_jsonl_lines(chunks()),
                _admin(session),
                options=service.import_options(project, pairs, args.seed),
                skip_bad_lines=args.on_error == "skip",
                purpose=args.purpose,
            )
    except AppError as error:
        for detail in (error.details or [])[:20]:
            print(f"  line {detail['line']}: {detail['error']}", file=sys.stderr)
        sys.exit(f"error: {error.message}")
    print(f"created {tally.created}, duplicates {tally.duplicates}, errors {tally.errors_total}")
    for e in tally.errors[:20]:
        print(f"  line {e.line}: {e.error}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prefhub", description="PrefHub: human preference data for RLHF")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the web app")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--no-migrate", action="store_true", help="do not migrate the database first")
    serve.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="migrate to the latest schema").set_defaults(func=cmd_db_upgrade)

    sub.add_parser("seed-demo", help="create the demo project on a new database").set_defaults(
        func=cmd_seed_demo
    )

    users = sub.add_parser("users", help="manage users").add_subparsers(dest="users_command", required=True)
    create = users.add_parser("create", help="create a user")
    create.add_argument("name")
    create.add_argument("--role", choices=["admin", "annotator"], default="annotator")
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    create.set_defaults(func=cmd_users_create)

    imp = sub.add_parser("import", help="import items from a JSON Lines file")
    imp.add_argument("project", help="project slug or id")
    imp.add_argument("file")
    imp.add_argument("--pairs", default="none", help='"none", "all" or N random pairs per prompt')
    imp.add_argument("--seed", type=int, default=0)
    imp.add_argument("--on-error", choices=["reject", "skip"], default="reject")
    imp.add_argument("--purpose", choices=["live", "training"], default="live")
    imp.set_defaults(func=cmd_import)

    from app.exports.cli import add_export_command

    add_export_command(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
