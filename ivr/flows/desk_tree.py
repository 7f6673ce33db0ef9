"""The desk after sign-in: the decision tree question by question, the offer of eligible helper
types with who is on duty, the reason and callback number, and starting the handoff."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import sqlalchemy as sa
from twilio.twiml.voice_response import Dial, VoiceResponse

from ivr.config.decision_tree import DecisionTree
from ivr.config.roster import Roster
from ivr.decisions.handoffs import (
    CALLER_LABEL,
    HandoffEvent,
    HandoffStatus,
    Origin,
)
from ivr.decisions.phrases import sentence
from ivr.decisions.routing import Eligibility, ReasonCode, eligibility, next_question, offers
from ivr.flows import handoffs
from ivr.flows.desk_state import (
    CALLER_CHECK_SECONDS,
    CONFERENCE_EVENTS,
    DESK,
    HANDOFF,
    MAX_TRIES,
    QUESTION_CACHE_SIZE,
    REASON_TEXT,
    DeskState,
    spoken_time,
    with_article,
)
from ivr.phones import PhoneNumberError, callback_number
from ivr.queueing import Queues
from ivr.twiml import Urls, gather, say, to_xml
from workers import jobs

log = logging.getLogger(__name__)


class DeskTree:
    """The desk's decision tree, offer and handoff start (and what every desk part holds)."""

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
        """What the call is about, by keypad (decision_tree.yaml handoff_reasons); 0 ends
        without a transfer, as at the offer."""
        response = VoiceResponse()
        action = self.url(f"{DESK}/reason", h=helper_type, t=attempt, **state.params(self.tree))
        g = gather(response, action, "en", timeout=10, num_digits=1, speech=False)
        if preface:
            say(g, preface, "en")
        options = [f"For {text}, press {n}." for n, text in enumerate(self.tree.handoff_reasons, 1)]
        say(
            g,
            " ".join(["What is the call about?", *options, "To end without a transfer, press 0."]),
            "en",
        )
        # Twilio calls the action on silence too (action_on_empty_result); should it not, the
        # same step is asked again rather than the call left without TwiML.
        response.redirect(action, method="POST")
        return to_xml(response)

    def reason_chosen(
        self, state: DeskState, helper_type: str, digits: str | None, attempt: int
    ) -> str:
        """The reason's key, then the callback number. 0 ends without a transfer; a wrong key or
        none is asked again, and after the last try the transfer goes on with no reason given
        (the caller still reaches a helper)."""
        key = (digits or "").strip()[:1]
        reasons = self.tree.handoff_reasons
        if key == "0":
            return self.end_call("No transfer was made. Goodbye.")
        if key.isdigit() and 1 <= int(key) <= len(reasons):
            return self.callback_prompt(state, helper_type, 0, reason=int(key))
        missed = "No key was pressed." if not key else "That is not one of the choices."
        if attempt + 1 < MAX_TRIES:
            return self.reason_prompt(state, helper_type, attempt + 1, preface=missed)
        return self.callback_prompt(
            state,
            helper_type,
            0,
            preface=f"{missed} The transfer goes on with no reason given.",
        )

    def reason_text(self, index: int | None) -> str | None:
        """The words of reason `index` (1-based); none when the call-taker gave none, or the
        desk's "transfer desk" when the program lists no reasons (the desk did not ask)."""
        reasons = self.tree.handoff_reasons
        if index is not None and 1 <= index <= len(reasons):
            return reasons[index - 1]
        return None if reasons else "transfer desk"

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
            jobs.CHECK_CALLER_ON_LINE,
            handoff.id,
            job_id=f"handoff-{handoff.id}-caller-check-announced",
            retry_intervals=jobs.CALL_STEP_RETRY,
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
