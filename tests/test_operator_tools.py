"""The command-line tools an operator runs first, as they run them: a fresh SQLite file, no
warnings (run with -W error), and output that says what happened."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.live_service import REPO


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'bridgeline.db'}", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-W", "error", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_migrate_on_an_empty_database_says_what_it_created_then_that_it_is_up_to_date(
    tmp_path: Path,
) -> None:
    first = _run(tmp_path, "-m", "ivr.store", "migrate")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("created a new database at schema revision")
    assert (
        "callbacks" in first.stdout and "handoffs" in first.stdout and "audit_log" in first.stdout
    )
    again = _run(tmp_path, "-m", "ivr.store", "migrate")
    assert again.returncode == 0 and again.stdout.startswith("database is up to date")


def test_audit_verify_runs_without_a_warning_and_explains_a_missing_schema(tmp_path: Path) -> None:
    missing = _run(tmp_path, "-m", "ivr.store.audit", "verify")
    assert missing.returncode == 1
    assert "python -m ivr.store migrate" in missing.stderr and "Traceback" not in missing.stderr
    _run(tmp_path, "-m", "ivr.store", "migrate")
    verified = _run(tmp_path, "-m", "ivr.store.audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr == ""  # no RuntimeWarning about sys.modules
    assert verified.stdout.startswith("audit trail intact: 0 entries")


def test_importing_ivr_builds_and_imports_nothing_of_the_app() -> None:
    probe = (
        "import sys, ivr; print(sorted(m for m in sys.modules if m.startswith(('ivr', 'flask'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "['ivr']"
