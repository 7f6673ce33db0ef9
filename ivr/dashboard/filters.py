"""Read the dashboard's filter form (query string) into report Filters, in local dates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from werkzeug.datastructures import MultiDict

from ivr.config.program import ProgramConfig
from ivr.reporting.measures import Filters

DEFAULT_DAYS = 30
"""The dashboard opens on the last 30 days, today included."""

MAX_DAYS = 3 * 366
"""Longest range one view may ask for."""


class FilterError(ValueError):
    """A filter value the supervisor typed cannot be used; the message says which."""


@dataclass(frozen=True)
class FilterForm:
    """What the form shows back, and the Filters it means."""

    start_date: date
    end_date: date
    jurisdiction: str
    helper_type: str
    hours: frozenset[int]
    weekdays: frozenset[int]
    filters: Filters

    def query(self) -> dict[str, object]:
        """The filters as query-string values (for CSV links)."""
        out: dict[str, object] = {
            "start": self.start_date.isoformat(),
            "end": self.end_date.isoformat(),
        }
        if self.jurisdiction:
            out["jurisdiction"] = self.jurisdiction
        if self.helper_type:
            out["helper_type"] = self.helper_type
        if self.hours:
            out["hour"] = sorted(self.hours)
        if self.weekdays:
            out["weekday"] = sorted(self.weekdays)
        return out


def _date(raw: str | None, default: date, name: str) -> date:
    if not raw:
        return default
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise FilterError(f"{name} must be a date like 2026-11-01") from None


def _ints(values: list[str], allowed: range, name: str) -> frozenset[int]:
    out = set()
    for raw in values:
        if raw == "":
            continue
        if not raw.isdigit() or int(raw) not in allowed:
            raise FilterError(f"{name} must be between {allowed.start} and {allowed.stop - 1}")
        out.add(int(raw))
    return frozenset(out)


def parse_filters(
    args: MultiDict[str, str] | Mapping[str, str],
    program: ProgramConfig,
    helper_types: tuple[str, ...],
    now: datetime,
) -> FilterForm:
    """Dates are local calendar days, both ends included; empty fields mean 'all'."""
    zone = program.zone
    today = now.astimezone(zone).date()
    getlist = (
        args.getlist if isinstance(args, MultiDict) else (lambda k: [args[k]] if k in args else [])
    )
    end_date = _date(args.get("end"), today, "end")
    start_date = _date(args.get("start"), end_date - timedelta(days=DEFAULT_DAYS - 1), "start")
    if end_date < start_date:
        raise FilterError("the end date is before the start date")
    if (end_date - start_date).days > MAX_DAYS:
        raise FilterError(f"a view may cover at most {MAX_DAYS} days")
    jurisdiction = (args.get("jurisdiction") or "").strip()
    if jurisdiction and program.jurisdiction(jurisdiction) is None:
        raise FilterError("unknown jurisdiction")
    helper_type = (args.get("helper_type") or "").strip()
    if helper_type and helper_type not in helper_types:
        raise FilterError("unknown helper type")
    hours = _ints(getlist("hour"), range(24), "hour")
    weekdays = _ints(getlist("weekday"), range(7), "weekday")
    start = datetime.combine(start_date, time(0), zone)
    end = datetime.combine(end_date + timedelta(days=1), time(0), zone)
    return FilterForm(
        start_date=start_date,
        end_date=end_date,
        jurisdiction=jurisdiction,
        helper_type=helper_type,
        hours=hours,
        weekdays=weekdays,
        filters=Filters(
            start=start,
            end=end,
            jurisdiction=jurisdiction or None,
            helper_type=helper_type or None,
            hours=hours,
            weekdays=weekdays,
        ),
    )
