"""Choosing at a menu: the language, a key or a sentence, confirming a guess, running the item.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from ivr.config.models import (
    AgentItem,
    CallbackItem,
    EmergencyItem,
    InfoItem,
    MenuItem,
    ReportItem,
    ReportStatusItem,
    SubmenuItem,
    TransferItem,
)
from ivr.decisions.menus import (
    Chosen,
    Invalid,
    NoInput,
    Repeat,
    choose,
    first_key,
    yes_no,
)
from ivr.decisions.phrases import phrase
from ivr.decisions.speech import MenuGuess
from ivr.flows.self_service_core import EMERGENCY_KEY, MAIN_MENU, Turn
from ivr.flows.self_service_crisis import SelfServiceCrisis
from ivr.language.text import Utterance

log = logging.getLogger(__name__)


class SelfServiceMenus(SelfServiceCrisis):
    """Menu choices by key or by speech, confirmed when unsure, and what each item does."""

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
