"""How the live pages write times: elapsed as "4 min 05 s", instants as local clock times."""

from __future__ import annotations

from datetime import datetime, tzinfo


def elapsed(since: datetime, now: datetime) -> str:
    """Time from `since` to `now` in words a wall screen can be read by ("1 h 02 min")."""
    seconds = max(int((now - since).total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} days {hours} h"


def local_clock(at: datetime | None, zone: tzinfo, now: datetime | None = None) -> str:
    """An instant in local time: "14:05" today, "Mon 30 Nov 14:05" on another day."""
    if at is None:
        return ""
    local = at.astimezone(zone)
    if now is not None and local.date() == now.astimezone(zone).date():
        return local.strftime("%H:%M")
    return local.strftime("%a %d %b %H:%M")
