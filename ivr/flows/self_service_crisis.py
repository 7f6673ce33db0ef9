"""A caller in crisis, heard at any prompt: the crisis line offered or connected, its backup
chain when it does not answer (never a general queue), and the 311 queue's wait and offers.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import sqlalchemy as sa
from twilio.twiml.voice_response import VoiceResponse

from ivr.config.models import (
    CrisisRule,
)
from ivr.decisions.crisis import Finding, Verdict
from ivr.decisions.menus import (
    first_key,
)
from ivr.decisions.phrases import phrase
from ivr.decisions.understanding import yes_or_no
from ivr.flows.self_service_core import EMERGENCY_KEY, MAIN_MENU, ROOT, SelfServiceCore, Turn
from ivr.language.text import Utterance
from ivr.store import events, qa_tags
from ivr.store.callback_records import CallbackSource
from ivr.twiml import dial_number, gather, say, to_xml

log = logging.getLogger(__name__)


class SelfServiceCrisis(SelfServiceCore):
    """Crisis screening and transfer, the crisis backup chain, and the 311 queue."""

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

    def crisis_transfer(self, turn: Turn, rule: CrisisRule) -> str:
        """Crisis words were spoken: explain briefly and connect to the configured line."""
        self._note(turn, "crisis_words", rule.line)
        return self.transfer(turn, rule.line, intro=rule.explanation.get(turn.lang))

    def _screen(self, turn: Turn, address: bool = False) -> str | None:
        """Crisis screening of what was said at any prompt: the answer to give, or None.

        An answer to the address question is screened without its street names ("Gun Club
        Road"), and with everything else it says ("... and he has a gun").
        """
        if not (turn.speech or "").strip():
            return None
        heard = Utterance.read(turn.speech)
        self._tag(turn, heard)
        if address:
            finding = self.understanding.screen_address(heard, prefer_lang=turn.lang)
        else:
            finding = self.understanding.crisis.screen(heard, prefer_lang=turn.lang)
        if finding is None:
            return None
        self._tag_crisis(turn, finding)
        return self._answer_crisis(replace(turn, lang=finding.lang), finding)

    def _tag_crisis(self, turn: Turn, finding: Finding) -> None:
        """The crisis rule's QA tag on the call, also when no tagged phrase was said (the
        learned reader heard "he dejado cartas para mis hijos")."""
        tag = self.menus.crisis[finding.rule].qa_tag
        if tag is None or not turn.call_sid:
            return
        try:
            qa_tags.add_tags(self.engine, "call", turn.call_sid[:64], [tag], source="crisis")
        except sa.exc.SQLAlchemyError as exc:
            log.warning("qa tags not recorded: error=%s", type(exc).__name__)

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
