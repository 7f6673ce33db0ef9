"""`python -m ivr.store migrate`: bring DATABASE_URL up to the newest schema."""

from __future__ import annotations

import sys

from ivr.settings import DEFAULT_DATABASE_URL, normalise_database_url
from ivr.store.db import migrate


def main(argv: list[str]) -> int:
    import os

    if argv[1:] != ["migrate"]:
        print("usage: python -m ivr.store migrate", file=sys.stderr)
        return 2
    url = normalise_database_url(os.environ.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL)
    migrate(url)
    print("database is up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
