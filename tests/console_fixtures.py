"""Fixtures for the console and accounts tests: a staff factory and logged-in clients by role."""

from __future__ import annotations

import itertools
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

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


_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def csrf_token_of(client: FlaskClient) -> str:
    """The CSRF token of the client's session, read from the login page like a browser would."""
    page = client.get("/login")
    if page.status_code == 302:  # already signed in: any page carries the token
        page = client.get("/account")
    found = _CSRF_META.search(page.get_data(as_text=True))
    assert found, "no csrf-token meta tag on the page"
    return found.group(1)


class StaffClient:
    """A Flask test client signed in as one staff member, sending the CSRF token on writes."""

    def __init__(self, client: FlaskClient, staff: Staff | None) -> None:
        self.client = client
        self.staff = staff
        self.csrf = csrf_token_of(client)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        headers = {"X-CSRFToken": self.csrf, **kwargs.pop("headers", {})}
        return self.client.post(path, headers=headers, **kwargs)

    def open(self, path: str, method: str, **kwargs: Any) -> TestResponse:
        headers = {"X-CSRFToken": self.csrf, **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kwargs)


def sign_in(client: FlaskClient, staff_id: str, password: str = PASSWORD) -> TestResponse:
    """Post the login form (with its CSRF token) as a browser would."""
    token = csrf_token_of(client)
    return client.post(
        "/login", data={"staff_id": staff_id, "password": password, "csrf_token": token}
    )


LoggedIn = Callable[..., StaffClient]


@pytest.fixture
def logged_in_client(app: Flask, make_staff: MakeStaff) -> LoggedIn:
    """logged_in_client("clinician", helper_type=...) -> a StaffClient; no role = anonymous."""

    def make(*roles: str, **fields: Any) -> StaffClient:
        client = app.test_client()
        if not roles:
            return StaffClient(client, None)
        staff = make_staff(*roles, **fields)
        answer = sign_in(client, staff.staff_id)
        assert answer.status_code == 302, answer.get_data(as_text=True)
        return StaffClient(client, staff)

    return make


CLINICIAN_STAFF_ID = "7001"
"""The console account linked to roster member clin-rivera in the console test roster."""

OTHER_CLINICIAN_STAFF_ID = "7002"
"""The console account linked to roster member clin-okafor in the console test roster."""


def write_console_config(folder: Path) -> Path:
    """A copy of config/ whose clinicians are linked to console accounts and always on duty."""
    source = Path(__file__).resolve().parent.parent / "config"
    shutil.copytree(source, folder, dirs_exist_ok=True)
    roster_file = folder / "roster.yaml"
    roster = yaml.safe_load(roster_file.read_text(encoding="utf-8"))
    clinicians = roster["helper_types"]["embedded_clinician"]["members"]
    links = {"clin-rivera": CLINICIAN_STAFF_ID, "clin-okafor": OTHER_CLINICIAN_STAFF_ID}
    for member in clinicians:
        if member["id"] in links:
            member["staff_id"] = links[member["id"]]
            member["shifts"] = "always"
    roster_file.write_text(yaml.safe_dump(roster, sort_keys=False), encoding="utf-8")
    return folder
