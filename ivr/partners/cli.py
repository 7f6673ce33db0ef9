"""`python -m ivr.partners add|list|disable|enable|subscribe|subscriptions|unsubscribe`:
partner systems, their API keys and the URLs that receive EIDO pushes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from ivr.partners import (
    ALL_JURISDICTIONS,
    DEFAULT_RATE_LIMIT_PER_MINUTE,
    Partner,
    PartnerError,
    Scope,
    create_partner,
    deliveries,
    list_partners,
    set_enabled,
    subscriptions,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ivr.partners",
        description="Manage the partner systems that read Bridgeline's APIs (uses DATABASE_URL "
        "and BRIDGELINE_CONFIG). A new key is printed once, as the last word of the last line; "
        "only its hash is kept.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add a partner and print its new API key")
    add.add_argument("--name", required=True, help='e.g. "City CRM"')
    add.add_argument(
        "--scope",
        action="append",
        required=True,
        choices=[s.value for s in Scope],
        help="an API the key may use; repeat for several",
    )
    add.add_argument(
        "--jurisdiction",
        action="append",
        default=[],
        help="a jurisdiction id from program.yaml whose records the key may read; repeat for "
        "several (default: every jurisdiction)",
    )
    add.add_argument(
        "--rate-limit",
        type=int,
        default=DEFAULT_RATE_LIMIT_PER_MINUTE,
        help=f"requests a minute (default {DEFAULT_RATE_LIMIT_PER_MINUTE})",
    )
    for name in ("disable", "enable"):
        cmd = sub.add_parser(name, help=f"{name} a partner's key (by its prefix, see list)")
        cmd.add_argument("prefix")
    sub.add_parser("list", help="list every partner (no keys)")
    subscribe = sub.add_parser(
        "subscribe", help="push each handoff's EIDO to a URL when it changes (eido scope)"
    )
    subscribe.add_argument("prefix", help="the partner's key prefix (see list)")
    subscribe.add_argument("--url", required=True, help="https://… (http only to this machine)")
    sub.add_parser("subscriptions", help="list every subscription and how its pushes fare")
    for name in ("unsubscribe", "resubscribe"):
        cmd = sub.add_parser(name, help=f"{name} a subscription (by its number)")
        cmd.add_argument("subscription_id", type=int)
    return parser


def _known_jurisdictions(env: Mapping[str, str]) -> list[str] | None:
    """Jurisdiction ids from program.yaml (None when the program has no such file)."""
    from ivr.config.program import PROGRAM_FILE, load_program
    from ivr.settings import DEFAULT_CONFIG_DIR

    folder = Path(env.get("BRIDGELINE_CONFIG", "").strip() or DEFAULT_CONFIG_DIR)
    if not (folder / PROGRAM_FILE).exists():
        return None
    return [j.id for j in load_program(folder).jurisdictions]


def _places(partner: Partner) -> str:
    if partner.all_jurisdictions:
        return "all jurisdictions"
    return ",".join(sorted(partner.jurisdictions))


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
) -> int:
    """Run the partners CLI; returns the exit status."""
    from ivr.config.errors import ConfigError
    from ivr.settings import DEFAULT_DATABASE_URL, normalise_database_url
    from ivr.store.db import make_engine, migrate

    args = _parser().parse_args(argv)
    env = os.environ if env is None else env
    stdout = sys.stdout if stdout is None else stdout
    url = normalise_database_url(env.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL)
    actor = f"cli:{env.get('USER', '') or 'operator'}"
    try:
        known = _known_jurisdictions(env) if args.command == "add" else None
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    migrate(url)
    engine = make_engine(url)
    try:
        if args.command == "add":
            made = create_partner(
                engine,
                name=args.name,
                scopes=args.scope,
                jurisdictions=args.jurisdiction,
                known_jurisdictions=known,
                rate_limit_per_minute=args.rate_limit,
                actor=actor,
            )
            p = made.partner
            print(
                f"added partner {p.name!r}: prefix {p.key_prefix}, scopes "
                f"{','.join(sorted(p.scopes))}, {_places(p)}, {p.rate_limit_per_minute}/minute",
                file=stdout,
            )
            print("This key is shown once; only its hash is kept.", file=stdout)
            print(f"API key: {made.key}", file=stdout)
        elif args.command == "subscribe":
            new = subscriptions.create_subscription(engine, args.prefix, args.url, actor=actor)
            print(
                f"subscription {new.subscription.id}: {new.subscription.partner_name} at "
                f"{new.subscription.url}; pushes are signed with this secret (shown once):",
                file=stdout,
            )
            print(f"signing secret: {new.signing_secret}", file=stdout)
        elif args.command == "subscriptions":
            for h in deliveries.health(engine):
                print(
                    "\t".join(
                        [
                            str(h.subscription_id),
                            h.partner_name,
                            h.host,
                            "on" if h.enabled else "off",
                            f"delivered {h.delivered}",
                            f"waiting {h.waiting}",
                            f"retrying {h.retrying}",
                            f"failed {h.failed}",
                            h.last_error or "-",
                        ]
                    ),
                    file=stdout,
                )
        elif args.command in ("unsubscribe", "resubscribe"):
            done = subscriptions.set_subscription_enabled(
                engine, args.subscription_id, args.command == "resubscribe", actor=actor
            )
            print(f"subscription {done.id} {'on' if done.enabled else 'off'}", file=stdout)
        elif args.command in ("disable", "enable"):
            p = set_enabled(engine, args.prefix, args.command == "enable", actor=actor)
            print(f"{p.key_prefix} ({p.name}) {args.command}d", file=stdout)
        else:
            for p in list_partners(engine):
                print(
                    "\t".join(
                        [
                            p.key_prefix,
                            p.name,
                            ",".join(sorted(p.scopes)),
                            _places(p).replace(ALL_JURISDICTIONS, "all"),
                            f"{p.rate_limit_per_minute}/minute",
                            "enabled" if p.enabled else "disabled",
                        ]
                    ),
                    file=stdout,
                )
    except PartnerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0
