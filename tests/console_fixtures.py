"""Fixtures for the console and accounts tests: a staff factory and logged-in clients by role."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from ivr.accounts import Staff, create_staff

PASSWORD = "correct horse battery"
"""Password every test account gets unless a test says otherwise."""

PIN = "4321"
"""Desk PIN every test account gets unless a test says otherwise."""

_ids = itertools.count(5001)

MakeStaff = Callable[..., Staff]


@pytest.fixture
def make_staff(engine: sa.Engine) -> MakeStaff:
    """Create a staff account: make_staff("clinician", helper_type="embedded_clinician")."""

    def make(
        *roles: str,
        staff_id: str | None = None,
        name: str | None = None,
        helper_type: str | None = None,
        password: str | None = PASSWORD,
        pin: str | None = PIN,
    ) -> Staff:
        sid = staff_id or str(next(_ids))
        return create_staff(
            engine,
            staff_id=sid,
            name=name or f"Test Staff {sid}",
            roles=roles or ("call_taker",),
            helper_type=helper_type,
            password=password,
            pin=pin,
        )

    return make
