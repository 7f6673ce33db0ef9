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
from ivr.decisions.crisis import Finding, Verdict
from ivr.decisions.menus import (
    Chosen,
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
from ivr.decisions.speech import MenuGuess, SpeechUnderstanding
from ivr.decisions.understanding import spoken_choice, yes_or_no
from ivr.language.text import Utterance
from ivr.phones import NumberProblem, PhoneNumberError, callback_number, national_digits
from ivr.queueing import Queues
from ivr.store import callbacks, events, outbox, qa_tags, service_requests
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
    confidence: float | None = None

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
        self.understanding = SpeechUnderstanding(config.menus)
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
        heard = Utterance.read(turn.speech)
        self._tag(turn, heard)
        finding = self.understanding.crisis.screen(heard, prefer_lang="en")
        if finding is not None:
            # Answered in the language of the words the caller used.
            return self._answer_crisis(replace(turn, lang=finding.lang), finding)
        lang, guess = self.understanding.at_greeting(first_key(turn.digits), heard, MAIN_MENU)
        self._note(turn, "language", lang)
        turn = replace(turn, lang=lang, attempt=0)
        if guess is not None and not self.understanding.unsure(turn.confidence):
            # "I want to report a pothole" at the greeting: straight to what they asked for.
            self._note(turn, "menu_item", f"{MAIN_MENU}:{guess.item.key}:{guess.item.action}")
            return self._run_guess(turn, MAIN_MENU, guess)
        return self.menu(turn, MAIN_MENU)

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
        screened = self._screen(turn)
        if screened is not None:
            return screened
        menu = self.config.menu(menu_id)
        if menu is None:
            return self.menu(replace(turn, attempt=0), MAIN_MENU)
        if first_key(turn.digits) is None and (turn.speech or "").strip():
            guess = self.understanding.choose(menu_id, turn.speech or "")
            if guess is not None:
                if guess.ambiguous or (
                    not guess.by_number and self.understanding.unsure(turn.confidence)
                ):
                    return self.confirm_prompt(turn, menu_id, guess)
                self._note(turn, "menu_item", f"{menu_id}:{guess.item.key}:{guess.item.action}")
                return self._run_guess(replace(turn, attempt=0), menu_id, guess)
            choice: Chosen | Invalid | NoInput | Repeat = Invalid(None)
        else:
            choice = choose(menu, turn.digits, None)
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
        screened = self._screen(turn)
        if screened is not None:
            return screened
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
        """Hold music with the caller's place in line; after a while, offer a callback.

        The music plays inside a speech Gather, so crisis words said while waiting are heard.
        """
        response = VoiceResponse()
        pos = position if position and position.isdigit() and len(position) < 6 else None
        waited = int(seconds) if seconds and seconds.isdigit() and len(seconds) < 9 else 0
        g = gather(
            response,
            self.url(f"{ROOT}/queue/offer", lang=lang),
            lang,
            timeout=3,
            num_digits=1,
        )
        if pos:
            say(g, phrase("queue_position", lang, position=pos), lang)
        if waited >= self.settings.queue_callback_offer_seconds:
            say(g, phrase("queue_offer_callback", lang), lang)
        g.play(self.settings.hold_music_url)
        return to_xml(response)

    def queue_offer(self, turn: Turn) -> str:
        """Inside the wait music: 1 leaves the queue for a callback; crisis words leave it for
        the crisis line (the Enqueue action reads which, from the recorded event)."""
        response = VoiceResponse()
        finding = self.understanding.crisis.screen(turn.speech, prefer_lang=turn.lang)
        self._tag(turn, turn.speech)
        if finding is not None:
            detail = f"{finding.rule}:{finding.verdict.value}:{finding.lang}"
            try:
                events.record_event_now(
                    self.engine,
                    call_sid=turn.call_sid[:64],
                    event="queue_crisis",
                    detail=detail,
                    language=finding.lang,
                )
            except sa.exc.SQLAlchemyError as exc:
                log.error("queue crisis not recorded: error=%s", type(exc).__name__)
            response.leave()
        elif first_key(turn.digits) == "1":
            response.leave()
        else:
            response.play(self.settings.hold_music_url)
        return to_xml(response)

    def queue_done(self, turn: Turn, result: str | None) -> str:
        """The caller left the 311 queue: to a callback (they asked), or an operator on errors."""
        if result != "leave":  # the live wall counts who is still in the queue
            self._note(turn, "queue_left", (result or "")[:32] or None)
        if result == "leave":
            finding = self._queue_crisis(turn)
            if finding is not None:
                return self._answer_crisis(replace(turn, lang=finding.lang), finding)
            self._note(turn, "queue_callback", None)
            return self.callback_start(turn, source=CallbackSource.QUEUE_OVERFLOW)
        if result in ("bridged", "hangup"):
            response = VoiceResponse()
            response.hangup()
            return to_xml(response)
        return self.transfer(turn, "operator")

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

    def crisis_transfer(self, turn: Turn, rule: CrisisRule) -> str:
        """Crisis words were spoken: explain briefly and connect to the configured line."""
        self._note(turn, "crisis_words", rule.line)
        return self.transfer(turn, rule.line, intro=rule.explanation.get(turn.lang))

    # ----------------------------------------------------------------- understanding speech

    def _screen(self, turn: Turn) -> str | None:
        """Crisis screening of what was said at any prompt: the answer to give, or None."""
        if not (turn.speech or "").strip():
            return None
        heard = Utterance.read(turn.speech)
        self._tag(turn, heard)
        finding = self.understanding.crisis.screen(heard, prefer_lang=turn.lang)
        if finding is None:
            return None
        return self._answer_crisis(replace(turn, lang=finding.lang), finding)

    def _answer_crisis(self, turn: Turn, finding: Finding) -> str:
        rule = self.menus.crisis[finding.rule]
        if finding.verdict is Verdict.TRANSFER:
            return self.crisis_transfer(turn, rule)
        return self.crisis_offer(turn, finding.rule)

    def _queue_crisis(self, turn: Turn) -> Finding | None:
        """The crisis heard while this call waited in the queue (recorded by queue_offer)."""
        try:
            found = [
                d
                for e, d in events.events_for_call(self.engine, turn.call_sid[:64])
                if e == "queue_crisis"
            ]
        except sa.exc.SQLAlchemyError as exc:
            log.error("queue crisis not readable: error=%s", type(exc).__name__)
            return None
        for detail in reversed(found):
            parts = (detail or "").split(":")
            if len(parts) != 3:
                continue
            rule, verdict, lang = parts
            if rule.isdigit() and int(rule) < len(self.menus.crisis):
                line = self.menus.crisis[int(rule)].line
                kind = Verdict.OFFER if verdict == Verdict.OFFER.value else Verdict.TRANSFER
                return Finding(int(rule), line, kind, "es" if lang == "es" else "en", "")
        return None

    def crisis_offer(self, turn: Turn, rule_index: int, preface: str | None = None) -> str:
        """Unsure it is a crisis (a negation, a figure of speech): offer the line, never skip it."""
        rule = self.menus.crisis[rule_index]
        line = self.config.line(rule.line)
        name = line.name.get(turn.lang) if line else rule.line
        self._note(turn, "crisis_offered", rule.line)
        return self._ask(
            turn,
            self.url(f"{ROOT}/crisis/offer", lang=turn.lang, attempt=turn.attempt, rule=rule_index),
            phrase("crisis_offer", turn.lang, name=name),
            preface=preface,
        )

    def crisis_offer_choice(self, turn: Turn, rule_param: str) -> str:
        """1 / yes connects; 2 / no goes back to the menu; silence asks again, then connects."""
        screened = self._screen(turn)
        if screened is not None:
            return screened
        index = int(rule_param) if rule_param.isdigit() and len(rule_param) < 3 else 0
        if index >= len(self.menus.crisis):
            index = 0
        rule = self.menus.crisis[index]
        key = first_key(turn.digits)
        answer = (
            {"1": True, "2": False}.get(key or "")
            if key
            else yes_or_no(Utterance.read(turn.speech))
        )
        if key == EMERGENCY_KEY:
            return self.emergency(turn)
        if answer is True:
            return self.crisis_transfer(turn, rule)
        if answer is False:
            self._note(turn, "crisis_declined", rule.line)
            return self.menu(replace(turn, attempt=0), MAIN_MENU)
        if turn.attempt + 1 >= 2:
            # Asked twice, no answer: when unsure, connect rather than let the caller go.
            return self.crisis_transfer(turn, rule)
        return self.crisis_offer(replace(turn, attempt=turn.attempt + 1), index)

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

    def confirm_choice(self, turn: Turn, menu_id: str, item_key: str, inner: str, cat: str) -> str:
        """The caller's answer to "I think you said ...": yes runs it, no asks the menu again."""
        screened = self._screen(turn)
        if screened is not None:
            return screened
        menu = self.config.menu(menu_id)
        item = next((i for i in menu.items if i.key == item_key), None) if menu else None
        if menu is None or item is None:
            return self.menu(replace(turn, attempt=0), MAIN_MENU)
        if first_key(turn.digits) == EMERGENCY_KEY:
            return self.emergency(turn)
        answer = yes_no(turn.digits, turn.speech)
        if answer is True:
            inner_item = None
            if isinstance(item, SubmenuItem) and self.config.menu(item.menu) is not None:
                inner_menu = self.config.menu(item.menu)
                assert inner_menu is not None
                inner_item = next((i for i in inner_menu.items if i.key == inner), None)
            guess = MenuGuess(
                item,
                by_number=False,
                ambiguous=False,
                category=cat if self._known_category(cat) else None,
                topic=getattr(inner_item, "topic", None),
                inner=inner_item,
            )
            self._note(turn, "menu_item", f"{menu_id}:{item.key}:{item.action}")
            return self._run_guess(replace(turn, attempt=0), menu_id, guess)
        preface = (
            phrase("try_again", turn.lang)
            if answer is False
            else phrase("not_understood", turn.lang)
        )
        return self._retry(turn, lambda t: self.menu(t, menu_id, preface))

    def _run_guess(self, turn: Turn, menu_id: str, guess: MenuGuess) -> str:
        """Carry out what a sentence asked for, one step deeper when it already said more."""
        if isinstance(guess.item, ReportItem) and guess.category:
            return self.report_record_prompt(turn, guess.category)
        if guess.inner is not None:
            return self.run_item(turn, guess.inner)
        return self.run_item(turn, guess.item)

    def _tag(self, turn: Turn, speech: str | Utterance | None) -> None:
        """QA tags heard in speech, stored with the call (never the words themselves)."""
        tags = self.understanding.tagger.tags(speech)
        if not tags or not turn.call_sid:
            return
        try:
            qa_tags.add_tags(self.engine, "call", turn.call_sid[:64], tags, source="speech")
        except sa.exc.SQLAlchemyError as exc:
            log.warning("qa tags not recorded: error=%s", type(exc).__name__)

    def dial_result(
        self, turn: Turn, line_id: str, status: str | None, step: str | None = None
    ) -> str:
        """How a transfer ended. Unanswered lines fall back to a person, never to silence;
        an unanswered crisis line goes down its backup chain, never to the 311 queue."""
        if status == "completed" or status == "answered":
            return self.goodbye(turn)
        backup = self._crisis_backup(turn, line_id, status, step)
        if backup is not None:
            return backup
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

    def _crisis_lines(self) -> dict[str, tuple[str, ...]]:
        """Each crisis line (a crisis rule's or one with backups) and its backup chain."""
        chains: dict[str, tuple[str, ...]] = {
            rule.line: ("emergency",) for rule in self.menus.crisis if rule.line != "emergency"
        }
        chains.update(self.config.lines.crisis_backup)
        return chains

    def _crisis_backup(
        self, turn: Turn, line_id: str, status: str | None, step: str | None
    ) -> str | None:
        """The next line of a failed crisis transfer's chain (None when `line_id` has none)."""
        chains = self._crisis_lines()
        tried = int(step) if step and step.isdigit() and len(step) < 3 else None
        if tried is None and line_id not in chains:
            return None
        origin = line_id if tried is None else None
        if origin is None:
            # A backup failed: find the chain it belongs to.
            origin = next((o for o, chain in chains.items() if line_id in chain), None)
            if origin is None:
                return None
        chain = chains[origin]
        position = tried or 0
        reason = (status or "unknown")[:24]
        self._note(turn, "crisis_transfer_failed", f"{line_id}:{reason}")
        if position >= len(chain) or line_id == "emergency":
            return None  # the emergency line's own failure path: a person, never the queue
        next_line = chain[position]
        failed = self.config.line(line_id)
        nxt = self.config.line(next_line)
        intro = phrase(
            "crisis_backup_connecting",
            turn.lang,
            failed=failed.name.get(turn.lang) if failed else line_id,
            name=nxt.name.get(turn.lang) if nxt else next_line,
        )
        return self.transfer(turn, next_line, intro=intro, backup_step=position + 1)

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
        screened = self._screen(turn)
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

    def callback_readback(self, turn: Turn, number: str, src: str) -> str:
        return self._ask(
            turn,
            self.url(f"{ROOT}/callback/confirm", lang=turn.lang, attempt=turn.attempt, src=src),
            phrase("callback_readback", turn.lang, digits=spoken_phone(national_digits(number))),
        )

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

    def callback_consent_prompt(self, turn: Turn, src: str, preface: str | None = None) -> str:
        return self._ask(
            turn,
            self.url(f"{ROOT}/callback/consent", lang=turn.lang, attempt=turn.attempt, src=src),
            phrase("callback_consent", turn.lang),
            preface=preface,
        )

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
