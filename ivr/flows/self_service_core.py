"""The self-service line's plumbing: what it holds, the greeting and menus, asking and retrying,
the first prompt of each step, and reaching a person, 911 or another line.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from twilio.twiml.voice_response import VoiceResponse

from ivr.config import BridgelineConfig
from ivr.config.models import (
    Menu,
)
from ivr.decisions.menus import (
    normalise,
)
from ivr.decisions.phrases import phrase, spoken_digits, spoken_phone, spoken_when
from ivr.decisions.speech import MenuGuess, SpeechUnderstanding
from ivr.language.text import Utterance
from ivr.phones import PhoneNumberError, callback_number, national_digits
from ivr.queueing import Queues
from ivr.store import events, qa_tags, service_requests
from ivr.store.callback_records import CallbackSource
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
    confidence: float | None = None

    @property
    def has_input(self) -> bool:
        return bool((self.digits or "").strip() or (self.speech or "").strip())


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


class SelfServiceCore:
    """What the line holds and the prompts and transfers every step uses."""

    def __init__(
        self, config: BridgelineConfig, base_url: str, engine: sa.Engine, queues: Queues
    ) -> None:
        self.config = config
        self.menus = config.menus
        self.settings = config.menus.settings
        self.url = Urls(base_url)
        self.engine = engine
        self.queues = queues
        self.understanding = SpeechUnderstanding(config.menus, config.examples)
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

    def _key_name(self, key: str, lang: str) -> str:
        names = {
            "*": {"en": "star", "es": "asterisco"},
            "#": {"en": "pound", "es": "la tecla de número"},
        }
        return names[key][lang] if key in names else key

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

    def goodbye(self, turn: Turn) -> str:
        response = VoiceResponse()
        say(response, phrase("goodbye", turn.lang), turn.lang)
        response.hangup()
        return to_xml(response)

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

    def transfer(
        self, turn: Turn, line_id: str, intro: str | None = None, backup_step: int | None = None
    ) -> str:
        """Connect the caller to a configured line (988, the nurse line, an operator).

        `backup_step` counts the crisis backups already tried when this is one of them.
        """
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
            action=self.url(f"{ROOT}/dial-result", lang=turn.lang, line=line_id, step=backup_step),
            timeout=self.settings.dial_timeout_seconds,
        )
        self._note(turn, "transfer", line_id)
        return to_xml(response)

    def emergency(self, turn: Turn) -> str:
        """9 from any menu: straight to the PSAP's emergency line."""
        return self.transfer(turn, "emergency", intro=phrase("emergency_connecting", turn.lang))

    def confirm_prompt(self, turn: Turn, menu_id: str, guess: MenuGuess) -> str:
        """Heard with low confidence, or two items fit: ask rather than guess."""
        label = guess.item.label.get(turn.lang)
        if guess.inner is not None:
            label = guess.inner.label.get(turn.lang)
        return self._ask(
            turn,
            self.url(
                f"{ROOT}/menu/{menu_id}/confirm",
                lang=turn.lang,
                attempt=turn.attempt,
                item=guess.item.key,
                inner=guess.inner.key if guess.inner else None,
                cat=guess.category,
            ),
            phrase("confirm_choice", turn.lang, label=label),
        )

    def _tag(self, turn: Turn, speech: str | Utterance | None) -> None:
        """QA tags heard in speech, stored with the call (never the words themselves)."""
        tags = self.understanding.tagger.tags(speech)
        if not tags or not turn.call_sid:
            return
        try:
            qa_tags.add_tags(self.engine, "call", turn.call_sid[:64], tags, source="speech")
        except sa.exc.SQLAlchemyError as exc:
            log.warning("qa tags not recorded: error=%s", type(exc).__name__)

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
            # Twilio transcribes recordings of 2-120 s; the text is screened for crisis words.
            transcribe=True,
            transcribe_callback=self.url(f"{ROOT}/report/transcription", lang=turn.lang),
        )
        # Reached only when nothing was recorded: ask again (counted) or go to a person.
        response.redirect(
            self.url(f"{ROOT}/report/no-audio", lang=turn.lang, cat=category, attempt=turn.attempt),
            method="POST",
        )
        return to_xml(response)

    def _known_category(self, code: str) -> bool:
        return any(c.code == code for c in self.menus.report_categories)

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

    def callback_readback(self, turn: Turn, number: str, src: str) -> str:
        return self._ask(
            turn,
            self.url(f"{ROOT}/callback/confirm", lang=turn.lang, attempt=turn.attempt, src=src),
            phrase("callback_readback", turn.lang, digits=spoken_phone(national_digits(number))),
        )

    def callback_consent_prompt(self, turn: Turn, src: str, preface: str | None = None) -> str:
        return self._ask(
            turn,
            self.url(f"{ROOT}/callback/consent", lang=turn.lang, attempt=turn.attempt, src=src),
            phrase("callback_consent", turn.lang),
            preface=preface,
        )

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
