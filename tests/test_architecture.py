"""The shape of the code holds: a newcomer can trust ARCHITECTURE.md.

Importing a pure decision loads no framework; importing `ivr` builds no app; the factory is
still `ivr.create_app` for gunicorn. Checked in a fresh interpreter, on the real modules.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import ivr.decisions
import ivr.language

FRAMEWORKS = ("flask", "werkzeug", "sqlalchemy", "redis", "rq", "twilio")
ROOT = Path(__file__).resolve().parent.parent


def _fresh_import(*modules: str) -> list[str]:
    """The modules a fresh interpreter holds after importing `modules`."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def _frameworks_in(loaded: list[str]) -> list[str]:
    return sorted({name.split(".")[0] for name in loaded} & set(FRAMEWORKS))


def _modules_of(package: object) -> list[str]:
    path = package.__path__  # type: ignore[attr-defined]
    prefix = package.__name__ + "."  # type: ignore[attr-defined]
    return [info.name for info in pkgutil.walk_packages(path, prefix)]


def test_every_decision_imports_without_flask_sql_redis_rq_or_twilio() -> None:
    decisions = _modules_of(ivr.decisions) + _modules_of(ivr.language)
    assert "ivr.decisions.routing" in decisions and "ivr.decisions.menus" in decisions
    loaded = _fresh_import(*decisions)
    assert _frameworks_in(loaded) == []
    assert not [m for m in loaded if m.startswith(("ivr.flows", "ivr.voice", "ivr.store"))]


def test_importing_ivr_builds_nothing_and_the_factory_is_there_when_asked() -> None:
    loaded = _fresh_import("ivr")
    assert [m for m in loaded if m.startswith("ivr.")] == []
    assert _frameworks_in(loaded) == []
    after = _fresh_import("ivr", "gunicorn.util")
    assert "ivr.app" not in after
    import ivr

    assert ivr.create_app.__module__ == "ivr.app"  # gunicorn 'ivr:create_app()'


def test_a_worker_job_module_loads_no_web_part() -> None:
    loaded = _fresh_import("workers.handoffs", "workers.callbacks", "workers.clock")
    web = ("ivr.voice", "ivr.console", "ivr.dashboard", "ivr.live", "ivr.app")
    assert [m for m in loaded if m.startswith(web)] == []


def test_every_registered_job_name_is_a_function_a_worker_can_import() -> None:
    import importlib

    from workers import jobs

    for name in jobs.ALL_JOBS:
        module, _, function = name.rpartition(".")
        assert callable(getattr(importlib.import_module(module), function)), name


def test_no_module_is_over_600_lines() -> None:
    """One job per module: a module that grows past 600 lines is split (migrations aside)."""
    too_long = {}
    for folder in ("ivr", "workers"):
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > 600:
                too_long[str(path.relative_to(ROOT))] = lines
    assert too_long == {}
