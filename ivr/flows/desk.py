"""The transfer desk, the intake line and the helper's whisper, as plain methods.

Each method takes what Twilio told us and returns the TwiML to answer with. State between
steps travels in the callback URLs, which Twilio signs: the staff ID once the PIN matched, the
answers so far ("y", "n" or "-" per question, in the tree's order), the desk round. Durable
things (sign-in failures, live calls, handoffs and their events) are written to SQL before the
call-taker hears they happened; dialing is done by RQ jobs, never inside a webhook.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from twilio.twiml.voice_response import Dial, VoiceResponse

from ivr import accounts
from ivr.config.decision_tree import DecisionTree
from ivr.config.roster import Roster
from ivr.decisions import sign_in_throttle as throttle
from ivr.decisions.handoffs import (
    CALL_TAKER_LABEL,
    CALLER_LABEL,
    EventSource,
    HandoffEvent,
    HandoffStatus,
    LiveCallStatus,
    Origin,
)
from ivr.decisions.phrases import sentence, spoken_digits, spoken_phone
from ivr.decisions.routing import Eligibility, ReasonCode, eligibility, next_question, offers
from ivr.flows import handoffs
from ivr.phones import PhoneNumberError, callback_number, fingerprint, national_digits
from ivr.queueing import Queues
from ivr.store import audit
from ivr.store.handoff_tables import desk_sign_in_failures
from ivr.store.raw_select import RawSelect
from ivr.twiml import Urls, gather, say, to_xml

log = logging.getLogger(__name__)

DESK = "/voice/transfer-desk"
"""Entry point of the transfer desk; its steps live below it."""

INTAKE = "/voice/intake"
"""Entry point of the intake line (callers wait, a call-taker is dialed in)."""

HANDOFF = "/voice/handoff"
"""Whisper, announcements and status callbacks of handoffs."""

MAX_PIN_FAILURES_PER_CALL = 3
"""Wrong PINs after which the desk ends the call."""

LOCKOUT_WINDOW = throttle.WINDOW
"""Window in which wrong PINs are counted (staff ID lockout, calling-number slowdown)."""

MAX_TRIES = 3
"""Times the desk re-asks a question before it gives up politely."""

WHISPER_TIMEOUT_SECONDS = 8
"""How long the helper has to press 1 or 2 after the whisper."""

CALLER_CHECK_SECONDS = 12
"""After the desk starts a handoff: the announcement is over and the caller's leg should be in
the conference; a worker then checks the caller has not hung up on the way."""

CONFERENCE_EVENTS = "start end join leave"
"""Conference status callback events, space-separated as TwiML wants them."""

ANSWER_CODES = {True: "y", False: "n"}

QUESTION_CACHE_SIZE = 4096
"""At most this many built question answers are kept per process (then the cache restarts)."""


@dataclass(frozen=True)
class DeskState:
    """Where a signed-in call-taker is in the desk flow (carried in signed URLs)."""

    staff_id: str
    answers: dict[str, bool]
    round: int = 1
    # From the calling PSAP line on each request (program.yaml), not carried in the URL.
    jurisdiction: str | None = None

    def params(self, tree: DecisionTree) -> dict[str, object]:
        """URL parameters for this state."""
        return {"s": self.staff_id, "a": encode_answers(tree, self.answers), "n": self.round}


def encode_answers(tree: DecisionTree, answers: Mapping[str, bool]) -> str:
    """One letter per question in the tree's order: y, n, or - when not asked."""
    return "".join(
        ANSWER_CODES.get(answers[q.id], "-") if q.id in answers else "-" for q in tree.questions
    )


def decode_answers(tree: DecisionTree, raw: str | None) -> dict[str, bool]:
    """Inverse of encode_answers; anything else than y/n means not asked."""
    raw = (raw or "")[: len(tree.questions)]
    out: dict[str, bool] = {}
    for question, letter in zip(tree.questions, raw, strict=False):
        if letter in ("y", "n"):
            out[question.id] = letter == "y"
    return out


def with_article(label: str) -> str:
    """'an embedded clinician', 'a navigator'."""
    return f"{'an' if label[:1].lower() in 'aeiou' else 'a'} {label}"


def spoken_time(moment: datetime, now: datetime, roster: Roster) -> str:
    """'10 a.m.', 'tomorrow at 8 a.m.', 'Monday at 9:30 a.m.' in the roster's time zone."""
    local = moment.astimezone(roster.timezone)
    today = now.astimezone(roster.timezone).date()
    hour = local.hour % 12 or 12
    clock = f"{hour}:{local.minute:02d}" if local.minute else f"{hour}"
    clock += " a.m." if local.hour < 12 else " p.m."
    if local.date() == today:
        return clock
    if local.date() == today + timedelta(days=1):
        return f"tomorrow at {clock}"
    return f"{local.strftime('%A')} at {clock}"


REASON_TEXT = {
    ReasonCode.NOT_ELIGIBLE_WEAPON.value: "a weapon is involved",
    ReasonCode.NOT_ELIGIBLE_DANGER.value: "someone is in immediate danger",
    ReasonCode.NOT_ELIGIBLE_VIOLENCE.value: "violence or a crime is in progress",
    ReasonCode.NOT_ELIGIBLE_MEDICAL.value: "it is a medical emergency",
    ReasonCode.NO_CONSENT.value: "the caller does not agree",
    ReasonCode.NOT_ELIGIBLE_TYPE.value: "that helper is not allowed for these answers",
    ReasonCode.NO_ONE_ON_DUTY.value: "no one is on duty",
    ReasonCode.NO_ANSWER.value: "did not answer",
    ReasonCode.BUSY.value: "was busy",
    ReasonCode.FAILED.value: "could not be reached",
    ReasonCode.DECLINED.value: "declined",
    ReasonCode.NO_RESPONSE_TO_WHISPER.value: "answered but did not accept",
    ReasonCode.DIAL_REFUSED.value: "could not be dialed",
    ReasonCode.CANCELLED.value: "was cancelled",
}
"""How the desk says a reason code out loud."""


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


class TransferDesk:
    """Builds the answer to each step of the desk, the intake line and the helper's leg."""

    def __init__(
        self,
        *,
        roster: Roster,
        tree: DecisionTree,
        base_url: str,
        engine: sa.Engine,
        queues: Queues,
        hold_music_url: str,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.roster = roster
        self.tree = tree
        self.url = Urls(base_url)
        self.engine = engine
        self.queues = queues
        self.hold_music_url = hold_music_url
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        # Whether a calling number is one of the PSAP lines in program.yaml (set by the routes).
        self.psap_line: Callable[[str], bool] = lambda _number: False
        # A question's TwiML depends only on the tree (fixed), the question, the attempt, the
        # preface and the URL state, so each is built once per process (the PIN step's cost).
        self._question_twiml: dict[tuple[object, ...], str] = {}

    # ------------------------------------------------------------------ sign-in

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

    # ------------------------------------------------------------------ the decision tree

    def question(
        self, state: DeskState, attempt: int, preface: str | None = None, call_sid: str = ""
    ) -> str:
        """Ask the next question the tree needs, or move on to the offer when it has decided."""
        question_id = next_question(self.tree, state.answers)
        if question_id is None:
            return self.decided(state, preface, call_sid)
        params = state.params(self.tree)
        key = (question_id, attempt, preface, tuple(params.items()))
        cached = self._question_twiml.get(key)
        if cached is not None:
            return cached
        question = self.tree.question(question_id)
        assert question is not None
        response = VoiceResponse()
        g = gather(
            response,
            self.url(f"{DESK}/answer", q=question_id, t=attempt, **params),
            "en",
            timeout=8,
            num_digits=1,
            speech=False,
        )
        if preface:
            say(g, preface, "en")
        say(g, f"{question.prompt} Press 1 for yes, 2 for no.", "en")
        xml = to_xml(response)
        if len(self._question_twiml) >= QUESTION_CACHE_SIZE:
            self._question_twiml.clear()  # rare: the next questions are built afresh
        self._question_twiml[key] = xml
        return xml

    def answer(
        self, call_sid: str, state: DeskState, question_id: str, digits: str | None, attempt: int
    ) -> str:
        """1 yes, 2 no; anything else is asked again (a few times)."""
        key = (digits or "").strip()[:1]
        if self.tree.question(question_id) is None:
            return self.question(state, 0, call_sid=call_sid)
        if key not in ("1", "2"):
            if attempt + 1 >= MAX_TRIES:
                return self.end_call("No answer was given, so no transfer was made. Goodbye.")
            return self.question(
                state, attempt + 1, preface="Please press 1 for yes or 2 for no.", call_sid=call_sid
            )
        answers = {**state.answers, question_id: key == "1"}
        return self.question(replace(state, answers=answers), 0, call_sid=call_sid)

    def decided(self, state: DeskState, preface: str | None, call_sid: str) -> str:
        """The tree has decided: no diversion (said and recorded), or the offer of helpers."""
        result = eligibility(self.tree, state.answers)
        if not result.is_diversion:
            self._refusal(call_sid, state, "none")
            return self._not_eligible(state, result, preface)
        return self.offer(state, 0, preface=preface, call_sid=call_sid)

    def _not_eligible(self, state: DeskState, result: Eligibility, preface: str | None) -> str:
        reason = (result.reason or ReasonCode.NOT_ELIGIBLE_TYPE).value
        response = VoiceResponse()
        if preface:
            say(response, preface, "en")
        say(
            response,
            f"This call cannot be diverted because {REASON_TEXT.get(reason, reason)}. "
            "Keep it on the police or E M S route. Goodbye.",
            "en",
        )
        response.hangup()
        return to_xml(response)

    def _refusal(self, call_sid: str, state: DeskState, helper_type: str) -> None:
        """Record a desk handoff that could not start (not eligible / no one on duty) with its reason."""
        if not call_sid:
            return
        try:
            self.record_refusal(call_sid, state, helper_type)
        except (sa.exc.SQLAlchemyError, handoffs.HandoffError) as exc:
            log.error("desk: refusal not recorded call=%s error=%s", call_sid, type(exc).__name__)

    def record_refusal(self, call_sid: str, state: DeskState, helper_type: str) -> None:
        """Record the not-started handoff and close the live call."""
        handoffs.open_live_call(
            self.engine,
            call_sid=call_sid[:64],
            origin=Origin.DESK,
            callback_number=None,
            call_taker_staff_id=state.staff_id,
            now=self.clock(),
            round_=state.round,
            jurisdiction=state.jurisdiction,
        )
        handoffs.start_handoff(
            self.engine,
            self.queues,
            call_sid=call_sid[:64],
            call_taker_staff_id=state.staff_id,
            helper_type=helper_type,
            answers=state.answers,
            reason="transfer desk",
            roster=self.roster,
            tree=self.tree,
            now=self.clock(),
            key=f"desk:{call_sid}:{state.round}:refused",
        )
        handoffs.end_live_call_if_idle(self.engine, call_sid[:64], self.clock())

    # ------------------------------------------------------------------ the offer

    def offer(
        self, state: DeskState, attempt: int, preface: str | None = None, call_sid: str = ""
    ) -> str:
        """Eligible helper types with someone on duty get a key; the others are said with their hours."""
        result = eligibility(self.tree, state.answers)
        now = self.clock()
        available, lines = [], []
        for item in offers(self.roster, result.allowed, now):
            if item.available:
                available.append(item)
                lines.append(f"For {with_article(item.label)}, press {len(available)}.")
            elif item.next_change is not None:
                lines.append(
                    sentence(
                        f"No {item.label} is on duty until "
                        f"{spoken_time(item.next_change, now, self.roster)}."
                    )
                )
            else:
                lines.append(f"No {item.label} is on duty.")
        response = VoiceResponse()
        if not available:
            self._refusal(call_sid, state, self.first_eligible(state))
            if preface:
                say(response, preface, "en")
            say(response, " ".join(lines), "en")
            say(
                response,
                "No eligible helper is on duty now, so no transfer was made. Goodbye.",
                "en",
            )
            response.hangup()
            return to_xml(response)
        g = gather(
            response,
            self.url(f"{DESK}/choose", t=attempt, **state.params(self.tree)),
            "en",
            timeout=10,
            num_digits=1,
            speech=False,
        )
        if preface:
            say(g, preface, "en")
        say(g, " ".join([*lines, "To end without a transfer, press 0."]), "en")
        return to_xml(response)

    def available_types(self, state: DeskState) -> list[str]:
        """The helper types offered right now, in key order."""
        result = eligibility(self.tree, state.answers)
        return [
            o.helper_type for o in offers(self.roster, result.allowed, self.clock()) if o.available
        ]

    def first_eligible(self, state: DeskState) -> str:
        """The helper type a refusal is recorded against (the first the tree allows, or 'none')."""
        result = eligibility(self.tree, state.answers)
        return result.allowed[0] if result.allowed else "none"

    def choose(self, call_sid: str, state: DeskState, digits: str | None, attempt: int) -> str:
        """The key of a helper type: then the caller's callback number."""
        key = (digits or "").strip()[:1]
        types = self.available_types(state)
        if key == "0":
            return self.end_call("No transfer was made. Goodbye.")
        if not key.isdigit() or not 1 <= int(key) <= len(types):
            if attempt + 1 >= MAX_TRIES:
                return self.end_call("No helper was chosen, so no transfer was made. Goodbye.")
            return self.offer(
                state, attempt + 1, preface="That is not one of the choices.", call_sid=call_sid
            )
        if self.tree.handoff_reasons:
            return self.reason_prompt(state, types[int(key) - 1], 0)
        return self.callback_prompt(state, types[int(key) - 1], 0)

    def reason_prompt(
        self, state: DeskState, helper_type: str, attempt: int, preface: str | None = None
    ) -> str:
        """What the call is about, by keypad (decision_tree.yaml handoff_reasons); 0 skips."""
        response = VoiceResponse()
        g = gather(
            response,
            self.url(f"{DESK}/reason", h=helper_type, t=attempt, **state.params(self.tree)),
            "en",
            timeout=10,
            num_digits=1,
            speech=False,
        )
        if preface:
            say(g, preface, "en")
        options = [f"For {text}, press {n}." for n, text in enumerate(self.tree.handoff_reasons, 1)]
        say(g, " ".join(["What is the call about?", *options, "To skip, press 0."]), "en")
        # No key at all: go on without a reason rather than lose the transfer.
        response.redirect(
            self.url(f"{DESK}/reason", h=helper_type, t=MAX_TRIES, **state.params(self.tree)),
            method="POST",
        )
        return to_xml(response)

    def reason_chosen(
        self, state: DeskState, helper_type: str, digits: str | None, attempt: int
    ) -> str:
        """The reason's key (0 or nothing after a retry: none); then the callback number."""
        key = (digits or "").strip()[:1]
        reasons = self.tree.handoff_reasons
        if key.isdigit() and 0 <= int(key) <= len(reasons):
            return self.callback_prompt(state, helper_type, 0, reason=int(key))
        if attempt + 1 < MAX_TRIES:
            return self.reason_prompt(
                state, helper_type, attempt + 1, preface="That is not one of the choices."
            )
        return self.callback_prompt(state, helper_type, 0)

    def reason_text(self, index: int | None) -> str:
        """The words of reason `index` (1-based), or the desk's default when none was picked."""
        reasons = self.tree.handoff_reasons
        if index is not None and 1 <= index <= len(reasons):
            return reasons[index - 1]
        return "transfer desk"

    def callback_prompt(
        self,
        state: DeskState,
        helper_type: str,
        attempt: int,
        preface: str | None = None,
        reason: int = 0,
    ) -> str:
        response = VoiceResponse()
        extra = {"r": reason} if reason else {}
        g = gather(
            response,
            self.url(f"{DESK}/start", h=helper_type, t=attempt, **extra, **state.params(self.tree)),
            "en",
            timeout=10,
            finish_on_key="#",
            speech=False,
        )
        if preface:
            say(g, preface, "en")
        say(
            g,
            "Enter the caller's ten digit callback number, then press pound. If you do not have it, just press pound. "
            "If the caller speaks Spanish, press star before the number.",
            "en",
        )
        return to_xml(response)

    # ------------------------------------------------------------------ into the conference

    def start(
        self,
        call_sid: str,
        state: DeskState,
        helper_type: str,
        digits: str | None,
        attempt: int,
        reason: int | None = None,
    ) -> str:
        """Record the live call and the handoff (the dial job is queued), then hold in the conference."""
        if helper_type not in self.available_types(state):
            return self.offer(
                state, 0, preface="That helper is no longer available.", call_sid=call_sid
            )
        raw = "".join(ch for ch in (digits or "") if ch.isdigit())
        # A star before the number: the caller speaks Spanish (their callback is made in it).
        language = "es" if (digits or "").lstrip().startswith("*") else "en"
        number = None
        if raw:
            try:
                number = callback_number(raw if len(raw) == 10 else "+" + raw)
            except PhoneNumberError:
                if attempt + 1 < MAX_TRIES:
                    return self.callback_prompt(
                        state,
                        helper_type,
                        attempt + 1,
                        preface="That number cannot be called back.",
                        reason=reason or 0,
                    )
        now = self.clock()
        live = handoffs.open_live_call(
            self.engine,
            call_sid=call_sid[:64],
            origin=Origin.DESK,
            callback_number=number,
            call_taker_staff_id=state.staff_id,
            now=now,
            round_=state.round,
            jurisdiction=state.jurisdiction,
            language=language,
        )
        try:
            handoff = handoffs.start_handoff(
                self.engine,
                self.queues,
                call_sid=call_sid[:64],
                call_taker_staff_id=state.staff_id,
                helper_type=helper_type,
                answers=state.answers,
                reason=self.reason_text(reason),
                callback_number=number,
                roster=self.roster,
                tree=self.tree,
                now=now,
                key=f"desk:{call_sid}:{state.round}",
            )
        except handoffs.HandoffError as exc:
            log.error("desk: handoff not started call=%s error=%s", call_sid, exc)
            return self.end_call(
                "The transfer could not be started, so no one was dialed. "
                "Please transfer the caller by phone. Goodbye."
            )
        if handoff.status is HandoffStatus.NOT_STARTED:
            why = REASON_TEXT.get(handoff.reason_code or "", "it could not start")
            next_state = replace(state, round=state.round + 1)
            return self.offer(
                next_state, 0, preface=f"That transfer could not start: {why}.", call_sid=call_sid
            )
        # The caller may hang up during the announcement, before their leg joins the conference
        # (no conference event then): once it is over, a worker asks Twilio about the call.
        self.queues.enqueue_in(
            CALLER_CHECK_SECONDS,
            handoffs.DIAL_QUEUE,
            "workers.handoffs.check_caller_on_line",
            handoff.id,
            job_id=f"handoff-{handoff.id}-caller-check-announced",
            retry_intervals=(2, 5, 15),
        )
        label = self.roster.label(helper_type)
        response = VoiceResponse()
        say(
            response,
            f"Calling {with_article(label)} now. Stay on the line with the caller; you will hear music until the helper accepts.",
            "en",
        )
        self._conference(
            response, live.id, live.conference_name, label=CALLER_LABEL, end_on_exit=True
        )
        say(response, "The conference has ended. Goodbye.", "en")
        return to_xml(response)

    def _conference(
        self, response: VoiceResponse, live_id: int, name: str, *, label: str, end_on_exit: bool
    ) -> None:
        dial = Dial(timeout=None)
        dial.conference(
            name,
            participant_label=label,
            start_conference_on_enter=True,
            end_conference_on_exit=end_on_exit,
            beep=False,
            wait_url=self.hold_music_url,
            wait_method="GET",
            status_callback=self.url(f"{HANDOFF}/conference-status", live=live_id),
            status_callback_method="POST",
            status_callback_event=CONFERENCE_EVENTS,
        )
        response.append(dial)

    def returned(self, call_sid: str, handoff_id: int, state: DeskState) -> str:
        """Nobody in the chain took the call: say who did what, and offer the helpers again."""
        handoff = handoffs.get_handoff(self.engine, handoff_id)
        cancelled = handoff is not None and handoff.status is HandoffStatus.CANCELLED
        lines = [
            "The transfer was cancelled from the console."
            if cancelled
            else "No helper took the call."
        ]
        if handoff is not None and not cancelled:
            for step in self.attempt_summary(handoff_id):
                lines.append(step)
        lines.append("The caller is still with you.")
        next_state = replace(state, round=state.round + 1)
        return self.offer(next_state, 0, preface=" ".join(lines), call_sid=call_sid)

    def attempt_summary(self, handoff_id: int) -> list[str]:
        """One sentence per helper tried: who, and what happened."""
        out: list[str] = []
        names: dict[int, str] = {}
        for e in handoffs.handoff_events(self.engine, handoff_id):
            if e.event is HandoffEvent.DIALING and e.attempt is not None and e.member_id:
                member = self.roster.member(e.member_id)
                names[e.attempt] = member.name if member else "A helper"
            elif e.event in handoffs.ATTEMPT_FAILURES and e.attempt in names:
                code = handoffs.ATTEMPT_FAILURES[e.event].value
                out.append(f"{names.pop(e.attempt)} {REASON_TEXT.get(code, code)}.")
            elif e.event is HandoffEvent.HELPER_LEFT and e.attempt in names:
                out.append(f"{names.pop(e.attempt)} {REASON_TEXT[ReasonCode.NO_ANSWER.value]}.")
        return out

    def end_call(self, text: str) -> str:
        """Say `text` and hang up."""
        response = VoiceResponse()
        say(response, text, "en")
        response.hangup()
        return to_xml(response)

    # ------------------------------------------------------------------ intake line

    def intake(self, call_sid: str, from_number: str, jurisdiction: str | None = None) -> str:
        """A caller to the intake number waits in a conference while a call-taker is dialed."""
        number = _usable(from_number)
        now = self.clock()
        live = handoffs.open_live_call(
            self.engine,
            call_sid=call_sid[:64],
            origin=Origin.INTAKE,
            callback_number=number,
            call_taker_staff_id=None,
            now=now,
            jurisdiction=jurisdiction,
        )
        if live.status is LiveCallStatus.WAITING:
            self.queues.enqueue(
                handoffs.DIAL_QUEUE,
                "workers.handoffs.dial_call_taker",
                live.id,
                1,
                job_id=f"live-{live.id}-call-taker-1",
                retry_intervals=(2, 5, 15),
            )
        response = VoiceResponse()
        say(
            response,
            "Thank you for calling. Please stay on the line; someone will be with you shortly. "
            "If this is a life-threatening emergency, hang up and dial 9 1 1.",
            "en",
        )
        self._conference(
            response, live.id, live.conference_name, label=CALLER_LABEL, end_on_exit=True
        )
        response.hangup()
        return to_xml(response)

    def intake_unanswered(self, operator: str | None) -> str:
        """No call-taker and no fallback line answered: the caller is told and sent to a person."""
        response = VoiceResponse()
        say(response, "We are sorry, no one could take your call here.", "en")
        if operator:
            say(response, "Connecting you to an operator.", "en")
            response.dial(timeout=30).number(operator)
        say(response, "If this is an emergency, hang up and dial 9 1 1.", "en")
        response.hangup()
        return to_xml(response)

    # ------------------------------------------------------------------ the helper's leg

    def whisper(self, handoff_id: int, attempt: int, tries: int = 0) -> str:
        """What the helper hears on answering: who, why, the risk answers; 1 accept, 2 decline."""
        handoff = handoffs.get_handoff(self.engine, handoff_id)
        if (
            handoff is None
            or handoff.attempt != attempt
            or handoff.status not in handoffs.PENDING
            or handoff.status is HandoffStatus.FALLING_BACK
        ):
            return self.end_call("Thank you. This call is no longer waiting for you. Goodbye.")
        response = VoiceResponse()
        g = gather(
            response,
            self.url(f"{HANDOFF}/whisper/answer", h=handoff_id, at=attempt, t=tries),
            "en",
            timeout=WHISPER_TIMEOUT_SECONDS,
            num_digits=1,
            speech=False,
        )
        say(g, self.whisper_text(handoff), "en")
        return to_xml(response)

    def whisper_text(self, handoff: handoffs.Handoff) -> str:
        """The summary a helper hears before accepting (never logged)."""
        label = self.roster.label(handoff.helper_type)
        risks = []
        for question in self.tree.questions:
            if question.id in handoff.answers:
                yes = handoff.answers[question.id]
                risks.append(f"{question.id.replace('_', ' ')}: {'yes' if yes else 'no'}")
        callback = (
            f"Callback number {spoken_phone(national_digits(handoff.callback_number))}."
            if handoff.callback_number
            else "No callback number was given."
        )
        taker = (
            f"call-taker {spoken_digits(handoff.call_taker_staff_id)}"
            if handoff.call_taker_staff_id
            else "a call-taker"
        )
        return " ".join(
            [
                f"Bridgeline warm handoff for {with_article(label)}, from {taker}.",
                f"Reason: {handoff.reason or 'not given'}.",
                f"Risk answers: {', '.join(risks) or 'none recorded'}.",
                callback,
                "To accept and join the caller, press 1. To decline, press 2.",
            ]
        )

    def whisper_answer(
        self, handoff_id: int, attempt: int, call_sid: str, digits: str | None, tries: int
    ) -> str:
        """1: accepted, join the conference; 2: declined; nothing: asked once more, then no response."""
        key = (digits or "").strip()[:1]
        now = self.clock()
        if key not in ("1", "2") and tries + 1 < 2:
            handoff = handoffs.get_handoff(self.engine, handoff_id)
            if (
                handoff is not None
                and handoff.status in handoffs.PENDING
                and handoff.attempt == attempt
            ):
                return self.whisper(handoff_id, attempt, tries + 1)
        event = {
            "1": HandoffEvent.ACCEPTED,
            "2": HandoffEvent.DECLINED,
        }.get(key, HandoffEvent.NO_RESPONSE)
        handoff = handoffs.get_handoff(self.engine, handoff_id)
        if handoff is None:
            return self.end_call("Thank you. Goodbye.")
        handoffs.apply_event(
            self.engine,
            self.queues,
            handoff_id,
            event,
            source=EventSource.STAFF,
            dedupe_key=f"h{handoff_id}:a{attempt}:{event.value}",
            occurred_at=now,
            now=now,
            attempt=attempt,
            member_id=handoff.member_id if handoff.attempt == attempt else None,
            call_sid=call_sid[:64] or None,
            reason=handoffs.ATTEMPT_FAILURES[event].value
            if event in handoffs.ATTEMPT_FAILURES
            else None,
        )
        if event is HandoffEvent.DECLINED:
            return self.end_call("Thank you. We will try someone else. Goodbye.")
        if event is HandoffEvent.NO_RESPONSE:
            return self.end_call("No answer was given. We will try someone else. Goodbye.")
        after = handoffs.get_handoff(self.engine, handoff_id)
        if (
            after is None
            or after.attempt != attempt
            or after.status
            not in (
                HandoffStatus.ACCEPTED,
                HandoffStatus.CONNECTED,
            )
        ):
            return self.end_call("Sorry, the caller is no longer waiting. Goodbye.")
        live = handoffs.get_live_call(self.engine, after.live_call_id)
        assert live is not None
        response = VoiceResponse()
        say(response, "Connecting you to the caller.", "en")
        self._conference(
            response,
            live.id,
            live.conference_name,
            label=helper_label(handoff_id, attempt),
            end_on_exit=False,
        )
        response.hangup()
        return to_xml(response)

    def announcement(self, kind: str) -> str:
        """Announced into the conference to the call-taker's leg."""
        text = {
            "connected": "The helper is connected. Call-taker, you may hang up now.",
            "returned": "No helper could take this call. The caller is still with you.",
        }.get(kind, "Please stay on the line.")
        response = VoiceResponse()
        say(response, text, "en")
        return to_xml(response)

    # ------------------------------------------------------------------ status callbacks

    def helper_status(
        self,
        handoff_id: int,
        attempt: int,
        form: Mapping[str, str],
        token: str | None,
        received_at: datetime | None = None,
    ) -> None:
        """The helper leg's call progress (initiated, ringing, answered, completed and its kind).

        Taken in through the call's inbox with its conference callbacks (`inbox_callback`), so
        it is applied after them: `received_at` is when the webhook took it in.
        """
        status = (form.get("CallStatus") or "").lower()
        event = HELPER_CALL_EVENTS.get(status)
        if event is None:
            return
        call_sid = (form.get("CallSid") or "")[:64]
        now = self.clock()
        seq = _int(form.get("SequenceNumber"))
        stamp = form.get("Timestamp") or ""
        handoffs.apply_event(
            self.engine,
            self.queues,
            handoff_id,
            event,
            source=EventSource.TWILIO,
            dedupe_key=f"{call_sid}:{status}:{seq if seq is not None else stamp}",
            token=token,
            occurred_at=handoffs.twilio_time(stamp, received_at or now),
            now=now,
            attempt=attempt,
            call_sid=call_sid or None,
            sequence=seq,
            reason=handoffs.ATTEMPT_FAILURES[event].value
            if event in handoffs.ATTEMPT_FAILURES
            else None,
        )

    def helper_call_of(self, handoff_id: int, live_call_id: int) -> int:
        """The live call whose inbox a helper call's status callback goes through: the one in
        the callback's URL, else (a call dialed before the URL carried it) the handoff's."""
        if live_call_id > 0:
            return live_call_id
        handoff = handoffs.get_handoff(self.engine, handoff_id) if handoff_id > 0 else None
        return handoff.live_call_id if handoff is not None else 0

    def inbox_callback(
        self,
        live_id: int,
        form: Mapping[str, str],
        token: str | None,
        received_at: datetime | None = None,
    ) -> None:
        """Apply one callback taken in by the call's inbox (ivr.conference_inbox), in the
        order it arrived: a helper call's status, or a conference's."""
        handoff_id, attempt = _int(form.get("Handoff")), _int(form.get("Attempt"))
        if handoff_id is not None and attempt is not None:
            self.helper_status(handoff_id, attempt, form, token, received_at)
        else:
            self.conference_event(live_id, form, token, received_at)

    def caller_call_status(self, call_sid: str, form: Mapping[str, str], token: str | None) -> None:
        """The status callback of a desk or intake leg itself (the number's "call status
        changes" URL): when that call is over, every handoff still under way records that the
        caller left, even if the leg never reached the conference (hung up mid-announcement)."""
        status = (form.get("CallStatus") or "").lower()
        if not call_sid or status not in handoffs.CALLER_CALL_OVER:
            return
        live = handoffs.live_call_by_sid(self.engine, call_sid[:64])
        if live is None:
            return
        now = self.clock()
        touched = handoffs.record_caller_left(
            self.engine,
            self.queues,
            live,
            at=handoffs.twilio_time(form.get("Timestamp"), now),
            now=now,
            dedupe_key=f"{call_sid[:64]}:call-ended",
            token=token,
        )
        if touched:
            log.info("caller's call ended live_call_id=%s handoffs=%s", live.id, touched)

    def call_taker_status(
        self, live_id: int, attempt: int, form: Mapping[str, str], token: str | None
    ) -> None:
        """An intake call-taker leg that did not answer: dial the next one (or the fallback line)."""
        status = (form.get("CallStatus") or "").lower()
        if status not in ("busy", "no-answer", "failed", "canceled"):
            return
        live = handoffs.get_live_call(self.engine, live_id)
        if live is None or live.status is not LiveCallStatus.WAITING:
            return
        if live.call_taker_attempt != attempt:
            return  # a late or repeated callback about an earlier attempt
        log.info("intake: call-taker attempt %s %s live_call_id=%s", attempt, status, live_id)
        self.queues.enqueue(
            handoffs.DIAL_QUEUE,
            "workers.handoffs.dial_call_taker",
            live_id,
            attempt + 1,
            job_id=f"live-{live_id}-call-taker-{attempt + 1}",
            retry_intervals=(2, 5, 15),
        )

    def _call_taker_again(self, live: handoffs.LiveCall) -> None:
        """The call-taker left before any helper had the caller: the next one is dialed in."""
        handoffs.update_live_call(
            self.engine,
            live.id,
            self.clock(),
            status=LiveCallStatus.WAITING.value,
            call_taker_call_sid=None,
        )
        attempt = live.call_taker_attempt + 1
        log.warning("intake: call-taker left an unhelped caller live_call_id=%s", live.id)
        self.queues.enqueue(
            handoffs.DIAL_QUEUE,
            "workers.handoffs.dial_call_taker",
            live.id,
            attempt,
            job_id=f"live-{live.id}-call-taker-{attempt}",
            retry_intervals=(2, 5, 15),
        )

    def conference_event(
        self,
        live_id: int,
        form: Mapping[str, str],
        token: str | None,
        received_at: datetime | None = None,
    ) -> None:
        """Conference start/end and participant join/leave, applied to the call's handoffs.

        `received_at`: when the webhook took the callback in (ivr.flows.conference_inbox), if earlier.
        """
        kind = (form.get("StatusCallbackEvent") or "").lower()
        live = handoffs.get_live_call_only(self.engine, live_id)
        if live is None:
            return
        name = form.get("FriendlyName")
        if name and name != live.conference_name:
            return  # an earlier conference of a desk call that has moved on to a new round
        now = self.clock()  # what the records' updated_at say (the rollups and sweeps read it)
        received = received_at or now
        conference_sid = (form.get("ConferenceSid") or "")[:64]
        if conference_sid and live.conference_sid != conference_sid:
            handoffs.update_live_call(self.engine, live_id, now, conference_sid=conference_sid)
        label = (form.get("ParticipantLabel") or "")[:64]
        call_sid = (form.get("CallSid") or "")[:64]
        seq = _int(form.get("SequenceNumber"))
        stamp = form.get("Timestamp") or ""
        at = handoffs.twilio_time(stamp, received)
        key = f"{conference_sid}:{call_sid}:{kind}:{seq if seq is not None else stamp}"
        common = {
            "source": EventSource.TWILIO,
            "token": token,
            "occurred_at": at,
            "now": now,
            "call_sid": call_sid or None,
            "sequence": seq,
        }
        target = parse_helper_label(label)
        if target is not None and kind in ("participant-join", "participant-leave"):
            handoff_id, attempt = target
            event = (
                HandoffEvent.HELPER_JOINED
                if kind == "participant-join"
                else HandoffEvent.HELPER_LEFT
            )
            recorded = handoffs.apply_event(
                self.engine,
                self.queues,
                handoff_id,
                event,
                dedupe_key=key,
                attempt=attempt,
                **common,
            )
            if event is HandoffEvent.HELPER_LEFT and recorded is not None and recorded.new:
                # Never leave the caller alone on hold music once their helper hung up.
                self.queues.enqueue(
                    "urgent",
                    "workers.handoffs.end_if_caller_alone",
                    live_id,
                    job_id=f"alone-{live_id}-{(call_sid or 'x')[:40]}",
                )
            return
        if label == CALL_TAKER_LABEL:
            if kind == "participant-join":
                handoffs.update_live_call(
                    self.engine,
                    live_id,
                    now,
                    status=LiveCallStatus.WITH_CALL_TAKER.value,
                    call_taker_call_sid=call_sid or None,
                )
            elif kind == "participant-leave":
                active = handoffs.active_handoffs(self.engine, live_id)
                for h in active:
                    handoffs.apply_event(
                        self.engine,
                        self.queues,
                        h.id,
                        HandoffEvent.CALL_TAKER_LEFT,
                        dedupe_key=f"{key}:h{h.id}",
                        **{**common, "token": _per_handoff(token, h.id)},
                    )
                helped = any(
                    h.status in (HandoffStatus.ACCEPTED, HandoffStatus.CONNECTED)
                    for h in handoffs.active_handoffs(self.engine, live_id)
                )
                if (
                    not helped
                    and live.status is LiveCallStatus.WITH_CALL_TAKER
                    and (not call_sid or call_sid == live.call_taker_call_sid)
                ):
                    self._call_taker_again(live)
            return
        if (label == CALLER_LABEL and kind == "participant-leave") or kind == "conference-end":
            event = (
                HandoffEvent.CALLER_LEFT
                if kind == "participant-leave"
                else HandoffEvent.CONFERENCE_ENDED
            )
            for h in handoffs.active_handoffs(self.engine, live_id):
                handoffs.apply_event(
                    self.engine,
                    self.queues,
                    h.id,
                    event,
                    dedupe_key=f"{key}:h{h.id}",
                    **{**common, "token": _per_handoff(token, h.id)},
                )
            if kind == "conference-end" or live.origin is Origin.DESK or label == CALLER_LABEL:
                handoffs.end_live_call(self.engine, live_id, at)


HELPER_CALL_EVENTS = {
    "ringing": HandoffEvent.RINGING,
    "in-progress": HandoffEvent.ANSWERED,
    "answered": HandoffEvent.ANSWERED,
    "completed": HandoffEvent.HELPER_LEFT,
    "busy": HandoffEvent.BUSY,
    "no-answer": HandoffEvent.NO_ANSWER,
    "failed": HandoffEvent.FAILED,
    "canceled": HandoffEvent.CANCELED,
}
"""Twilio CallStatus of the helper's leg -> handoff event."""


def _per_handoff(token: str | None, handoff_id: int) -> str | None:
    """Twilio's idempotency token of a callback that applies to several handoffs, made one per
    handoff (the token is unique in the handoff log: a shared one would keep only the first)."""
    return f"{token[:110]}:h{handoff_id}" if token else None


def helper_label(handoff_id: int, attempt: int) -> str:
    """Conference participant label of a helper: which handoff and which attempt."""
    return f"helper-{handoff_id}-{attempt}"


def parse_helper_label(label: str) -> tuple[int, int] | None:
    """Inverse of helper_label (None for any other label)."""
    parts = label.split("-")
    if len(parts) == 3 and parts[0] == "helper" and parts[1].isdigit() and parts[2].isdigit():
        return int(parts[1]), int(parts[2])
    return None


def _int(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() and len(raw) < 10 else None


def _usable(raw: str) -> str | None:
    if not raw or not raw.startswith("+"):
        return None
    try:
        return callback_number(raw)
    except PhoneNumberError:
        return None
