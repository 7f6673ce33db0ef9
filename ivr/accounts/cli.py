"""`python -m ivr.accounts add|set-pin|set-password|disable|enable|list`: accounts for operators."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from ivr.accounts import (
    AccountError,
    Role,
    create_staff,
    list_staff,
    set_active,
    set_password,
    set_pin,
)


def _read_secret(prompt: str, stdin: TextIO, interactive: bool) -> str:
    """A secret from the terminal (typed twice, not echoed) or one line of piped input."""
    if interactive:
        first = getpass.getpass(prompt)
        again = getpass.getpass("again: ")
        if first != again:
            raise AccountError("the two entries differ")
        return first
    line = stdin.readline()
    if not line:
        raise AccountError(f"expected a line on standard input for: {prompt.strip()}")
    return line.rstrip("\r\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ivr.accounts",
        description="Manage Bridgeline staff accounts (uses DATABASE_URL). Secrets are asked "
        "for on the terminal, or read one per line from standard input when it is piped.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add a staff member")
    add.add_argument("--staff-id", required=True, help="3 to 12 digits")
    add.add_argument("--name", required=True, help="display name")
    add.add_argument(
        "--role",
        action="append",
        required=True,
        choices=[r.value for r in Role],
        help="repeat for several roles",
    )
    add.add_argument(
        "--helper-type", help="clinicians only: e.g. embedded_clinician, telehealth_nurse"
    )
    add.add_argument("--no-password", action="store_true", help="do not ask for a password")
    add.add_argument("--no-pin", action="store_true", help="do not ask for a desk PIN")
    for name in ("set-pin", "set-password", "disable", "enable"):
        cmd = sub.add_parser(name, help=f"{name.replace('-', ' ')} for a staff member")
        cmd.add_argument("staff_id")
    sub.add_parser("list", help="list every account (no secrets)")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """Run the accounts CLI; returns the exit status."""
    from ivr.settings import DEFAULT_DATABASE_URL, normalise_database_url
    from ivr.store.db import make_engine, migrate

    args = _parser().parse_args(argv)
    env = os.environ if env is None else env
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    interactive = stdin.isatty()
    url = normalise_database_url(env.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL)
    migrate(url)
    engine = make_engine(url)
    try:
        if args.command == "add":
            password = None if args.no_password else _read_secret("password: ", stdin, interactive)
            pin = None if args.no_pin else _read_secret("desk PIN: ", stdin, interactive)
            added = create_staff(
                engine,
                staff_id=args.staff_id,
                name=args.name,
                roles=args.role,
                helper_type=args.helper_type,
                password=password,
                pin=pin,
            )
            print(f"added {added.staff_id} ({', '.join(sorted(added.roles))})", file=stdout)
        elif args.command == "set-pin":
            set_pin(engine, args.staff_id, _read_secret("new desk PIN: ", stdin, interactive))
            print(f"desk PIN changed for {args.staff_id}", file=stdout)
        elif args.command == "set-password":
            password = _read_secret("new password: ", stdin, interactive)
            set_password(engine, args.staff_id, password)
            print(f"password changed for {args.staff_id}; open sessions ended", file=stdout)
        elif args.command in ("disable", "enable"):
            set_active(engine, args.staff_id, args.command == "enable")
            print(f"{args.staff_id} {args.command}d", file=stdout)
        else:
            for rec in list_staff(engine):
                s = rec.staff
                print(
                    "\t".join(
                        [
                            s.staff_id,
                            s.name,
                            ",".join(sorted(s.roles)),
                            s.helper_type or "-",
                            "active" if rec.active else "disabled",
                            "password" if rec.has_password else "no-password",
                            "pin" if rec.has_pin else "no-pin",
                        ]
                    ),
                    file=stdout,
                )
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0
