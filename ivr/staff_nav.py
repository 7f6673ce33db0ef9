"""The staff header's navigation: which pages each role sees, in one list (pure).

Every staff page extends base.html, whose header (console/templates/_staff_header.html) shows
`links_for(...)` of the signed-in staff member. A page is listed by its path; it appears only
once a route serves that path, so a link can be declared here before its page lands. To add a
page, add one NavLink below.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

CALL_TAKER = "call_taker"
CLINICIAN = "clinician"
SUPERVISOR = "supervisor"
AGENT_311 = "agent_311"
EVERY_ROLE = frozenset({CALL_TAKER, CLINICIAN, SUPERVISOR})


@dataclass(frozen=True)
class NavLink:
    """One page in the staff header: its label, its path, and the roles that see it."""

    label: str
    path: str
    roles: frozenset[str]


STAFF_LINKS: tuple[NavLink, ...] = (
    NavLink("Console", "/console", frozenset({CALL_TAKER})),
    NavLink("Clinician", "/console/clinician", frozenset({CLINICIAN})),
    NavLink("Callbacks", "/console/callbacks", EVERY_ROLE),
    NavLink("Live", "/live", frozenset({SUPERVISOR})),
    NavLink("Dashboard", "/dashboard", frozenset({SUPERVISOR})),
    NavLink("QA", "/dashboard/qa", frozenset({SUPERVISOR})),
    NavLink("Partners", "/partners", frozenset({SUPERVISOR})),
    NavLink("311 reports", "/reports", frozenset({AGENT_311, SUPERVISOR, CALL_TAKER})),
)
"""The staff pages, in header order (a link shows only to its roles, and only once served)."""


@dataclass(frozen=True)
class ShownLink:
    """A link as the header draws it."""

    label: str
    path: str
    current: bool


def links_for(
    roles: Collection[str],
    current_path: str,
    served: Callable[[str], bool],
    links: Iterable[NavLink] = STAFF_LINKS,
) -> list[ShownLink]:
    """The header links a staff member with `roles` sees on `current_path`.

    `served(path)` says whether a route answers that path. The current page is the link with
    the longest path that `current_path` is, or starts with followed by "/".
    """
    shown = [link for link in links if link.roles & set(roles) and served(link.path)]
    best = max(
        (link.path for link in shown if _within(current_path, link.path)), key=len, default=None
    )
    return [ShownLink(link.label, link.path, link.path == best) for link in shown]


def _within(current_path: str, path: str) -> bool:
    return current_path == path or current_path.startswith(path.rstrip("/") + "/")
