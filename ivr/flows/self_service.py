"""The self-service non-emergency line: every step a caller can reach, as plain methods.

Each method takes what the caller did (a Turn) and returns the TwiML to answer with. State
between steps travels in the callback URLs (language, attempt, menu), which Twilio signs, so
a call keeps working when Redis restarts; durable things (reports, callbacks, texts) are
written to SQL before the caller hears they are done.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

import sqlalchemy as sa

from ivr.decisions.menus import (
    digits_from,
    first_key,
    yes_no,
)
from ivr.decisions.phrases import phrase, spoken_deadline, spoken_digits
from ivr.flows.self_service_core import ADDRESS_HINTS as ADDRESS_HINTS
from ivr.flows.self_service_core import (
    BACK_TO_MAIN_KEY,
    EMERGENCY_KEY,
    MAIN_MENU,
    Turn,
    _prefixed,
    _source,
    _usable_number,
    status_sentence,
)
from ivr.flows.self_service_core import MAX_ATTEMPT_PARAM as MAX_ATTEMPT_PARAM
from ivr.flows.self_service_core import ROOT as ROOT
from ivr.flows.self_service_core import SKIP_WORDS as SKIP_WORDS
from ivr.flows.self_service_core import _is_reference as _is_reference
from ivr.flows.self_service_core import _unique_suffix as _unique_suffix
from ivr.flows.self_service_core import is_skip as is_skip
from ivr.flows.self_service_core import spoken_address as spoken_address
from ivr.flows.self_service_reports import SelfServiceReports
from ivr.phones import NumberProblem, PhoneNumberError, callback_number
from ivr.store import callbacks, outbox, service_requests
from workers import jobs

log = logging.getLogger(__name__)


class SelfServiceLine(SelfServiceReports):
    """Builds the answer to each step of a self-service call."""

    def status_check(self, turn: Turn) -> str:
        screened = self._screen(turn)
        if screened is not None:
            return screened
        count = self.settings.reference_digits
        digits = digits_from(turn.digits, turn.speech, limit=count)
        if len(digits) != count:
            preface = (
                phrase("status_bad_format", turn.lang, count=count)
                if turn.has_input
                else phrase("no_input", turn.lang)
            )
            return self._retry(turn, lambda t: self.status_prompt(t, preface))
        try:
            request = service_requests.find_by_reference(self.engine, digits)
        except sa.exc.SQLAlchemyError as exc:
            log.error("status lookup failed: call=%s error=%s", turn.call_sid, type(exc).__name__)
            return self.to_person(turn, preface=phrase("status_unavailable", turn.lang))
        if request is None:
            preface = phrase("status_unknown", turn.lang, digits=spoken_digits(digits))
            return self._retry(turn, lambda t: self.status_prompt(t, preface))
        category = next(
            (
                c.label.get(turn.lang)
                for c in self.menus.report_categories
                if c.code == request.category
            ),
            request.category,
        )
        text = status_sentence(request, category, turn.lang, datetime.now(UTC), self.zone)
        self._note(turn, "status_checked", None)
        return self._with_choices(turn, text)

    def info_choice(self, turn: Turn, topic_id: str) -> str:
        screened = self._screen(turn)
        if screened is not None:
            return screened
        topic = self.menus.info_topics.get(topic_id)
        if topic is None:
            return self.menu(replace(turn, attempt=0), MAIN_MENU)
        key = first_key(turn.digits)
        if key is None and turn.speech:
            answer = yes_no(None, turn.speech)
            key = "1" if answer else None
        if key == "1":
            return self._send_info_sms(turn, topic_id, topic.sms.get(turn.lang))
        if key == "2" or key == "*":
            return self.info(replace(turn, attempt=0), topic_id)
        if key == BACK_TO_MAIN_KEY:
            return self.menu(replace(turn, attempt=0), MAIN_MENU)
        if key == EMERGENCY_KEY:
            return self.emergency(turn)
        if key is None and not turn.has_input:
            # Heard the information and said nothing: that is a normal end of the call.
            return self.goodbye(turn)
        preface = (
            phrase("not_an_option", turn.lang, key=self._key_name(key, turn.lang))
            if key
            else phrase("not_understood", turn.lang)
        )
        return self._retry(turn, lambda t: self.info(t, topic_id, preface))

    def _send_info_sms(self, turn: Turn, topic_id: str, body: str) -> str:
        number = _usable_number(turn.from_number)
        if number is None:
            return self._with_choices(turn, phrase("sms_no_number", turn.lang))
        try:
            sms_id = outbox.queue_sms(
                self.engine,
                key=f"info:{turn.call_sid}:{topic_id}"[:128],
                to_number=number,
                from_number=self.config.numbers["sms_from"],
                body=body,
            )
        except sa.exc.SQLAlchemyError as exc:
            log.error("text not recorded: call=%s error=%s", turn.call_sid, type(exc).__name__)
            return self._with_choices(turn, phrase("sms_failed", turn.lang))
        # Recorded: if Redis is down now, the sweep sends it when Redis is back.
        self.queues.enqueue("sms", jobs.SEND_SMS, sms_id, job_id=f"sms-{sms_id}")
        self._note(turn, "info_sms", topic_id)
        return self._with_choices(turn, phrase("sms_queued", turn.lang))

    def callback_caller_id(self, turn: Turn, src: str) -> str:
        """1: use the number they are calling from; 2: key in another."""
        screened = self._screen(turn)
        if screened is not None:
            return screened
        answer = yes_no(turn.digits, turn.speech)
        if first_key(turn.digits) == EMERGENCY_KEY:
            return self.emergency(turn)
        if answer is True:
            number = _usable_number(turn.from_number)
            if number is not None:
                return self._save_draft(turn, number, src, readback=False)
        if answer is False:
            return self.callback_enter_prompt(replace(turn, attempt=0), src)
        preface = (
            phrase("no_input", turn.lang)
            if not turn.has_input
            else phrase("not_understood", turn.lang)
        )
        return self._retry(turn, lambda t: self.callback_start(t, preface, _source(src)))

    def callback_entered(self, turn: Turn, src: str) -> str:
        """The number the caller keyed in: checked, then read back for confirmation."""
        screened = self._screen(turn)
        if screened is not None:
            return screened
        digits = digits_from(turn.digits, turn.speech, limit=11)
        if not digits:
            return self._retry(
                turn, lambda t: self.callback_enter_prompt(t, src, phrase("no_input", t.lang))
            )
        try:
            if len(digits) not in (10, 11):
                raise PhoneNumberError(NumberProblem.INVALID)
            number = callback_number(digits if len(digits) == 10 else "+" + digits)
        except PhoneNumberError as exc:
            reason = phrase(f"callback_{exc.problem.value}", turn.lang)
            self._note(turn, "callback_number_refused", exc.problem.value, unique=False)
            return self._retry(turn, lambda t: self.callback_enter_prompt(t, src, reason), reason)
        return self._save_draft(turn, number, src, readback=True)

    def _save_draft(self, turn: Turn, number: str, src: str, readback: bool) -> str:
        try:
            callbacks.save_draft(
                self.engine,
                key=callbacks.menu_key(turn.call_sid)[:128],
                call_sid=turn.call_sid[:64],
                number=number,
                language=turn.lang,
                source=_source(src),
            )
        except sa.exc.SQLAlchemyError as exc:
            log.error(
                "callback draft not saved: call=%s error=%s", turn.call_sid, type(exc).__name__
            )
            return self.to_person(turn, preface=phrase("callback_not_saved", turn.lang))
        if readback:
            return self.callback_readback(replace(turn, attempt=0), number, src)
        return self.callback_consent_prompt(replace(turn, attempt=0), src)

    def callback_confirm(self, turn: Turn, src: str) -> str:
        screened = self._screen(turn)
        if screened is not None:
            return screened
        if first_key(turn.digits) == EMERGENCY_KEY:
            return self.emergency(turn)
        answer = yes_no(turn.digits, turn.speech)
        if answer is True:
            return self.callback_consent_prompt(replace(turn, attempt=0), src)
        if answer is False:
            return self.callback_enter_prompt(replace(turn, attempt=0), src)
        draft = self._draft_number(turn)
        if draft is None:
            return self.callback_enter_prompt(replace(turn, attempt=0), src)
        return self._retry(
            turn,
            lambda t: _prefixed(
                self.callback_readback(t, draft, src), phrase("not_understood", t.lang), t.lang
            ),
        )

    def _draft_number(self, turn: Turn) -> str | None:
        try:
            found = callbacks.find_by_key(self.engine, callbacks.menu_key(turn.call_sid)[:128])
        except sa.exc.SQLAlchemyError:
            return None
        return found.phone_number if found else None

    def callback_consent(self, turn: Turn, src: str) -> str:
        """Consent given: the callback becomes an open request, saved before we say so."""
        screened = self._screen(turn)
        if screened is not None:
            return screened
        if first_key(turn.digits) == EMERGENCY_KEY:
            return self.emergency(turn)
        answer = yes_no(turn.digits, turn.speech)
        if answer is None:
            preface = (
                phrase("no_input", turn.lang)
                if not turn.has_input
                else phrase("not_understood", turn.lang)
            )
            return self._retry(turn, lambda t: self.callback_consent_prompt(t, src, preface))
        if answer is False:
            self._note(turn, "callback_declined", None)
            return self.to_person(turn, preface=phrase("callback_declined", turn.lang))
        now = datetime.now(UTC)
        due_at, deadline_at = self.callback_times(_source(src).value, now)
        try:
            saved = callbacks.confirm(
                self.engine,
                key=callbacks.menu_key(turn.call_sid)[:128],
                due_at=due_at,
                deadline_at=deadline_at,
            )
        except sa.exc.SQLAlchemyError as exc:
            log.error("callback not saved: call=%s error=%s", turn.call_sid, type(exc).__name__)
            saved = None
        if saved is None or saved.status is callbacks.CallbackStatus.DRAFT:
            return self.to_person(turn, preface=phrase("callback_not_saved", turn.lang))
        self._note(turn, "callback_requested", src)
        when = spoken_deadline(deadline_at, now, self.zone, turn.lang)
        text = phrase("callback_saved", turn.lang, when=when)
        return self._with_choices(turn, text)
