"""Partner keys: an operator makes a key for a city's CRM, the CRM reads what its scopes and
jurisdictions allow, a disabled or over-limit key is refused, and every use is in the audit trail."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from ivr import partners
from ivr.partners import Partner, PartnerError, Refusal, Scope, authenticate, judge
from ivr.partners.cli import main as partners_cli
from ivr.store import audit
from ivr.store.audit_tables import audit_log
from ivr.store.partner_tables import partners as partners_table

REPO = Path(__file__).resolve().parent.parent
AT = datetime(2026, 11, 30, 22, 30, 5, tzinfo=UTC)


def _partner(**changes: object) -> Partner:
    fields: dict[str, object] = {
        "id": 1,
        "name": "City CRM",
        "key_prefix": "0a1b2c3d",
        "scopes": frozenset({"open311"}),
        "jurisdictions": frozenset({"city"}),
        "enabled": True,
        "rate_limit_per_minute": 10,
    }
    fields.update(changes)
    return Partner(**fields)  # type: ignore[arg-type]


def _cli(env: dict[str, str], *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = partners_cli(list(argv), env=env, stdout=out)
    return status, out.getvalue()


def _audit_rows(engine: sa.Engine) -> list[sa.Row[tuple[object, ...]]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(audit_log).order_by(audit_log.c.seq)).all())


def test_the_decision_names_each_reason_without_a_database() -> None:
    crm = _partner()
    assert judge(crm, Scope.OPEN311, "city") is None
    assert judge(None, Scope.OPEN311, "city") is Refusal.UNKNOWN
    assert judge(_partner(enabled=False), Scope.OPEN311, "city") is Refusal.DISABLED
    assert judge(crm, Scope.EIDO, "city") is Refusal.OUT_OF_SCOPE
    assert judge(crm, Scope.OPEN311, "county") is Refusal.OUT_OF_JURISDICTION
    assert judge(crm, Scope.OPEN311, None) is None  # not one jurisdiction's record
    everywhere = _partner(jurisdictions=frozenset({partners.ALL_JURISDICTIONS}))
    assert judge(everywhere, Scope.OPEN311, "county") is None
    assert [r.http_status for r in Refusal] == [401, 403, 403, 403, 429]


def test_operator_adds_a_key_that_is_printed_once_and_stored_only_as_a_hash(
    engine: sa.Engine, env: dict[str, str]
) -> None:
    status, out = _cli(
        env, "add", "--name", "City CRM", "--scope", "open311", "--scope", "eido",
        "--jurisdiction", "city",
    )  # fmt: skip
    assert status == 0
    key = out.strip().splitlines()[-1].split()[-1]
    assert partners.KEY_PATTERN.match(key)
    with engine.connect() as conn:
        row = conn.execute(sa.select(partners_table)).one()
    assert row.key_hash == partners.hash_key(key) and key not in row.key_hash
    assert key.startswith(f"bl_{row.key_prefix}_")
    dumped = " ".join(str(v) for v in row)
    assert key.split("_", 2)[2] not in dumped

    found = authenticate(engine, key, Scope.EIDO, "city", subject="eido:incident/7", at=AT)
    assert found.allowed and found.partner is not None
    assert found.partner.name == "City CRM"
    assert found.partner.scopes == {"open311", "eido"}

    status, listing = _cli(env, "list")
    assert status == 0
    assert listing.split("\t")[:4] == [row.key_prefix, "City CRM", "eido,open311", "city"]
    assert key not in listing


def test_a_wrong_secret_a_malformed_key_and_no_key_are_unknown(engine: sa.Engine) -> None:
    made = partners.create_partner(engine, name="County CAD", scopes=["eido"])
    wrong = made.key[:-4] + ("AAAA" if not made.key.endswith("AAAA") else "BBBB")
    for key in (wrong, "bl_zz", "", None, made.key + "x", "' OR 1=1 --"):
        result = authenticate(engine, key, Scope.EIDO, "city", at=AT)
        assert result.refusal is Refusal.UNKNOWN and result.partner is None
    assert authenticate(engine, made.key, Scope.EIDO, "county", at=AT).allowed


def test_a_disabled_key_is_refused_at_once_and_can_be_enabled_again(
    engine: sa.Engine, env: dict[str, str]
) -> None:
    made = partners.create_partner(engine, name="City CRM", scopes=["open311"])
    assert authenticate(engine, made.key, Scope.OPEN311, "city", at=AT).allowed
    status, out = _cli(env, "disable", made.partner.key_prefix)
    assert status == 0 and "disabled" in out
    refused = authenticate(engine, made.key, Scope.OPEN311, "city", at=AT)
    assert refused.refusal is Refusal.DISABLED and refused.refusal.http_status == 403
    assert _cli(env, "enable", made.partner.key_prefix)[0] == 0
    assert authenticate(engine, made.key, Scope.OPEN311, "city", at=AT).allowed
    assert _cli(env, "disable", "ffffffff")[0] == 1


def test_scope_and_jurisdiction_limit_what_a_key_reads(engine: sa.Engine) -> None:
    made = partners.create_partner(
        engine, name="South side navigators", scopes=["eido"], jurisdictions=["south_side"]
    )
    assert authenticate(engine, made.key, Scope.EIDO, "south_side", at=AT).allowed
    assert (
        authenticate(engine, made.key, Scope.EIDO, "city", at=AT).refusal
        is Refusal.OUT_OF_JURISDICTION
    )
    assert (
        authenticate(engine, made.key, Scope.OPEN311, "south_side", at=AT).refusal
        is Refusal.OUT_OF_SCOPE
    )


def test_a_partner_over_its_rate_limit_waits_for_the_next_minute(engine: sa.Engine) -> None:
    made = partners.create_partner(
        engine, name="City CRM", scopes=["open311"], rate_limit_per_minute=3
    )
    other = partners.create_partner(engine, name="County CAD", scopes=["open311"])
    answers = [authenticate(engine, made.key, "open311", None, at=AT).refusal for _ in range(4)]
    assert answers == [None, None, None, Refusal.RATE_LIMITED]
    assert Refusal.RATE_LIMITED.http_status == 429
    # Another partner has its own count; the next minute starts afresh.
    assert authenticate(engine, other.key, "open311", None, at=AT).allowed
    assert authenticate(engine, made.key, "open311", None, at=AT + timedelta(minutes=1)).allowed


def test_every_use_allowed_or_refused_is_in_the_audit_trail_without_the_key(
    engine: sa.Engine,
) -> None:
    made = partners.create_partner(
        engine, name="City CRM", scopes=["eido"], jurisdictions=["city"], actor="cli:ops"
    )
    prefix = made.partner.key_prefix
    authenticate(engine, made.key, Scope.EIDO, "city", subject="eido:incident/42", at=AT)
    authenticate(engine, made.key, Scope.EIDO, "county", subject="eido:incident/43", at=AT)
    authenticate(engine, "nonsense", Scope.EIDO, "city", subject="eido:incident/44", at=AT)
    rows = _audit_rows(engine)
    assert [(r.actor, r.action, r.subject) for r in rows] == [
        ("cli:ops", "partner.create", f"partner:{prefix}"),
        (f"partner:{prefix}", "partner.use", "eido:incident/42"),
        (f"partner:{prefix}", "partner.refused", "eido:incident/43"),
        ("partner:malformed-key", "partner.refused", "eido:incident/44"),
    ]
    assert '"refused":"out_of_jurisdiction"' in rows[2].details
    assert all(made.key not in f"{r.details}{r.subject}{r.actor}" for r in rows)
    assert audit.verify(engine).intact


def test_add_refuses_unknown_scopes_jurisdictions_and_empty_names(
    engine: sa.Engine, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(env, "add", "--name", "X", "--scope", "eido", "--jurisdiction", "atlantis")[0] == 1
    assert "unknown jurisdiction 'atlantis'" in capsys.readouterr().err
    with pytest.raises(PartnerError):
        partners.create_partner(engine, name="  ", scopes=["eido"])
    with pytest.raises(PartnerError):
        partners.create_partner(engine, name="X", scopes=["admin"])
    with pytest.raises(PartnerError):
        partners.create_partner(engine, name="X", scopes=[])
    with pytest.raises(SystemExit):
        _cli(env, "add", "--name", "X")  # a scope is required
    assert partners.list_partners(engine) == []


def test_the_module_runs_from_the_command_line(engine: sa.Engine, env: dict[str, str]) -> None:
    run_env = {**os.environ, **env}
    done = subprocess.run(
        [sys.executable, "-m", "ivr.partners", "add", "--name", "City CRM", "--scope", "open311"],
        cwd=REPO, env=run_env, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1].split()[-1]
    assert "all jurisdictions" in done.stdout
    assert authenticate(engine, key, Scope.OPEN311, "county", at=AT).allowed


def test_a_request_presents_its_key_as_a_bearer_token_a_header_or_open311s_api_key() -> None:
    key = "bl_0a1b2c3d_" + "k" * 43
    assert partners.presented_key({"Authorization": f"Bearer {key}"}, {}) == key
    assert partners.presented_key({"X-API-Key": key}, {}) == key
    assert partners.presented_key({}, {"api_key": key}) == key
    assert partners.presented_key({"Authorization": "Basic abc"}, {}) is None
    assert partners.presented_key({}, {}) is None
