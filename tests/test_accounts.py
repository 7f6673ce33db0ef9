"""Staff accounts: hashed secrets, the desk PIN check the transfer desk calls, the operator CLI."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from ivr import accounts
from ivr.accounts import AccountError, Role, Staff, get_staff, verify_desk_pin, verify_password
from ivr.accounts.cli import main as accounts_cli
from ivr.store.account_tables import staff as staff_table
from tests.console_fixtures import PASSWORD, PIN, MakeStaff, make_staff

FIXTURES = (make_staff,)
"""Fixtures this module uses from tests/console_fixtures.py (pytest finds them here)."""


def test_desk_pin_check_returns_the_staff_member_and_nothing_for_a_wrong_pin(
    engine: sa.Engine, make_staff: MakeStaff
) -> None:
    made = make_staff("call_taker", "supervisor", staff_id="4101", name="Dana Ruiz")
    found = verify_desk_pin(engine, "4101", PIN)
    assert found == Staff(
        made.id, "4101", "Dana Ruiz", frozenset({"call_taker", "supervisor"}), None
    )
    assert verify_desk_pin(engine, "4101", "9999") is None
    assert verify_desk_pin(engine, "4101", PASSWORD) is None
    assert verify_desk_pin(engine, "9999", PIN) is None
    assert verify_desk_pin(engine, "", "") is None
    assert verify_desk_pin(engine, "4101' OR 1=1 --", PIN) is None


def test_secrets_are_stored_as_argon2id_hashes_never_in_clear(
    engine: sa.Engine, make_staff: MakeStaff
) -> None:
    make_staff("clinician", staff_id="4102", helper_type="embedded_clinician")
    with engine.connect() as conn:
        row = conn.execute(sa.select(staff_table).where(staff_table.c.staff_id == "4102")).one()
    assert row.password_hash.startswith("$argon2id$") and PASSWORD not in row.password_hash
    assert row.pin_hash.startswith("$argon2id$") and PIN not in row.pin_hash.split("$")[-1][:4]
    assert row.pin_hash != row.password_hash


def test_unknown_id_costs_one_argon2_verify_like_a_known_one(
    engine: sa.Engine, make_staff: MakeStaff, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_staff("call_taker", staff_id="4103")
    calls: list[str] = []

    class CountingHasher(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            calls.append(str(password))
            return super().verify(hash, password)

    monkeypatch.setattr(accounts, "_hasher", CountingHasher())
    for staff_id, pin in [("4103", "0000"), ("7777", "0000"), ("abc", "0000"), ("4103", PIN)]:
        calls.clear()
        verify_desk_pin(engine, staff_id, pin)
        assert len(calls) == 1, staff_id


def test_disabled_account_cannot_use_pin_or_password_and_is_not_found(
    engine: sa.Engine, make_staff: MakeStaff
) -> None:
    make_staff("call_taker", staff_id="4104")
    accounts.set_active(engine, "4104", False)
    assert verify_desk_pin(engine, "4104", PIN) is None
    assert verify_password(engine, "4104", PASSWORD) is None
    assert get_staff(engine, "4104") is None
    accounts.set_active(engine, "4104", True)
    assert get_staff(engine, "4104") is not None


def test_account_without_a_pin_cannot_use_the_desk(
    engine: sa.Engine, make_staff: MakeStaff
) -> None:
    make_staff("clinician", staff_id="4105", pin=None)
    assert verify_desk_pin(engine, "4105", "") is None
    assert verify_desk_pin(engine, "4105", PIN) is None
    assert verify_password(engine, "4105", PASSWORD) is not None


def test_changing_the_password_ends_older_sessions(
    engine: sa.Engine, make_staff: MakeStaff
) -> None:
    make_staff("supervisor", staff_id="4106")
    before = accounts.session_epoch(engine, "4106")
    accounts.set_password(engine, "4106", "a brand new passphrase")
    assert accounts.session_epoch(engine, "4106") == (before or 0) + 1
    assert verify_password(engine, "4106", PASSWORD) is None
    assert verify_password(engine, "4106", "a brand new passphrase") is not None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"staff_id": "12"}, "3 to 12 digits"),
        ({"staff_id": "ab123"}, "3 to 12 digits"),
        ({"pin": "12a4"}, "PIN must be"),
        ({"pin": "123"}, "PIN must be"),
        ({"password": "short"}, "at least 12"),
        ({"roles": ["dispatcher"]}, "unknown role"),
        ({"roles": []}, "at least one role"),
        ({"roles": ["call_taker"], "helper_type": "embedded_clinician"}, "only clinicians"),
        ({"name": "  "}, "name must be"),
    ],
)
def test_bad_account_fields_are_refused_with_a_clear_message(
    engine: sa.Engine, fields: dict, message: str
) -> None:
    base = {"staff_id": "4200", "name": "A Person", "roles": ["clinician"], "pin": PIN}
    with pytest.raises(AccountError, match=message):
        accounts.create_staff(engine, **{**base, **fields})
    assert get_staff(engine, "4200") is None


def test_a_staff_id_cannot_be_taken_twice(engine: sa.Engine, make_staff: MakeStaff) -> None:
    make_staff("call_taker", staff_id="4107")
    with pytest.raises(AccountError, match="already taken"):
        make_staff("clinician", staff_id="4107")


def test_staff_with_role_lists_active_clinicians(engine: sa.Engine, make_staff: MakeStaff) -> None:
    make_staff("clinician", staff_id="4301", helper_type="telehealth_nurse")
    make_staff("clinician", staff_id="4302", helper_type="navigator")
    make_staff("call_taker", staff_id="4303")
    accounts.set_active(engine, "4302", False)
    assert [s.staff_id for s in accounts.staff_with_role(engine, Role.CLINICIAN)] == ["4301"]


def test_operator_adds_an_account_sets_a_pin_and_lists_it_from_the_cli(
    env: dict[str, str], engine: sa.Engine
) -> None:
    out = io.StringIO()
    status = accounts_cli(
        [
            "add", "--staff-id", "4400", "--name", "Sam Okafor", "--role", "clinician",
            "--helper-type", "embedded_clinician",
        ],
        env=env,
        stdin=io.StringIO("long enough password\n2468\n"),
        stdout=out,
    )  # fmt: skip
    assert status == 0 and "added 4400 (clinician)" in out.getvalue()
    assert verify_desk_pin(engine, "4400", "2468") is not None
    assert verify_password(engine, "4400", "long enough password") is not None

    out = io.StringIO()
    assert accounts_cli(["set-pin", "4400"], env=env, stdin=io.StringIO("1357\n"), stdout=out) == 0
    assert verify_desk_pin(engine, "4400", "2468") is None
    assert verify_desk_pin(engine, "4400", "1357") is not None

    out = io.StringIO()
    assert accounts_cli(["list"], env=env, stdin=io.StringIO(""), stdout=out) == 0
    line = out.getvalue().strip()
    assert line.split("\t") == [
        "4400", "Sam Okafor", "clinician", "embedded_clinician", "active", "password", "pin"
    ]  # fmt: skip
    assert "$argon2" not in out.getvalue() and "1357" not in out.getvalue()


def test_cli_refuses_a_weak_pin_and_an_unknown_account(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    status = accounts_cli(
        ["add", "--staff-id", "4401", "--name", "X Y", "--role", "call_taker", "--no-password"],
        env=env,
        stdin=io.StringIO("12\n"),
        stdout=out,
    )
    assert status == 1 and "PIN must be 4 to 12 digits" in capsys.readouterr().err
    status = accounts_cli(["set-pin", "9998"], env=env, stdin=io.StringIO("1234\n"), stdout=out)
    assert status == 1 and "no staff member with ID 9998" in capsys.readouterr().err


@pytest.fixture
def verifies(monkeypatch) -> list[str]:
    """The secrets argon2 was asked to verify, in order (the real hasher still runs)."""
    import ivr.accounts as accounts_module

    real = accounts_module._hasher
    seen: list[str] = []

    class CountingHasher:
        def __getattr__(self, name: str):
            return getattr(real, name)

        def verify(self, stored: str, secret: str) -> bool:
            seen.append(secret)
            return real.verify(stored, secret)

    monkeypatch.setattr(accounts_module, "_hasher", CountingHasher())
    return seen


def test_an_unknown_id_costs_one_argon2_verify_like_a_wrong_pin(
    engine: sa.Engine, make_staff: MakeStaff, verifies: list[str]
) -> None:
    """Timing does not reveal whether a staff ID exists: every miss runs exactly one verify."""
    make_staff("call_taker", staff_id="4108")
    for staff_id in ("4108", "5999", "not-an-id"):
        verifies.clear()
        assert verify_desk_pin(engine, staff_id, "0000") is None
        assert len(verifies) == 1, staff_id


def test_python_dash_m_ivr_accounts_runs_as_operators_type_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.sqlite3"
    env = {**os.environ, "DATABASE_URL": url}
    command = [sys.executable, "-W", "error", "-m", "ivr.accounts"]
    added = subprocess.run(
        [*command, "add", "--staff-id", "4500", "--name", "Lee Park", "--role", "supervisor"],
        input="a long enough password\n8642\n",
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout == "added 4500 (supervisor)\n" and added.stderr == ""
    listed = subprocess.run([*command, "list"], capture_output=True, text=True, env=env, check=True)
    assert listed.stdout.startswith("4500\tLee Park\tsupervisor\t-\tactive\tpassword\tpin")


def test_a_right_pin_signed_in_again_skips_argon2_until_the_pin_changes(
    engine: sa.Engine, make_staff: MakeStaff, verifies: list[str]
) -> None:
    from ivr.accounts import set_pin
    from tests.console_fixtures import PIN

    make_staff("call_taker", staff_id="4109")
    assert verify_desk_pin(engine, "4109", PIN) is not None
    assert verify_desk_pin(engine, "4109", PIN) is not None
    assert len(verifies) == 1
    assert verify_desk_pin(engine, "4109", "999999") is None  # a wrong PIN always pays
    assert len(verifies) == 2
    set_pin(engine, "4109", "246810")
    assert verify_desk_pin(engine, "4109", PIN) is None
    assert verify_desk_pin(engine, "4109", "246810") is not None
    assert len(verifies) == 4
