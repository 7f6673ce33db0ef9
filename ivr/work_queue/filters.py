"""Which 311 reports the work queue lists, from the page's query string (pure).

Every filter has a plain-words choice list, so a bad or hand-edited URL falls back to the
default choice instead of failing: staff always get a list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ivr.store.service_requests import ASSIGN_DEPARTMENT, ASSIGN_STAFF, Filters, RequestStatus

STATUS_CHOICES: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("open", "Open (received or in progress)", frozenset({"received", "in_progress"})),
    ("received", "Received", frozenset({"received"})),
    ("in_progress", "In progress", frozenset({"in_progress"})),
    ("resolved", "Resolved", frozenset({"resolved"})),
    ("closed", "Closed", frozenset({"closed"})),
    ("all", "Any status", frozenset()),
)
"""(value, label, statuses) of the status filter; the first is the default."""

AGE_CHOICES: tuple[tuple[str, str, timedelta | None, timedelta | None], ...] = (
    ("any", "Any age", None, None),
    ("day", "Filed in the last 24 hours", None, timedelta(days=1)),
    ("week", "Filed in the last 7 days", None, timedelta(days=7)),
    ("over_week", "Waiting more than 7 days", timedelta(days=7), None),
    ("over_month", "Waiting more than 30 days", timedelta(days=30), None),
)
"""(value, label, older than, newer than) of the age filter; the first is the default."""

STATUS_LABELS = {
    RequestStatus.RECEIVED: "Received",
    RequestStatus.IN_PROGRESS: "In progress",
    RequestStatus.RESOLVED: "Resolved",
    RequestStatus.CLOSED: "Closed",
}
"""Statuses in plain words."""

PAGE_SIZE = 200
"""Reports shown at once (newest first)."""


@dataclass(frozen=True)
class QueueFilters:
    """The filters as chosen on the page (values of the choice lists, '' for "any")."""

    category: str = ""
    status: str = "open"
    age: str = "any"
    jurisdiction: str = ""

    def query(self, now: datetime) -> Filters:
        """The store's filters for these choices at `now`."""
        statuses = next(s for v, _, s in STATUS_CHOICES if v == self.status)
        _, _, older, newer = next(a for a in AGE_CHOICES if a[0] == self.age)
        return Filters(
            categories=frozenset({self.category}) if self.category else frozenset(),
            statuses=statuses,
            jurisdictions=frozenset({self.jurisdiction}) if self.jurisdiction else None,
            created_from=now - newer if newer else None,
            created_until=now - older if older else None,
            limit=PAGE_SIZE,
        )


def parse_filters(
    args: Mapping[str, str], categories: Sequence[str], jurisdictions: Sequence[str]
) -> QueueFilters:
    """The page's filters from its query string; anything unknown means the default."""

    def pick(name: str, allowed: Sequence[str], default: str) -> str:
        value = (args.get(name) or "").strip()
        return value if value in allowed else default

    return QueueFilters(
        category=pick("category", categories, ""),
        status=pick("status", [v for v, _, _ in STATUS_CHOICES], "open"),
        age=pick("age", [v for v, *_ in AGE_CHOICES], "any"),
        jurisdiction=pick("jurisdiction", jurisdictions, ""),
    )


def age_in_words(filed: datetime, now: datetime) -> str:
    """How long a report has waited: '35 minutes', '5 hours', '3 days'."""
    seconds = max(0, int((now - filed).total_seconds()))
    if seconds < 3600:
        minutes = seconds // 60
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
    if seconds < 48 * 3600:
        hours = seconds // 3600
        return "1 hour" if hours == 1 else f"{hours} hours"
    return f"{seconds // 86400} days"


def assignment_label(value: str | None, people: Mapping[str, str]) -> str:
    """'staff:4101' -> 'Dana Ruiz (4101)'; 'dept:Streets' -> 'Streets'; None -> 'Nobody yet'."""
    if not value:
        return "Nobody yet"
    if value.startswith(ASSIGN_STAFF):
        staff_id = value[len(ASSIGN_STAFF) :]
        name = people.get(staff_id)
        return f"{name} ({staff_id})" if name else f"Staff {staff_id}"
    if value.startswith(ASSIGN_DEPARTMENT):
        return value[len(ASSIGN_DEPARTMENT) :]
    return value
