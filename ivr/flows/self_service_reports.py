"""Reporting a problem by phone: the category, the recording, the address read back and
confirmed, consent to a text, and the transcription screened when it arrives.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

import sqlalchemy as sa

from ivr.decisions.menus import (
    first_key,
    yes_no,
)
from ivr.decisions.phrases import phrase
from ivr.decisions.understanding import spoken_choice
from ivr.flows.self_service_core import (
    EMERGENCY_KEY,
    Turn,
    _is_reference,
    _prefixed,
    _usable_number,
    is_skip,
    spoken_address,
)
from ivr.flows.self_service_menus import SelfServiceMenus
from ivr.language.text import Utterance
from ivr.store import callbacks, qa_tags, service_requests
from ivr.store.callback_records import CallbackSource

log = logging.getLogger(__name__)


class SelfServiceReports(SelfServiceMenus):
    """A 311 report from category to recording, address and text consent."""

    def report_category(self, turn: Turn) -> str:
        screened = self._screen(turn)
        if screened is not None:
            return screened
        heard = Utterance.read(turn.speech)
        key = first_key(turn.digits) or spoken_choice(heard)
        code = None if key is not None else self.understanding.category(heard)
        category = next(
            (c for c in self.menus.report_categories if c.key == key or c.code == code), None
        )
        if category is not None:
            return self.report_record_prompt(replace(turn, attempt=0), category.code)
        if key == EMERGENCY_KEY and not any(
            c.key == EMERGENCY_KEY for c in self.menus.report_categories
        ):
            return self.emergency(turn)
        preface = (
            phrase("not_an_option", turn.lang, key=self._key_name(key, turn.lang))
            if key
            else phrase("no_input", turn.lang)
            if not turn.has_input
            else phrase("not_understood", turn.lang)
        )
        return self._retry(turn, lambda t: self.report_category_prompt(t, preface))

    def report_no_audio(self, turn: Turn, category: str) -> str:
        return self._retry(
            turn,
            lambda t: _prefixed(
                self.report_record_prompt(t, category), phrase("report_no_audio", t.lang), t.lang
            ),
        )

    def report_recorded(
        self,
        turn: Turn,
        category: str,
        recording_sid: str | None,
        recording_url: str | None,
        duration: str | None,
    ) -> str:
        """The Record action: save the service request, then read its reference back."""
        if not self._known_category(category):
            return self.report_category_prompt(replace(turn, attempt=0))
        if not recording_sid or (duration is not None and duration.strip() in ("0", "")):
            return self.report_no_audio(turn, category)
        caller = _usable_number(turn.from_number)
        try:
            request = service_requests.file_request(
                self.engine,
                idempotency_key=f"{turn.call_sid}:{recording_sid}"[:128],
                call_sid=turn.call_sid[:64],
                category=category,
                language=turn.lang,
                caller_number=caller,
                recording_sid=recording_sid[:64],
                recording_url=(recording_url or "")[:512] or None,
                reference_digits=self.settings.reference_digits,
                jurisdiction=self.report_jurisdiction,
            )
        except sa.exc.SQLAlchemyError as exc:
            log.error("report not saved: call=%s error=%s", turn.call_sid, type(exc).__name__)
            return self.to_person(turn, preface=phrase("report_not_saved", turn.lang))
        self._note(turn, "report_filed", category)
        return self.address_prompt(replace(turn, attempt=0), request.reference)

    def address_heard(self, turn: Turn, reference: str) -> str:
        """Store what the caller said as the report's address, then read it back."""
        screened = self._screen(turn, address=True)
        if screened is not None:
            return screened
        if not _is_reference(reference):
            return self.after(turn)
        key = first_key(turn.digits)
        if key == EMERGENCY_KEY:
            return self.emergency(turn)
        spoken = spoken_address(turn.speech)
        if key == "1" or (spoken is not None and is_skip(spoken)):
            self._note(turn, "report_address_skipped", None)
            return self.report_readback(replace(turn, attempt=0), reference)
        if spoken is None:
            preface = (
                phrase("not_an_option", turn.lang, key=self._key_name(key, turn.lang))
                if key
                else phrase("report_where_not_heard", turn.lang)
            )
            return self._retry_address(turn, reference, preface)
        try:
            service_requests.set_address(self.engine, reference, turn.call_sid[:64], spoken)
        except sa.exc.SQLAlchemyError as exc:
            log.error("address not saved: call=%s error=%s", turn.call_sid, type(exc).__name__)
            return self.report_readback(replace(turn, attempt=0), reference)
        # The same count of tries covers hearing and confirming, so "no" cannot loop forever.
        return self.address_readback(turn, reference, spoken)

    def _retry_address(self, turn: Turn, reference: str, preface: str) -> str:
        """Ask again; after the last try, go on without an address (the report is saved)."""
        if turn.attempt + 1 >= self.settings.max_attempts:
            self._note(turn, "report_address_missing", None)
            return self.report_readback(
                replace(turn, attempt=0),
                reference,
                preface=phrase("report_where_missing", turn.lang),
            )
        return self.address_prompt(replace(turn, attempt=turn.attempt + 1), reference, preface)

    def address_confirm(self, turn: Turn, reference: str) -> str:
        """1/yes keeps the address; 2/no asks for it again (the wrong one is cleared)."""
        screened = self._screen(turn)
        if screened is not None:
            return screened
        if not _is_reference(reference):
            return self.after(turn)
        if first_key(turn.digits) == EMERGENCY_KEY:
            return self.emergency(turn)
        answer = yes_no(turn.digits, turn.speech)
        if answer is True:
            self._note(turn, "report_address_confirmed", None)
            return self.report_readback(replace(turn, attempt=0), reference)
        if answer is False:
            try:
                service_requests.set_address(self.engine, reference, turn.call_sid[:64], None)
            except sa.exc.SQLAlchemyError as exc:
                log.error(
                    "address not cleared: call=%s error=%s", turn.call_sid, type(exc).__name__
                )
            return self._retry_address(turn, reference, "")
        try:
            found = service_requests.find_by_reference(self.engine, reference)
        except sa.exc.SQLAlchemyError:
            found = None
        if found is None or not found.address or turn.attempt + 1 >= self.settings.max_attempts:
            # Heard it and did not object (or it cannot be read now): keep it and go on.
            return self.report_readback(replace(turn, attempt=0), reference)
        preface = (
            phrase("no_input", turn.lang)
            if not turn.has_input
            else phrase("not_understood", turn.lang)
        )
        return self.address_readback(
            replace(turn, attempt=turn.attempt + 1), reference, found.address, preface
        )

    def report_after(self, turn: Turn, reference: str) -> str:
        screened = self._screen(turn)
        if screened is not None:
            return screened
        key = first_key(turn.digits)
        if key == "1" and _is_reference(reference):
            return self.report_readback(turn, reference)
        if key == "2" and _is_reference(reference):
            return self.report_text_consent(turn, reference)
        return self.after(turn)

    def report_text_consent(self, turn: Turn, reference: str) -> str:
        """The resident asked for a text when the status changes: record the consent first."""
        if _usable_number(turn.from_number) is None:
            return self._with_choices(turn, phrase("sms_no_number", turn.lang))
        try:
            saved = service_requests.set_text_consent(
                self.engine, reference, turn.call_sid[:64], True
            )
        except sa.exc.SQLAlchemyError as exc:
            log.error("text consent not saved: call=%s error=%s", turn.call_sid, type(exc).__name__)
            saved = False
        if not saved:
            return self._with_choices(turn, phrase("sms_failed", turn.lang))
        self._note(turn, "report_text_consent", None)
        return self._with_choices(turn, phrase("report_text_saved", turn.lang))

    def report_transcribed(
        self,
        turn: Turn,
        recording_sid: str | None,
        text: str | None,
        status: str | None,
    ) -> None:
        """Twilio's transcribeCallback: store the text with the report and screen it.

        Crisis words flag the report for urgent review and record an urgent callback (an
        emergency-purpose call). Nothing of the text reaches a log line.
        """
        if not recording_sid:
            return
        state = (status or "unknown")[:16]
        words = (text or "")[:4000] if state == "completed" else None
        finding = self.understanding.crisis.screen(words, prefer_lang=turn.lang) if words else None
        tags = self.understanding.tagger.tags(words) if words else []
        saved = service_requests.store_screened_transcript(
            self.engine,
            recording_sid=recording_sid[:64],
            text=words,
            status=state,
            tags=tags,
            urgent=finding is not None,
        )
        call_sid = (saved.call_sid if saved else None) or turn.call_sid
        lang = saved.language if saved else turn.lang
        owner = replace(turn, call_sid=call_sid, lang=lang)
        if tags and call_sid:
            qa_tags.add_tags(self.engine, "call", call_sid[:64], tags, source="transcript")
        if finding is None:
            return
        self._note(owner, "report_urgent", finding.line)
        number = (saved.caller_number if saved else None) or _usable_number(turn.from_number)
        if number is None:
            log.warning("urgent report without a number to call back: call=%s", call_sid)
            return
        now = datetime.now(UTC)
        due_at, deadline_at = self.callback_times(CallbackSource.URGENT_REPORT.value, now)
        callbacks.create_callback(
            self.engine,
            key=f"urgent-report:{recording_sid}"[:128],
            source=CallbackSource.URGENT_REPORT,
            phone_number=number,
            language=lang,
            helper_type="",
            due_at=due_at,
            deadline_at=deadline_at,
            consent=False,
            note="Crisis words in a recorded report: call back now.",
            now=now,
        )

    def recording_status(
        self, recording_sid: str | None, url: str | None, duration: str | None, status: str | None
    ) -> None:
        """Twilio's recordingStatusCallback: keep the final recording reference on the request."""
        if not recording_sid:
            return
        seconds = int(duration) if duration and duration.isdigit() and len(duration) < 7 else None
        service_requests.attach_recording(
            self.engine,
            recording_sid=recording_sid[:64],
            url=(url or "")[:512] or None,
            duration=seconds,
            status=(status or "unknown")[:32],
        )
