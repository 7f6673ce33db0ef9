"""Times on staff pages: in the program's time zone, in words a tired reader takes in at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo


def parse_time(value: datetime | str | None) -> datetime | None:
    """An aware datetime from a datetime or an ISO 8601 string (naive values are UTC)."""
    if value is None or value == "":
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def local_time(value: datetime | str | None, zone: tzinfo, now: datetime) -> str:
    """'today 15:27', 'yesterday 09:02', 'tomorrow 10:00' or 'Mon 28 Nov 15:27', in `zone`."""
    moment = parse_time(value)
    if moment is None:
        return ""
    here = moment.astimezone(zone)
    today = now.astimezone(zone).date()
    clock = here.strftime("%H:%M")
    day = here.date()
    if day == today:
        return f"today {clock}"
    if day == today - timedelta(days=1):
        return f"yesterday {clock}"
    if day == today + timedelta(days=1):
        return f"tomorrow {clock}"
    return f"{here.strftime('%a')} {here.day} {here.strftime('%b')} {clock}"


def duration(seconds: float) -> str:
    """'45 s', '3 min 05 s', '2 h 10 min' (a running timer or an age)."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"
