"""Signing in at the desk: staff ID and PIN by keypad, failures recorded and throttled per call,
per calling line and per staff ID, then the first question of the tree."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from twilio.twiml.voice_response import VoiceResponse

from ivr import accounts
from ivr.decisions import sign_in_throttle as throttle
from ivr.flows.desk_state import (
    DESK,
    LOCKOUT_WINDOW,
    MAX_PIN_FAILURES_PER_CALL,
    MAX_TRIES,
    DeskState,
)
from ivr.flows.desk_tree import DeskTree
from ivr.phones import fingerprint
from ivr.store import audit
from ivr.store.handoff_tables import desk_sign_in_failures
from ivr.store.raw_select import RawSelect
from ivr.twiml import gather, say, to_xml

log = logging.getLogger(__name__)


def _wrong_pins_since(who: sa.ColumnElement[bool]) -> sa.ScalarSelect[int]:
    failures = desk_sign_in_failures
    return (
        sa.select(sa.func.count())
        .where(failures.c.kind == "wrong_pin")
        .where(failures.c.at >= sa.bindparam("since", type_=sa.DateTime(timezone=True)))
        .where(who)
        .scalar_subquery()
    )


_ONE_ROW = sa.select(sa.literal(1).label("one")).subquery("one_row")

_SIGN_IN = RawSelect(
    sa.select(
        _wrong_pins_since(desk_sign_in_failures.c.staff_id == sa.bindparam("staff_id")).label(
            "staff_failures"
        ),
        *accounts.STAFF_SIGN_IN_COLUMNS,
    ).select_from(
        _ONE_ROW.outerjoin(
            accounts.STAFF_AND_ROLES,
            accounts.STAFF_AND_ROLES.c.staff_staff_id == sa.bindparam("staff_id"),
        )
    )
)
"""The sign-in's hot path in one round trip: wrong PINs in the lockout window for the staff
ID, and the account with its roles (a row of NULLs when unknown)."""


class DeskSignIn(DeskTree):
    """Sign-in by staff ID and PIN, on top of the tree it leads into."""

    def entry(
        self,
        call_sid: str,
        from_number: str,
        base: str = DESK,
        greeting: str = "Bridgeline transfer desk.",
    ) -> str:
        """Greeting, then the staff ID (after a wait when this number has had wrong PINs).

        A calling number is never refused: it is a PSAP's shared trunk (ivr.decisions.sign_in_throttle).
        `base` is the line signing in: the transfer desk, or the 311 agent line, which shares
        the staff IDs, PINs and lockouts.
        """
        return self._ask_staff_id(greeting, 0, base, self._caller_delay(from_number))

    def _ask_staff_id(
        self, preface: str | None, attempt: int, base: str = DESK, delay: int = 0
    ) -> str:
        response = VoiceResponse()
        if delay:
            say(response, "Too many wrong PINs from this line. Please wait.", "en")
            response.pause(length=delay)
        g = gather(
            response,
            self.url(f"{base}/id", t=attempt),
            "en",
            timeout=10,
            finish_on_key="#",
            speech=False,
        )
        if preface:
            say(g, preface, "en")
        say(g, "Enter your staff ID, then press pound.", "en")
        return to_xml(response)

    def staff_id_entered(
        self, call_sid: str, digits: str | None, attempt: int, base: str = DESK
    ) -> str:
        """The staff ID: then the PIN (whether or not the ID exists: nothing is revealed)."""
        staff_id = "".join(ch for ch in (digits or "") if ch.isdigit())[:12]
        if not staff_id:
            if attempt + 1 >= MAX_TRIES:
                return self.end_call("No staff ID was entered. Goodbye.")
            return self._ask_staff_id("I did not get a staff ID.", attempt + 1, base)
        response = VoiceResponse()
        g = gather(
            response,
            self.url(f"{base}/pin", s=staff_id),
            "en",
            timeout=10,
            finish_on_key="#",
            speech=False,
        )
        say(g, "Enter your PIN, then press pound.", "en")
        return to_xml(response)

    def sign_in(
        self, call_sid: str, from_number: str, staff_id: str, digits: str | None, base: str = DESK
    ) -> accounts.Staff | str:
        """The signed-in staff member, or the TwiML that asks again or ends the call.

        The third wrong PIN in a call ends it; a staff ID is locked after repeated wrong PINs,
        a calling number only slowed down (ivr.decisions.sign_in_throttle).
        """
        pin = "".join(ch for ch in (digits or "") if ch.isdigit())[:12]
        staff_id = "".join(ch for ch in staff_id if ch.isdigit())[:12]
        staff = None
        if staff_id and pin:
            staff = self._verify_unless_locked(staff_id, pin)
        if staff is not None and not ({"call_taker", "supervisor"} & set(staff.roles)):
            staff = None
        if staff is None:
            self._record_failure(call_sid, staff_id, from_number, "wrong_pin")
            self._alert_if_repeated(from_number)
            failures = self._failures_in_call(call_sid)
            if failures >= MAX_PIN_FAILURES_PER_CALL:
                self._record_failure(call_sid, staff_id, from_number, "call_ended")
                log.warning("desk: call ended after %s wrong PINs call=%s", failures, call_sid)
                return self.end_call(
                    "Too many wrong PINs. This attempt has been recorded. Goodbye."
                )
            return self._ask_staff_id(
                "That staff ID and PIN do not match.", 0, base, self._caller_delay(from_number)
            )
        log.info("desk: signed in call=%s staff=%s line=%s", call_sid, staff.staff_id, base)
        return staff

    def pin_entered(
        self, call_sid: str, from_number: str, staff_id: str, digits: str | None
    ) -> str:
        """Check the PIN, then walk the decision tree."""
        signed_in = self.sign_in(call_sid, from_number, staff_id, digits)
        if isinstance(signed_in, str):
            return signed_in
        state = DeskState(staff_id=signed_in.staff_id, answers={})
        return self.question(state, 0, preface=f"Signed in, {signed_in.name}.", call_sid=call_sid)

    def _record_failure(self, call_sid: str, staff_id: str, from_number: str, kind: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                desk_sign_in_failures.insert().values(
                    call_sid=call_sid[:64],
                    staff_id=staff_id[:32],
                    caller_tag=fingerprint(from_number or "unknown"),
                    kind=kind,
                    at=self.clock(),
                )
            )

    def _count(self, where: sa.ColumnElement[bool]) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(desk_sign_in_failures)
                    .where(where)
                    .where(desk_sign_in_failures.c.kind == "wrong_pin")
                ).scalar_one()
            )

    def _failures_in_call(self, call_sid: str) -> int:
        return self._count(desk_sign_in_failures.c.call_sid == call_sid[:64])

    def _caller_failures(self, from_number: str) -> int:
        since = self.clock() - LOCKOUT_WINDOW
        return self._count(
            sa.and_(
                desk_sign_in_failures.c.caller_tag == fingerprint(from_number or "unknown"),
                desk_sign_in_failures.c.at >= since,
            )
        )

    def _caller_delay(self, from_number: str) -> int:
        """Seconds this calling number waits before it may enter a staff ID (0 usually)."""
        return throttle.caller_delay_seconds(
            self._caller_failures(from_number), self.psap_line(from_number)
        )

    def _alert_if_repeated(self, from_number: str) -> None:
        """Repeated wrong PINs from one line: an audit entry a supervisor sees (the metric
        bridgeline_desk_lines_with_repeated_wrong_pins counts the lines)."""
        failures = self._caller_failures(from_number)
        if not throttle.should_alert(failures):
            return
        tag = fingerprint(from_number or "unknown")
        psap = self.psap_line(from_number)
        audit.append(
            self.engine,
            "desk",
            "desk.repeated_wrong_pins",
            f"caller:{tag}",
            {
                "wrong_pins": failures,
                "window_minutes": int(LOCKOUT_WINDOW.total_seconds() // 60),
                "psap_line": psap,
            },
        )
        log.warning(
            "desk: repeated wrong PINs from one line caller=%s wrong_pins=%s psap_line=%s",
            tag,
            failures,
            psap,
        )

    def _verify_unless_locked(self, staff_id: str, pin: str) -> accounts.Staff | None:
        """The staff member if the PIN is theirs and the staff ID is not locked out (None
        otherwise). One query: the lockout count and the account together."""
        rows = _SIGN_IN.rows(
            self.engine,
            {
                "since": self.clock() - LOCKOUT_WINDOW,
                "staff_id": staff_id[:32],
            },
        )
        first = rows[0]
        if throttle.staff_locked(first.staff_failures):
            return None
        known = [row for row in rows if row.id is not None]
        return accounts.verify_rows(self.engine, staff_id, pin, "pin_hash", known)
