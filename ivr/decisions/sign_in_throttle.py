"""How the desk answers wrong PINs: lock a staff ID, slow a calling number down, never lock it.

A PSAP calls the desk from a few shared trunk numbers, so a calling number is many call-takers
(and can be spoofed by anyone). Locking it would let one mistyping call-taker, or one hostile
caller, lock a 911 center out during an emergency. So a staff ID is locked after repeated wrong
PINs, while a calling number only waits longer before it may try (a pause Twilio plays before
the staff ID prompt, which no caller can skip), and a correct staff ID and PIN always signs in.
Pure: no Flask, SQL or Twilio.
"""

from __future__ import annotations

from datetime import timedelta

WINDOW = timedelta(minutes=15)
"""Wrong PINs older than this are forgotten (for staff lockout and calling-number slowdown)."""

STAFF_LOCK_AFTER = 5
"""Wrong PINs for one staff ID in the window that lock that ID, whatever number calls."""

SLOWDOWN_AFTER = 3
"""Wrong PINs from one calling number in the window after which each try waits first."""

MAX_DELAY_SECONDS = 30
"""The longest wait a calling number is given before it may try again."""

MAX_DELAY_PSAP_SECONDS = 5
"""The longest wait on a PSAP line configured in program.yaml (call_jurisdictions.desk_callers):
someone there may be holding a caller in crisis."""

ALERT_AFTER = 5
"""Wrong PINs from one calling number in the window that alert a supervisor (audit + metric)."""


def staff_locked(staff_failures: int) -> bool:
    """Whether a staff ID with this many recent wrong PINs is locked (a right PIN is refused)."""
    return staff_failures >= STAFF_LOCK_AFTER


def caller_delay_seconds(caller_failures: int, psap_line: bool) -> int:
    """Seconds a calling number waits before the staff ID prompt: 0, then 2, 4, 8, ... capped.

    The wait doubles with each wrong PIN past SLOWDOWN_AFTER, so guessing PINs from one number
    gets slower and slower, while a call-taker who knows their PIN is only delayed, never
    refused. A configured PSAP line is capped lower.
    """
    if caller_failures < SLOWDOWN_AFTER:
        return 0
    cap = MAX_DELAY_PSAP_SECONDS if psap_line else MAX_DELAY_SECONDS
    exponent = min(caller_failures - SLOWDOWN_AFTER + 1, 8)
    return min(cap, 2**exponent)


def should_alert(caller_failures: int) -> bool:
    """Whether this wrong PIN (the caller's `caller_failures`-th in the window) alerts a
    supervisor: at ALERT_AFTER, then at every further ALERT_AFTER, so an attack keeps showing."""
    return caller_failures >= ALERT_AFTER and caller_failures % ALERT_AFTER == 0
