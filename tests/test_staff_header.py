"""One shared staff header on every staff page: the pages of your roles, where you are, sign out."""

from __future__ import annotations

import re

import pytest

from ivr.staff_nav import STAFF_LINKS, NavLink, links_for
from tests.console_fixtures import LoggedIn, logged_in_client, make_staff

FIXTURES = (make_staff, logged_in_client)
"""Fixtures this module uses from tests/console_fixtures.py (pytest finds them here)."""

NAV = re.compile(r'<nav aria-label="Staff pages".*?</nav>', re.S)
LINK = re.compile(r'<a href="([^"]+)"( aria-current="page")?>([^<]+)</a>')


def header_of(html: str) -> list[tuple[str, str, bool]]:
    """(label, path, is the current page) of each link in the staff header."""
    found = NAV.search(html)
    assert found, "no staff header navigation on the page"
    return [(label, path, bool(current)) for path, current, label in LINK.findall(found.group(0))]


def test_a_supervisor_sees_every_supervisor_page_and_where_they_are() -> None:
    served = {"/console/callbacks", "/live", "/dashboard", "/dashboard/qa"}
    shown = links_for({"supervisor"}, "/dashboard/qa", served.__contains__)
    assert [(s.label, s.path, s.current) for s in shown] == [
        ("Callbacks", "/console/callbacks", False),
        ("Live", "/live", False),
        ("Dashboard", "/dashboard", False),
        ("QA", "/dashboard/qa", True),
    ]


def test_a_page_no_route_serves_yet_is_not_linked() -> None:
    served = {"/console", "/console/callbacks", "/dashboard"}
    shown = links_for({"call_taker", "supervisor"}, "/console", served.__contains__)
    assert [s.label for s in shown] == ["Console", "Callbacks", "Dashboard"]
    assert [s.label for s in shown if s.current] == ["Console"]


def test_the_deepest_matching_link_is_the_current_page() -> None:
    served = {link.path for link in STAFF_LINKS}
    shown = links_for(
        {"call_taker", "clinician"}, "/console/clinician/handoffs/7", served.__contains__
    )
    assert [s.label for s in shown if s.current] == ["Clinician"]
    other = links_for({"call_taker"}, "/consoles", served.__contains__)
    assert not any(s.current for s in other)  # /consoles is not under /console


def test_a_link_added_for_a_new_page_shows_to_its_roles_only() -> None:
    reports = NavLink("311 reports", "/console/reports", frozenset({"call_taker"}))
    links = (*STAFF_LINKS, reports)
    served = {"/console/reports"}.__contains__
    assert [s.label for s in links_for({"call_taker"}, "/", served, links)] == ["311 reports"]
    assert links_for({"clinician"}, "/", served, links) == []


@pytest.mark.parametrize(
    ("roles", "path", "expected"),
    [
        (("call_taker",), "/console", [("Console", "/console", True), ("Callbacks", "/console/callbacks", False), ("311 reports", "/reports", False)]),
        (("clinician",), "/console/clinician", [("Clinician", "/console/clinician", True), ("Callbacks", "/console/callbacks", False)]),
        (("clinician",), "/console/callbacks", [("Clinician", "/console/clinician", False), ("Callbacks", "/console/callbacks", True)]),
        (("supervisor",), "/console/callbacks", [("Callbacks", "/console/callbacks", True), ("Dashboard", "/dashboard", False), ("QA", "/dashboard/qa", False), ("Partners", "/partners", False), ("311 reports", "/reports", False)]),
        (("supervisor",), "/dashboard", [("Callbacks", "/console/callbacks", False), ("Dashboard", "/dashboard", True), ("QA", "/dashboard/qa", False), ("Partners", "/partners", False), ("311 reports", "/reports", False)]),
        (("supervisor",), "/dashboard/qa", [("Callbacks", "/console/callbacks", False), ("Dashboard", "/dashboard", False), ("QA", "/dashboard/qa", True), ("Partners", "/partners", False), ("311 reports", "/reports", False)]),
        (("supervisor",), "/partners", [("Callbacks", "/console/callbacks", False), ("Dashboard", "/dashboard", False), ("QA", "/dashboard/qa", False), ("Partners", "/partners", True), ("311 reports", "/reports", False)]),
        (("agent_311",), "/reports", [("311 reports", "/reports", True)]),
        (("call_taker", "supervisor"), "/account", [("Console", "/console", False), ("Callbacks", "/console/callbacks", False), ("Dashboard", "/dashboard", False), ("QA", "/dashboard/qa", False), ("Partners", "/partners", False), ("311 reports", "/reports", False)]),
    ],
)  # fmt: skip
def test_every_staff_page_has_the_header_with_navigation_and_sign_out(
    logged_in_client: LoggedIn,
    roles: tuple[str, ...],
    path: str,
    expected: list[tuple[str, str, bool]],
) -> None:
    staff = logged_in_client(*roles, name="Morgan Staff")
    page = staff.get(path)
    assert page.status_code == 200, path
    html = page.get_data(as_text=True)
    header = header_of(html)
    # /live is linked for supervisors as soon as a route serves it.
    if "supervisor" in roles and any(p == "/live" for _, p, _ in header):
        header = [h for h in header if h[1] != "/live"]
    assert header == expected
    assert 'id="logout"' in html and ">Sign out</button>" in html
    assert ">Morgan Staff</a>" in html
    assert html.count("<header") == 1 and '<main id="main"' in html


def test_signed_out_pages_have_no_staff_navigation(logged_in_client: LoggedIn) -> None:
    anonymous = logged_in_client()
    html = anonymous.get("/login").get_data(as_text=True)
    assert "Staff pages" not in html and 'id="logout"' not in html
