"""Run the partners CLI: python -m ivr.partners --help."""

from __future__ import annotations

from ivr.partners.cli import main

raise SystemExit(main())
