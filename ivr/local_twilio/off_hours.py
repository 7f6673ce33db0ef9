"""Scenarios the service rightly will not play at this hour, and why (bridgeline-simulate).

A resident's callback is placed only inside config/callbacks.yaml's window and while someone of
its helper type is on duty; the desk says "no one is on duty" only when no helper type the tree
allows has anyone. The reasons given are read from what the service did (the attempt it put
off, the helpers its desk offered) and from its own config, never assumed.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa

    from ivr.store.callbacks import Callback


class NotPlayableNow(RuntimeError):
    """The service rightly will not do what the scenario shows at this hour (its roster or its
    quiet hours); the message says why, from what the service did, and when it would."""


NOT_PLAYABLE = 3
"""Exit status when the scenario cannot be played at this hour (1: the service misbehaved)."""

PUT_OFF_AFTER = timedelta(seconds=30)
"""An attempt scheduled this far ahead of now was put off, not merely queued."""


def offered(prompt: str) -> list[str]:
    """The helper types the desk's offer names, as it says them."""
    return re.findall(r"For (?:an? )?([^,]+), press \d\.", prompt)


def callback_put_off(engine: sa.Engine, call_sid: str, staff_id: str) -> str | None:
    """Why the service put off the callback the self-service call `call_sid` asked for, and
    when it looks again; None while it has not. The demo request is then closed by hand (as
    staff would on the callbacks page), so no call rings later."""
    from ivr.store import callbacks as store

    callback = store.find_by_key(engine, store.menu_key(call_sid))
    if callback is None:
        return None
    now = datetime.now(UTC)
    later = [
        a.scheduled_for
        for a in store.attempts_of(engine, callback.id)
        if a.status is store.AttemptStatus.SCHEDULED and a.scheduled_for > now + PUT_OFF_AFTER
    ]
    if not later:
        return None
    if callback.last_outcome == "no_helper_on_duty":
        why = _nobody_for(callback, now)
    else:
        why = (
            "callbacks are placed only inside the hours config/callbacks.yaml allows "
            "(quiet hours now)"
        )
    closed = store.mark_done_by_hand(
        engine,
        callback.id,
        "closed by bridgeline-simulate: a demo request the service could not place now",
        staff_id,
        now,
    )
    tail = " The simulator closed its demo request, so no call rings later." if closed else ""
    return (
        f"the service saved the callback request but, rightly, does not call now: {why}. "
        f"It looks again at {_local(later[0])}. Watch this scenario at an hour when a "
        f"resident's callback can be placed, or against a service whose config covers this "
        f"hour.{tail}"
    )


def _config_dir() -> Path:
    return Path(os.environ.get("BRIDGELINE_CONFIG") or "config")


def _local(when: datetime) -> str:
    """A time as the service's people read it: in the roster's zone (BRIDGELINE_CONFIG)."""
    from ivr.config import load_roster

    zone = load_roster(_config_dir()).timezone
    return f"{when.astimezone(zone):%a %H:%M} ({zone.key})"


def _nobody_for(callback: Callback, now: datetime) -> str:
    """Who returns `callback` and when the roster next has one on duty (the service's config)."""
    from ivr.config import load_config, load_roster
    from ivr.config.callbacks import load_callbacks
    from ivr.decisions.routing import next_on_duty_change

    folder = _config_dir()
    config, roster = load_config(folder), load_roster(folder)
    rules = load_callbacks(
        folder,
        default_timezone=config.lines.timezone,
        line_ids=tuple(config.lines.lines),
        helper_types=(*roster.helper_types, *roster.lines),
    )
    helper_type = callback.helper_type or rules.rule(callback.source.value).helper_type
    change = next_on_duty_change(roster, helper_type, now)
    shift = f"; the next shift starts {_local(change)}" if change else ""
    return f"no {roster.label(helper_type)} is on duty now (config/roster.yaml){shift}"
