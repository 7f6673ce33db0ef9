"""Run the accounts CLI: python -m ivr.accounts --help."""

from __future__ import annotations

from ivr.accounts.cli import main

raise SystemExit(main())
