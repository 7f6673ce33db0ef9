"""The self-service non-emergency line: every step a caller can reach, as plain methods.

Each method takes what the caller did (a Turn) and returns the TwiML to answer with. State
between steps travels in the callback URLs (language, attempt, menu), which Twilio signs, so
a call keeps working when Redis restarts; durable things (reports, callbacks, texts) are
written to SQL before the caller hears they are done.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from twilio.twiml.voice_response import VoiceResponse

from ivr.config import BridgelineConfig
from ivr.config.models import (
    AgentItem,
    CallbackItem,
    CrisisRule,
    EmergencyItem,
    InfoItem,
    Menu,
    MenuItem,
    ReportItem,
    ReportStatusItem,
    SubmenuItem,
    TransferItem,
)
from ivr.decisions.menus import (
    Chosen,
    CrisisMatcher,
    Invalid,
    NoInput,
    Repeat,
    choose,
    digits_from,
    first_key,
    normalise,
    yes_no,
)
from ivr.decisions.phrases import phrase, spoken_deadline, spoken_digits, spoken_phone, spoken_when
from ivr.phones import NumberProblem, PhoneNumberError, callback_number, national_digits
from ivr.queueing import Queues
from ivr.store import callbacks, events, outbox, service_requests
from ivr.store.callbacks import CallbackSource
from ivr.twiml import Urls, dial_number, enqueue, gather, say, to_xml

log = logging.getLogger(__name__)

ROOT = "/voice/self-service"
"""Path of the entry point; every step lives below it."""

MAIN_MENU = "main"
BACK_TO_MAIN_KEY = "8"
EMERGENCY_KEY = "9"
MAX_ATTEMPT_PARAM = 20
"""Larger attempt values in a URL are clamped (they can only come from a forged URL)."""


@dataclass(frozen=True)
class Turn:
    """What Twilio told us about one step of a call."""

    call_sid: str
    from_number: str
    lang: str = "en"
    attempt: int = 0
    digits: str | None = None
    speech: str | None = None

    @property
    def has_input(self) -> bool:
        return bool((self.digits or "").strip() or (self.speech or "").strip())


class SelfServiceLine:
    """Builds the answer to each step of a self-service call."""

    def __init__(
        self, config: BridgelineConfig, base_url: str, engine: sa.Engine, queues: Queues
    ) -> None:
        self.config = config
        self.menus = config.menus
        self.settings = config.menus.settings
        self.url = Urls(base_url)
        self.engine = engine
        self.queues = queues
        self.crisis = CrisisMatcher(config.menus.crisis)
        self.zone = ZoneInfo(config.lines.timezone)
        # (due, deadline) of a callback from a source; callbacks.yaml's rules once they are
        # loaded (create_app), until then menus.yaml's callback_deadline_hours.
        self.callback_times: Callable[[str, datetime], tuple[datetime, datetime]] = (
            lambda _source, now: (
                now,
                now + timedelta(hours=self.settings.callback_deadline_hours),
            )
        )
        self._cache: dict[tuple[str, ...], str] = {}
        # The jurisdiction the line's reports belong to (program.yaml; set by create_app).
        self.report_jurisdiction: str | None = None

    # ----------------------------------------------------------------- entry and language

    def greeting(self) -> str:
        """Greeting and language choice (the Voice URL of the number)."""
        key = ("greeting",)
        if key not in self._cache:
            response = VoiceResponse()
            g = gather(
                response,
                self.url(f"{ROOT}/language"),
                "en",
                timeout=self.settings.gather_timeout_seconds,
                num_digits=1,
                hints=("English", "Español", "Spanish"),
            )
            for lang in ("en", "es"):  # 911 comes first, before any choice, in each language
                say(g, self.menus.greeting.get(lang), lang)
                say(g, phrase("greeting_emergency", lang), lang)
                say(g, phrase("choose_language", lang), lang)
            self._cache[key] = to_xml(response)
        return self._cache[key]

    def choose_language(self, turn: Turn) -> str:
        """1 or 'English' -> English, 2 or 'español' -> Spanish; silence or anything else -> English."""
        rule = self.crisis.match(turn.speech)
        if rule is not None:
            return self.crisis_transfer(replace(turn, lang="en"), rule)
        key = first_key(turn.digits)
        words = (turn.speech or "").lower()
        lang = "es" if key == "2" or "espa" in words or "spanish" in words else "en"
        self._note(turn, "language", lang)
        return self.menu(replace(turn, lang=lang, attempt=0), MAIN_MENU)

    # ----------------------------------------------------------------- menus

    def menu(self, turn: Turn, menu_id: str, preface: str | None = None) -> str:
        """The prompt of a menu: intro, one line per item, the repeat hint."""
        menu = self.config.menu(menu_id)
        if menu is None:
            menu_id, menu = MAIN_MENU, self.menus.menus[MAIN_MENU]
        key = ("menu", menu_id, turn.lang, str(turn.attempt), preface or "")
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        response = VoiceResponse()
        g = gather(
            response,
            self.url(f"{ROOT}/menu/{menu_id}/choose", lang=turn.lang, attempt=turn.attempt),
            turn.lang,
            timeout=self.settings.gather_timeout_seconds,
            num_digits=1,
            hints=[w for item in menu.items for w in getattr(item.keywords, turn.lang)],
        )
        if preface:
            say(g, preface, turn.lang)
        say(g, self._menu_text(menu, turn.lang), turn.lang)
        xml = to_xml(response)
        if len(self._cache) < 2048:
            self._cache[key] = xml
        return xml

    def _menu_text(self, menu: Menu, lang: str) -> str:
        lines = [menu.intro.get(lang)]
        lines += [
            phrase("press", lang, label=item.label.get(lang), key=item.key) for item in menu.items
        ]
        lines.append(phrase("repeat_hint", lang))
        return " ".join(lines)

    def menu_choice(self, turn: Turn, menu_id: str) -> str:
        """What the caller pressed or said at a menu."""
        rule = self.crisis.match(turn.speech)
        if rule is not None:
            return self.crisis_transfer(turn, rule)
        menu = self.config.menu(menu_id)
        if menu is None:
            return self.menu(replace(turn, attempt=0), MAIN_MENU)
        choice = choose(menu, turn.digits, turn.speech)
        if isinstance(choice, Chosen):
            self._note(turn, "menu_item", f"{menu_id}:{choice.item.key}:{choice.item.action}")
            return self.run_item(replace(turn, attempt=0), choice.item)
        if isinstance(choice, Repeat):
            return self.menu(turn, menu_id)
        if isinstance(choice, Invalid):
            preface = (
                phrase("not_an_option", turn.lang, key=self._key_name(choice.key, turn.lang))
                if choice.key
                else phrase("not_understood", turn.lang)
            )
        else:
            assert isinstance(choice, NoInput)
            preface = phrase("no_input", turn.lang)
        return self._retry(turn, lambda t: self.menu(t, menu_id, preface))

    def _key_name(self, key: str, lang: str) -> str:
        names = {
            "*": {"en": "star", "es": "asterisco"},
            "#": {"en": "pound", "es": "la tecla de número"},
        }
        return names[key][lang] if key in names else key

    def run_item(self, turn: Turn, item: MenuItem) -> str:
        """Carry out what a menu item does."""
        if isinstance(item, SubmenuItem):
            return self.menu(turn, item.menu)
        if isinstance(item, ReportItem):
            return self.report_category_prompt(turn)
        if isinstance(item, ReportStatusItem):
            return self.status_prompt(turn)
        if isinstance(item, InfoItem):
            return self.info(turn, item.topic)
        if isinstance(item, TransferItem):
            return self.transfer(turn, item.line)
        if isinstance(item, AgentItem):
            return self.to_person(turn)
        if isinstance(item, CallbackItem):
            return self.callback_start(turn)
        if isinstance(item, EmergencyItem):
            return self.emergency(turn)
        return self.to_person(turn)

    def _retry(self, turn: Turn, ask_again: Callable[[Turn], str], why: str | None = None) -> str:
        """Re-ask with one more attempt counted, or send the caller to a person (saying `why`
        first, so the last answer is not met with silence about what was wrong)."""
        next_attempt = turn.attempt + 1
        if next_attempt >= self.settings.max_attempts:
            self._note(turn, "attempts_exhausted", None)
            return self.to_person(turn, preface=why)
        return ask_again(replace(turn, attempt=next_attempt))

    def _ask(
        self, turn: Turn, action: str, *texts: str, preface: str | None = None, **options: Any
    ) -> str:
        """One prompt: a Gather posting to `action` that says `preface` (if any), then `texts`.

        One key and the menu timeout unless `options` (gather's keywords) say otherwise.
        """
        response = VoiceResponse()
        settings = {"timeout": self.settings.gather_timeout_seconds, "num_digits": 1, **options}
        g = gather(response, action, turn.lang, **settings)
        for text in (preface, *texts):
            if text:
                say(g, text, turn.lang)
        return to_xml(response)

    def _with_choices(self, turn: Turn, text: str) -> str:
        """Say `text`, then offer the main menu (8) or an emergency (9); silence says goodbye."""
        after = self.url(f"{ROOT}/after", lang=turn.lang)
        return self._ask(turn, after, text, phrase("anything_else", turn.lang))

    def after(self, turn: Turn) -> str:
        """After a task is done: 8 main menu, 9 emergency, silence goodbye."""
        rule = self.crisis.match(turn.speech)
        if rule is not None:
            return self.crisis_transfer(turn, rule)
        key = first_key(turn.digits)
        if key == EMERGENCY_KEY:
            return self.emergency(turn)
        if turn.has_input:  # 8, or any other key or words: the main menu is the safe place
            return self.menu(replace(turn, attempt=0), MAIN_MENU)
        return self.goodbye(turn)

    def goodbye(self, turn: Turn) -> str:
        response = VoiceResponse()
        say(response, phrase("goodbye", turn.lang), turn.lang)
        response.hangup()
        return to_xml(response)

    # ----------------------------------------------------------------- people and lines

    def to_person(self, turn: Turn, preface: str | None = None) -> str:
        """Send the caller to the 311 agent queue, never to a dead end."""
        response = VoiceResponse()
        if preface:
            say(response, preface, turn.lang)
        say(response, phrase("to_person", turn.lang), turn.lang)
        enqueue(
            response,
            self.settings.agent_queue,
            action=self.url(f"{ROOT}/queue/done", lang=turn.lang),
            wait_url=self.url(f"{ROOT}/queue/wait", lang=turn.lang),
        )
        self._note(turn, "to_person", None)
        return to_xml(response)

    def queue_wait(self, lang: str, position: str | None, seconds: str | None) -> str:
        """Hold music with the caller's place in line; after a while, offer a callback."""
        response = VoiceResponse()
        pos = position if position and position.isdigit() and len(position) < 6 else None
        waited = int(seconds) if seconds and seconds.isdigit() and len(seconds) < 9 else 0
        if pos:
            say(response, phrase("queue_position", lang, position=pos), lang)
        if waited >= self.settings.queue_callback_offer_seconds:
            g = gather(
                response,
                self.url(f"{ROOT}/queue/offer", lang=lang),
                lang,
                timeout=3,
                num_digits=1,
                speech=False,
            )
            say(g, phrase("queue_offer_callback", lang), lang)
        response.play(self.settings.hold_music_url)
        return to_xml(response)

    def queue_offer(self, lang: str, digits: str | None) -> str:
        """Inside the wait music: 1 leaves the queue (the Enqueue action then takes the callback)."""
        response = VoiceResponse()
        if first_key(digits) == "1":
            response.leave()
        else:
            response.play(self.settings.hold_music_url)
        return to_xml(response)

    def queue_done(self, turn: Turn, result: str | None) -> str:
        """The caller left the 311 queue: to a callback (they asked), or an operator on errors."""
        if result != "leave":  # the live wall counts who is still in the queue
            self._note(turn, "queue_left", (result or "")[:32] or None)
        if result == "leave":
            self._note(turn, "queue_callback", None)
            return self.callback_start(turn, source=CallbackSource.QUEUE_OVERFLOW)
        if result in ("bridged", "hangup"):
            response = VoiceResponse()
            response.hangup()
            return to_xml(response)
        return self.transfer(turn, "operator")

    def transfer(self, turn: Turn, line_id: str, intro: str | None = None) -> str:
        """Connect the caller to a configured line (988, the nurse line, an operator)."""
        line = self.config.line(line_id)
        number = self.config.numbers.get(line_id)
        if line is None or number is None:
            return self.to_person(turn)
        response = VoiceResponse()
        say(
            response,
            intro or phrase("connecting_to", turn.lang, name=line.name.get(turn.lang)),
            turn.lang,
        )
        dial_number(
            response,
            number,
            action=self.url(f"{ROOT}/dial-result", lang=turn.lang, line=line_id),
            timeout=self.settings.dial_timeout_seconds,
        )
        self._note(turn, "transfer", line_id)
        return to_xml(response)

    def emergency(self, turn: Turn) -> str:
        """9 from any menu: straight to the PSAP's emergency line."""
        return self.transfer(turn, "emergency", intro=phrase("emergency_connecting", turn.lang))

    def crisis_transfer(self, turn: Turn, rule: CrisisRule) -> str:
        """Crisis words were spoken: explain briefly and connect to the configured line."""
        self._note(turn, "crisis_words", rule.line)
        return self.transfer(turn, rule.line, intro=rule.explanation.get(turn.lang))

    def dial_result(self, turn: Turn, line_id: str, status: str | None) -> str:
        """How a transfer ended. Unanswered lines fall back to a person, never to silence."""
        if status == "completed" or status == "answered":
            return self.goodbye(turn)
        if line_id == "emergency":
            response = VoiceResponse()
            say(response, phrase("emergency_failed", turn.lang), turn.lang)
            operator = self.config.numbers.get("operator")
            if operator:
                dial_number(
                    response,
                    operator,
                    action=self.url(f"{ROOT}/dial-result", lang=turn.lang, line="operator"),
                    timeout=self.settings.dial_timeout_seconds,
                )
            return to_xml(response)
        line = self.config.line(line_id)
        name = line.name.get(turn.lang) if line else ""
        preface = phrase("line_unanswered", turn.lang, name=name) if name else None
        if line_id == "operator":
            # The operator is the last person line; offer the callback instead of a loop.
            return self.callback_start(turn, preface=preface, source=CallbackSource.QUEUE_OVERFLOW)
        return self.to_person(turn, preface=preface)

    # ----------------------------------------------------------------- reports

    def report_category_prompt(self, turn: Turn, preface: str | None = None) -> str:
        categories = self.menus.report_categories
        lines = [phrase("report_category", turn.lang)]
        lines += [
            phrase("category_choice", turn.lang, label=c.label.get(turn.lang), key=c.key)
            for c in categories
        ]
        return self._ask(
            turn,
            self.url(f"{ROOT}/report/category", lang=turn.lang, attempt=turn.attempt),
            " ".join(lines),
            preface=preface,
            hints=[c.label.get(turn.lang) for c in categories],
        )

    def report_category(self, turn: Turn) -> str:
        rule = self.crisis.match(turn.speech)
        if rule is not None:
            return self.crisis_transfer(turn, rule)
        key = first_key(turn.digits) or digits_from(None, turn.speech)[:1] or None
        category = next((c for c in self.menus.report_categories if c.key == key), None)
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

    def report_record_prompt(self, turn: Turn, category: str) -> str:
        """Record the caller's description; no audio re-asks, then a person."""
        if not self._known_category(category):
            return self.report_category_prompt(replace(turn, attempt=0))
        response = VoiceResponse()
        say(response, phrase("report_record", turn.lang), turn.lang)
        response.record(
            action=self.url(f"{ROOT}/report/recorded", lang=turn.lang, cat=category),
            method="POST",
            max_length=self.settings.recording_max_seconds,
            finish_on_key="#",
            play_beep=True,
            trim="trim-silence",
            timeout=5,
            recording_status_callback=self.url(f"{ROOT}/report/recording-status"),
            recording_status_callback_method="POST",
        )
        # Reached only when nothing was recorded: ask again (counted) or go to a person.
        response.redirect(
            self.url(f"{ROOT}/report/no-audio", lang=turn.lang, cat=category, attempt=turn.attempt),
            method="POST",
        )
        return to_xml(response)

    def report_no_audio(self, turn: Turn, category: str) -> str:
        return self._retry(
            turn,
            lambda t: _prefixed(
                self.report_record_prompt(t, category), phrase("report_no_audio", t.lang), t.lang
            ),
        )

    def _known_category(self, code: str) -> bool:
        return any(c.code == code for c in self.menus.report_categories)

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

    # ----------------------------------------------------------------- where the problem is

    def address_prompt(self, turn: Turn, reference: str, preface: str | None = None) -> str:
        """Ask where the problem is: an address or cross streets, spoken; 1 or "skip" skips."""
        return self._ask(
            turn,
            self.url(f"{ROOT}/report/address", lang=turn.lang, ref=reference, attempt=turn.attempt),
            phrase("report_where", turn.lang),
            preface=preface,
            timeout=8,
            hints=ADDRESS_HINTS[turn.lang],
        )

    def address_heard(self, turn: Turn, reference: str) -> str:
        """Store what the caller said as the report's address, then read it back."""
        rule = self.crisis.match(turn.speech)
        if rule is not None:
            return self.crisis_transfer(turn, rule)
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

    def address_readback(
        self, turn: Turn, reference: str, address: str, preface: str | None = None
    ) -> str:
        return self._ask(
            turn,
            self.url(
                f"{ROOT}/report/address/confirm",
                lang=turn.lang,
                ref=reference,
                attempt=turn.attempt,
            ),
            phrase("report_where_readback", turn.lang, address=address),
            preface=preface,
        )

    def address_confirm(self, turn: Turn, reference: str) -> str:
        """1/yes keeps the address; 2/no asks for it again (the wrong one is cleared)."""
        rule = self.crisis.match(turn.speech)
        if rule is not None:
            return self.crisis_transfer(turn, rule)
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

    # ----------------------------------------------------------------- the reference number

    def report_readback(self, turn: Turn, reference: str, preface: str | None = None) -> str:
        texts = [
            phrase("report_saved", turn.lang, digits=spoken_digits(reference)),
            phrase("report_hear_again", turn.lang),
        ]
        if _usable_number(turn.from_number) is not None:
            texts.append(phrase("report_text_offer", turn.lang))
        texts.append(phrase("anything_else", turn.lang))
        return self._ask(
            turn,
            self.url(f"{ROOT}/report/after", lang=turn.lang, ref=reference),
            *texts,
            preface=preface,
        )

    def report_after(self, turn: Turn, reference: str) -> str:
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

    # ----------------------------------------------------------------- report status

    def status_prompt(self, turn: Turn, preface: str | None = None) -> str:
        count = self.settings.reference_digits
        return self._ask(
            turn,
            self.url(f"{ROOT}/status/check", lang=turn.lang, attempt=turn.attempt),
            phrase("status_ask", turn.lang, count=count),
            preface=preface,
            timeout=10,
            num_digits=count,
            finish_on_key="#",
        )

    def status_check(self, turn: Turn) -> str:
        rule = self.crisis.match(turn.speech)
        if rule is not None:
            return self.crisis_transfer(turn, rule)
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

    # ----------------------------------------------------------------- information

    def info(self, turn: Turn, topic_id: str, preface: str | None = None) -> str:
        topic = self.menus.info_topics.get(topic_id)
        if topic is None:
            return self.menu(replace(turn, attempt=0), MAIN_MENU)
        return self._ask(
            turn,
            self.url(f"{ROOT}/info/{topic_id}/choose", lang=turn.lang, attempt=turn.attempt),
            topic.text.get(turn.lang),
            phrase("info_options", turn.lang),
            preface=preface,
        )

    def info_choice(self, turn: Turn, topic_id: str) -> str:
        rule = self.crisis.match(turn.speech)
        if rule is not None:
            return self.crisis_transfer(turn, rule)
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
        self.queues.enqueue("sms", "workers.sms.send_sms", sms_id, job_id=f"sms-{sms_id}")
        self._note(turn, "info_sms", topic_id)
        return self._with_choices(turn, phrase("sms_queued", turn.lang))

    # ----------------------------------------------------------------- callbacks

    def callback_start(
        self,
        turn: Turn,
        preface: str | None = None,
        source: CallbackSource = CallbackSource.RESIDENT_MENU,
    ) -> str:
        """Offer the caller's own number, or ask for one when it cannot be called back."""
        number = _usable_number(turn.from_number)
        src = source.value
        if number is None:
            unusable = phrase("callback_caller_id_unusable", turn.lang)
            return self.callback_enter_prompt(turn, src, preface=preface, before=unusable)
        return self._ask(
            turn,
            self.url(f"{ROOT}/callback/caller-id", lang=turn.lang, attempt=turn.attempt, src=src),
            phrase("callback_caller_id", turn.lang, digits=spoken_phone(national_digits(number))),
            preface=preface,
        )

    def callback_enter_prompt(
        self, turn: Turn, src: str, preface: str | None = None, before: str | None = None
    ) -> str:
        """Ask for a 10-digit number (11 keys allowed, for a leading 1), ended by pound."""
        texts = [t for t in (before, phrase("callback_enter", turn.lang)) if t]
        return self._ask(
            turn,
            self.url(f"{ROOT}/callback/entered", lang=turn.lang, attempt=turn.attempt, src=src),
            *texts,
            preface=preface,
            timeout=10,
            num_digits=11,
            finish_on_key="#",
        )

    def callback_caller_id(self, turn: Turn, src: str) -> str:
        """1: use the number they are calling from; 2: key in another."""
        rule = self.crisis.match(turn.speech)
        if rule is not None:
            return self.crisis_transfer(turn, rule)
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
        rule = self.crisis.match(turn.speech)
        if rule is not None:
            return self.crisis_transfer(turn, rule)
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

    def callback_readback(self, turn: Turn, number: str, src: str) -> str:
        return self._ask(
            turn,
            self.url(f"{ROOT}/callback/confirm", lang=turn.lang, attempt=turn.attempt, src=src),
            phrase("callback_readback", turn.lang, digits=spoken_phone(national_digits(number))),
        )

    def callback_confirm(self, turn: Turn, src: str) -> str:
        rule = self.crisis.match(turn.speech)
        if rule is not None:
            return self.crisis_transfer(turn, rule)
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

    def callback_consent_prompt(self, turn: Turn, src: str, preface: str | None = None) -> str:
        return self._ask(
            turn,
            self.url(f"{ROOT}/callback/consent", lang=turn.lang, attempt=turn.attempt, src=src),
            phrase("callback_consent", turn.lang),
            preface=preface,
        )

    def callback_consent(self, turn: Turn, src: str) -> str:
        """Consent given: the callback becomes an open request, saved before we say so."""
        rule = self.crisis.match(turn.speech)
        if rule is not None:
            return self.crisis_transfer(turn, rule)
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

    # ----------------------------------------------------------------- bookkeeping

    def _note(self, turn: Turn, event: str, detail: str | None, unique: bool = True) -> None:
        """Record what happened for the dashboard; a database problem never reaches the caller."""
        if not turn.call_sid:
            return
        key = f"{turn.call_sid}:{event}:{detail}:{turn.attempt}" if unique else None
        try:
            events.record_event(
                self.engine,
                call_sid=turn.call_sid[:64],
                event=event,
                detail=(detail or None) and detail[:128],
                language=turn.lang,
                key=key[:160] if key else f"{turn.call_sid}:{event}:{_unique_suffix()}"[:160],
            )
        except sa.exc.SQLAlchemyError as exc:
            log.warning("event not recorded: event=%s error=%s", event, type(exc).__name__)


ADDRESS_HINTS = {
    "en": ("street", "avenue", "road", "boulevard", "drive", "and", "corner of", "skip"),
    "es": ("calle", "avenida", "camino", "bulevar", "y", "esquina", "saltar"),
}
"""Speech hints for the address question."""

SKIP_WORDS = frozenset(
    {"skip", "skip it", "skip that", "pass", "saltar", "saltarla", "omitir", "pasar", "siguiente"}
)
"""What a caller says to skip the address question."""


def spoken_address(speech: str | None) -> str | None:
    """What the caller said, tidied (Twilio adds a final period); None when nothing was said."""
    text = " ".join((speech or "").split()).strip(" .,!?¿¡")
    return text[:400] or None


def is_skip(text: str) -> bool:
    """True when the caller asked to skip the address ("skip", "saltar", ...)."""
    return normalise(text) in SKIP_WORDS


def status_sentence(
    request: service_requests.ServiceRequest,
    category: str,
    lang: str,
    now: datetime,
    zone: ZoneInfo,
) -> str:
    """What the line says about a report: its status, the public note, when it last changed."""
    parts = [
        phrase(
            "status_found",
            lang,
            digits=spoken_digits(request.reference),
            category=category,
            status=phrase(f"status_{request.status.value}", lang),
        )
    ]
    if request.status_note:
        note = " ".join(request.status_note.split()).rstrip(".")[:300]
        parts.append(phrase("status_note", lang, note=note))
    changed = request.status_changed_at or request.updated_at
    if changed is not None and request.status is not service_requests.RequestStatus.RECEIVED:
        parts.append(
            phrase("status_changed_when", lang, when=spoken_when(changed, now, zone, lang))
        )
    return " ".join(parts)


def _is_reference(reference: str) -> bool:
    return reference.isdigit() and len(reference) <= 16


def _unique_suffix() -> str:
    return secrets.token_hex(6)


def _source(src: str) -> CallbackSource:
    try:
        return CallbackSource(src)
    except ValueError:
        return CallbackSource.RESIDENT_MENU


def _usable_number(raw: str) -> str | None:
    """The caller's number if Bridgeline may call or text it back, else None."""
    if not raw or not raw.startswith("+"):
        return None
    try:
        return callback_number(raw)
    except PhoneNumberError:
        return None


def _prefixed(xml: str, text: str, lang: str) -> str:
    """Put a spoken sentence in front of an existing answer (used for 'I did not hear that')."""
    response = VoiceResponse()
    say(response, text, lang)
    head = to_xml(response)
    say_xml = head[head.index("<Response>") + len("<Response>") : head.index("</Response>")]
    return xml.replace("<Response>", "<Response>" + say_xml, 1)
