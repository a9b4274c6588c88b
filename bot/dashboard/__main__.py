"""The dashboard's command line.

    python -m bot.dashboard serve [--host H] [--port P]     the web dashboard (default 127.0.0.1:5006)
    python -m bot.dashboard users add NAME [--role admin]   create an account (asks for the password)
    python -m bot.dashboard users disable|enable NAME       stop or allow an account (disabling logs it out)
    python -m bot.dashboard users password NAME             set a new password
    python -m bot.dashboard users list                      the accounts
    python -m bot.dashboard refresh [--rebuild]             bring the aggregates up to date
    python -m bot.dashboard retention [--days N]            delete message texts older than N days

Passwords are read from the terminal, or from standard input with `--password-stdin`.
Every command works on `DATABASE_URL` (default: var/assistant.db), or `--url`.
"""
from __future__ import annotations

import argparse
import getpass
import sys
from typing import List, Optional

from bot import storage


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password (10 characters or more): ")
    if getpass.getpass("The same password again: ") != first:
        raise SystemExit("the two passwords differ")
    return first


def _users(args: argparse.Namespace, url: str) -> int:
    from bot.dashboard import auth

    engine = storage.engine(url)
    try:
        if args.action == "add":
            auth.create_account(engine, args.name, _password(args), args.role)
            print(f"account {args.name.lower()} created ({args.role})")
        elif args.action in ("disable", "enable"):
            auth.set_active(engine, args.name, args.action == "enable")
            print(f"account {args.name.lower()} {args.action}d")
        elif args.action == "password":
            auth.set_password(engine, args.name, _password(args))
            print(f"password of {args.name.lower()} changed")
        else:
            for row in auth.accounts(engine):
                print(f"{row.username:<24} {row.role:<6} {'active' if row.active else 'disabled'}")
    except auth.AccountError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Runs one dashboard command."""
    parser = argparse.ArgumentParser(prog="python -m bot.dashboard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="database URL (default: DATABASE_URL or var/assistant.db)")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the web dashboard")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=5006)
    users = commands.add_parser("users", help="manage staff accounts")
    users.add_argument("action", choices=["add", "disable", "enable", "password", "list"])
    users.add_argument("name", nargs="?")
    users.add_argument("--role", choices=["staff", "admin"], default="staff")
    users.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    refresh = commands.add_parser("refresh", help="bring the aggregates up to date")
    refresh.add_argument("--rebuild", action="store_true", help="start again from the first event")
    retention = commands.add_parser("retention", help="delete message texts older than the retention period")
    retention.add_argument("--days", type=int, help="the period (default: RETENTION_DAYS)")
    args = parser.parse_args(argv)
    url = args.url or storage.database_url()
    storage.upgrade(url)
    if args.command == "serve":
        from bot.dashboard.app import serve as run

        print(f"Dashboard: http://{args.host}:{args.port}/", flush=True)
        run(args.host, args.port, url)
        return 0
    if args.command == "users":
        if args.action != "list" and not args.name:
            parser.error("give the account name")
        return _users(args, url)
    if args.command == "refresh":
        from bot.dashboard.etl import Refresher

        refresher = Refresher(storage.engine(url))
        count = refresher.rebuild() if args.rebuild else refresher.run(lag=0)
        print(f"aggregates up to date ({count:,} events read)")
        return 0
    from bot.dashboard import retention as policy

    days = args.days or policy.retention_days()
    if not days or days < 1:
        print("error: give --days N or set RETENTION_DAYS", file=sys.stderr)
        return 2
    blanked = policy.apply(storage.engine(url), days)
    print(f"texts older than {days} days deleted: {blanked['events']:,} messages, {blanked['questions']:,} "
          f"unanswered questions (counts kept)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
