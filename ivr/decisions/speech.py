"""Everything the self-service line understands, built once from config/menus.yaml and what
config/examples.yaml teaches.

`SpeechUnderstanding.choose` turns a sentence said at a menu into the item it asks for, going
one step deeper when the sentence already names what is inside ("report a pothole" -> the
pothole category; "what time does city hall open" -> the hours topic). When no keyword fits,
the main menu and the category question fall back on a classifier learned from examples.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from ivr.config.loader import MAIN_MENU
from ivr.config.models import (
    NOWHERE,
    AgentItem,
    CallbackItem,
    EmergencyItem,
    ExamplesFile,
    InfoItem,
    MenuItem,
    MenusFile,
    ReportItem,
    ReportStatusItem,
    SubmenuItem,
    TransferItem,
    Understanding,
    Words,
)
from ivr.decisions.addresses import street_name_positions
from ivr.decisions.crisis import CrisisScreen, Finding, HarmGroup, NearbyWords, RuleWords
from ivr.decisions.crisis_learned import LearnedReader
from ivr.decisions.understanding import (
    LANGUAGE_NAMES,
    Guess,
    IntentMatcher,
    Tagger,
    guess_language,
    meaningful_words,
    named_language,
    spoken_choice,
)
from ivr.language.classifier import TextClassifier, train
from ivr.language.text import Utterance, words

_PROPAGATED = (InfoItem, TransferItem, ReportItem)
"""Items whose keywords also lead to the submenu that holds them."""


_CLEAR_AT_GREETING = 2
"""Words of a sentence said at the greeting that must fit a main-menu item for it to be taken
(unless a category, topic or inner item is named)."""


def _by_lang(words: Words) -> dict[str, tuple[str, ...]]:
    return {"en": words.en, "es": words.es}


def _pairs(words: Words) -> list[tuple[str, str]]:
    return [(text, "en") for text in words.en] + [(text, "es") for text in words.es]


@dataclass(frozen=True)
class MenuGuess:
    """A menu item a sentence asks for, with what it already said about the next step."""

    item: MenuItem
    by_number: bool
    ambiguous: bool
    category: str | None = None
    topic: str | None = None
    inner: MenuItem | None = None
    score: int = 0  # content words of the sentence that fit the item (0: chosen by number)
    learned: bool = False  # chosen by the classifier examples.yaml taught, not by a phrase


class SpeechUnderstanding:
    """Crisis screening, menu intents, report categories, information topics and QA tags."""

    def __init__(self, menus: MenusFile, examples: ExamplesFile | None = None) -> None:
        u = menus.understanding
        examples = examples or ExamplesFile()
        self.confirm_below = u.confirm_below_confidence
        self.crisis = CrisisScreen(
            [
                RuleWords(
                    line=rule.line,
                    words={"en": rule.words.en, "es": rule.words.es},
                    maybe={"en": rule.maybe.en, "es": rule.maybe.es},
                    means={"en": rule.means.en, "es": rule.means.es},
                )
                for rule in menus.crisis
            ],
            negations={"en": u.negations.en, "es": u.negations.es},
            idioms={"en": u.idioms.en, "es": u.idioms.es},
            long_ago={"en": u.long_ago.en, "es": u.long_ago.es},
            max_gap=u.max_gap,
            nearby=NearbyWords(
                harms=[
                    HarmGroup(
                        line=harm.line,
                        words=_by_lang(harm.words),
                        transfer_with=harm.transfer_with,
                        offer_with=harm.offer_with,
                        means=harm.means,
                    )
                    for harm in u.nearby.harms
                ],
                anchors={kind: _by_lang(w) for kind, w in u.nearby.anchors.items()},
                things=_by_lang(u.nearby.things),
                boundaries=_by_lang(u.nearby.boundaries),
                calm=_by_lang(u.nearby.calm),
                window=u.nearby.window,
                thing_window=u.nearby.thing_window,
            ),
            second=_learned_reader(u, examples),
        )
        self.categories: IntentMatcher[str] = IntentMatcher(
            [
                (c.code, text, lang)
                for c in menus.report_categories
                for text, lang in _pairs(c.spoken)
            ],
            max_gap=u.max_gap,
        )
        self._categories_alone: IntentMatcher[str] = IntentMatcher(
            [
                (c.code, text, lang)
                for c in menus.report_categories
                for text, lang in _pairs(c.spoken_alone)
            ],
            max_gap=u.max_gap,
        )
        self.topics: IntentMatcher[str] = IntentMatcher(
            [
                (topic_id, text, lang)
                for topic_id, topic in menus.info_topics.items()
                for text, lang in _pairs(topic.keywords)
            ],
            max_gap=u.max_gap,
        )
        self.street_types = {
            "en": frozenset(w for text in u.street_types.en for w in words(text)),
            "es": frozenset(w for text in u.street_types.es for w in words(text)),
        }
        self.tagger = Tagger(
            {tag: {"en": w.en, "es": w.es} for tag, w in u.qa_tags.items()}, max_gap=u.max_gap
        )
        self._menus = menus
        self._learned = u.learned
        self._main_reader = _classifier(examples.main_menu, u.learned.strength)
        self._category_reader = _classifier(examples.categories, u.learned.strength)
        self._main_guesses = _guesses_by_destination(menus, MAIN_MENU)
        self._items: dict[str, IntentMatcher[str]] = {
            menu_id: IntentMatcher(
                self._item_phrases(menus, menu_id),
                max_gap=u.max_gap,
                generic=[i.key for i in menus.menus[menu_id].items if isinstance(i, AgentItem)],
            )
            for menu_id in menus.menus
        }

    @staticmethod
    def _item_phrases(menus: MenusFile, menu_id: str) -> Iterable[tuple[str, str, str]]:
        for item in menus.menus[menu_id].items:
            for text, lang in _pairs(item.keywords):
                yield item.key, text, lang
            if isinstance(item, InfoItem) and item.topic in menus.info_topics:
                for text, lang in _pairs(menus.info_topics[item.topic].keywords):
                    yield item.key, text, lang
            if isinstance(item, ReportItem):
                for category in menus.report_categories:
                    for text, lang in _pairs(category.spoken):
                        yield item.key, text, lang
            if isinstance(item, SubmenuItem) and item.menu in menus.menus:
                for inner in menus.menus[item.menu].items:
                    if isinstance(inner, _PROPAGATED):
                        for text, lang in _pairs(inner.keywords):
                            yield item.key, text, lang
                    if isinstance(inner, InfoItem) and inner.topic in menus.info_topics:
                        for text, lang in _pairs(menus.info_topics[inner.topic].keywords):
                            yield item.key, text, lang

    def choose(self, menu_id: str, speech: str | Utterance) -> MenuGuess | None:
        """The item of `menu_id` a sentence asks for, or None when it names none."""
        menu = self._menus.menus.get(menu_id)
        if menu is None:
            return None
        utterance = speech if isinstance(speech, Utterance) else Utterance.read(speech)
        key = spoken_choice(utterance)
        if key is not None:
            item = next((i for i in menu.items if i.key == key), None)
            return MenuGuess(item, by_number=True, ambiguous=False) if item else None
        guess = self._items[menu_id].best(utterance)
        if guess is None:
            return self._learned_choice(menu_id, utterance)
        item = next(i for i in menu.items if i.key == guess.target)
        chosen = self._deeper(item, guess, utterance)
        if guess.runner_up is not None and not isinstance(item, EmergencyItem):
            # Keywords of two items fit: what examples.yaml taught settles a tie when it is
            # sure, and takes the runner-up when that fit nearly as well ("reporté un bache y
            # quería saber si ya lo arreglaron", "did anyone do anything about the abandoned
            # car I called in": the status). An emergency the keywords chose stays chosen.
            learned = self._learned_choice(menu_id, utterance)
            close = guess.runner_up_score >= guess.score - 1
            if (
                learned is not None
                and not learned.ambiguous
                and (chosen.ambiguous or (close and learned.item.key == guess.runner_up))
            ):
                return learned
        return chosen

    def _learned_choice(self, menu_id: str, utterance: Utterance) -> MenuGuess | None:
        """What examples.yaml taught, when no phrase of the main menu fits: taken when likely
        (`choose_at`), confirmed with the caller when fairly likely (`confirm_at`)."""
        if menu_id != MAIN_MENU or self._main_reader is None or not meaningful_words(utterance):
            return None
        label, chance = _likeliest(self._main_reader, utterance)
        guess = self._main_guesses.get(label)
        if guess is None or chance < self._learned.confirm_at:
            return None
        return replace(guess, ambiguous=chance < self._learned.choose_at, learned=True)

    def _deeper(self, item: MenuItem, guess: Guess[str], utterance: Utterance) -> MenuGuess:
        ambiguous = guess.ambiguous
        if isinstance(item, ReportItem):
            category = self.named_category(utterance)
            return MenuGuess(item, False, ambiguous, category=category, score=guess.score)
        if isinstance(item, InfoItem):
            return MenuGuess(item, False, ambiguous, topic=item.topic, score=guess.score)
        if isinstance(item, SubmenuItem) and item.menu in self._menus.menus:
            inner_guess = self._items[item.menu].best(utterance)
            if inner_guess is not None and not inner_guess.ambiguous:
                inner = next(
                    i for i in self._menus.menus[item.menu].items if i.key == inner_guess.target
                )
                if isinstance(inner, _PROPAGATED):
                    topic = inner.topic if isinstance(inner, InfoItem) else None
                    return MenuGuess(
                        item, False, ambiguous, topic=topic, inner=inner, score=guess.score
                    )
        return MenuGuess(item, False, ambiguous, score=guess.score)

    def at_greeting(
        self, key: str | None, speech: str | Utterance | None, main_menu: str = "main"
    ) -> tuple[str, MenuGuess | None]:
        """The language chosen at the bilingual greeting, and what was already asked for.

        1 / "English" -> en, 2 / "español" -> es; a sentence is taken in the language it seems
        to be in, and when it already names a main-menu item clearly, that item ("quiero
        reportar un bache" -> Spanish, the pothole report). A language named and more said
        ("English, the street lamp on my block is out", "can I talk to someone in Spanish")
        takes the language named and what the rest asks for. One vague word heard before the
        caller has heard the menu ("llamo por un problema", "quiero información") only picks
        the language: the menu is read next. Anything else: English, no item.
        """
        utterance = speech if isinstance(speech, Utterance) else Utterance.read(speech)
        key = key or spoken_choice(utterance)
        named = named_language(utterance)
        if key in ("1", "2") and not named:
            return "es" if key == "2" else "en", None
        if named:
            # "English, the street lamp on my block is out": the language named, and what the
            # rest of the sentence asks for when it is clear.
            rest = Utterance.read(" ".join(w for w in utterance.words if w not in LANGUAGE_NAMES))
            return named, (self._asked_at_greeting(rest, main_menu) if not rest.empty else None)
        if utterance.empty:
            return "en", None
        return guess_language(utterance) or "en", self._asked_at_greeting(utterance, main_menu)

    def _asked_at_greeting(self, utterance: Utterance, main_menu: str) -> MenuGuess | None:
        """The main-menu item a sentence said at the greeting clearly names, else None."""
        guess = self.choose(main_menu, utterance)
        if guess is None or guess.by_number or guess.ambiguous:
            return None
        named_inside = guess.category or guess.topic or guess.inner or guess.learned
        if (
            not named_inside
            and guess.score < _CLEAR_AT_GREETING
            and not self._learned_agrees(guess, utterance)
        ):
            return None
        return guess

    def _learned_agrees(self, guess: MenuGuess, utterance: Utterance) -> bool:
        """True when what examples.yaml taught picks the same destination, likely
        (`choose_at`): "can I get a person please" at the greeting is the person, though only
        one word of it is a keyword."""
        if self._main_reader is None:
            return False
        label, chance = _likeliest(self._main_reader, utterance)
        return chance >= self._learned.choose_at and label == destination(guess)

    def screen_address(
        self, speech: str | Utterance | None, prefer_lang: str = "en"
    ) -> Finding | None:
        """Crisis screening of an answer to the address question: a street's name in an answer
        that looks like an address is left out ("1400 Gun Club Road"), nothing else is."""
        utterance = speech if isinstance(speech, Utterance) else Utterance.read(speech)
        names = street_name_positions(utterance, self.street_types)
        if not names:
            return self.crisis.screen(utterance, prefer_lang=prefer_lang)
        rest = " ".join(w for i, w in enumerate(utterance.words) if i not in names)
        return self.crisis.screen(rest, prefer_lang=prefer_lang) if rest else None

    def category(self, speech: str | Utterance) -> str | None:
        """The report category an answer to the category question picks (only when one
        clearly fits): what the sentence names, else a general word said for one ("the
        road" -> pothole, "una luz" -> streetlight)."""
        utterance = speech if isinstance(speech, Utterance) else Utterance.read(speech)
        guess = self.categories.best(utterance) or self._categories_alone.best(utterance)
        if guess is not None:
            return self._settle_tie(guess, utterance)
        if self._category_reader is None or not meaningful_words(utterance):
            return None
        label, chance = _likeliest(self._category_reader, utterance)
        if label == NOWHERE or chance < self._learned.choose_at:
            return None
        return label

    def named_category(self, speech: str | Utterance) -> str | None:
        """The report category a sentence said at a menu names (only when one clearly fits)."""
        utterance = speech if isinstance(speech, Utterance) else Utterance.read(speech)
        guess = self.categories.best(utterance)
        return self._settle_tie(guess, utterance) if guess is not None else None

    def _settle_tie(self, guess: Guess[str], utterance: Utterance) -> str | None:
        """A category whose words fit alone; of two that fit as well ("la luz del semáforo cayó
        en el bache": a traffic light, and a pothole), the one examples.yaml taught when it is
        sure, else none."""
        if not guess.ambiguous:
            return guess.target
        if self._category_reader is None:
            return None
        label, chance = _likeliest(self._category_reader, utterance)
        tied = {guess.target, guess.tied_with}
        return label if label in tied and chance >= self._learned.choose_at else None

    def category_by_key(self, key: str) -> str | None:
        """The code of the report category on key `key`."""
        return next((c.code for c in self._menus.report_categories if c.key == key), None)

    def topic(self, speech: str | Utterance) -> str | None:
        """The information topic a sentence names (only when one clearly fits)."""
        utterance = speech if isinstance(speech, Utterance) else Utterance.read(speech)
        guess = self.topics.best(utterance)
        return guess.target if guess is not None and not guess.ambiguous else None

    def unsure(self, confidence: float | None) -> bool:
        """True when Twilio's Confidence for the speech is below the configured bar."""
        return confidence is not None and 0.0 < confidence < self.confirm_below


def _classifier(labelled: dict[str, Words], strength: float) -> TextClassifier | None:
    """A classifier trained on examples.yaml sentences by label (None: fewer than two labels)."""
    pairs = [(text, label) for label, said in labelled.items() for text in said.all()]
    if len({label for _, label in pairs}) < 2:
        return None
    return train(pairs, strength=strength)


def _likeliest(classifier: TextClassifier, utterance: Utterance) -> tuple[str, float]:
    odds = classifier.probabilities(utterance)
    label = max(odds, key=lambda key: odds[key])
    return label, odds[label]


def _guesses_by_destination(menus: MenusFile, menu_id: str) -> dict[str, MenuGuess]:
    """Every guess a sentence at `menu_id` can lead to, by `destination` ("report:pothole")."""
    menu = menus.menus.get(menu_id)
    if menu is None:
        return {}
    out: dict[str, MenuGuess] = {}
    for item in menu.items:
        plain = MenuGuess(item, by_number=False, ambiguous=False)
        out.setdefault(destination(plain), plain)
        if isinstance(item, ReportItem):
            for c in menus.report_categories:
                guess = replace(plain, category=c.code)
                out.setdefault(destination(guess), guess)
        if isinstance(item, InfoItem):
            guess = replace(plain, topic=item.topic)
            out.setdefault(destination(guess), guess)
        if isinstance(item, SubmenuItem) and item.menu in menus.menus:
            for inner in menus.menus[item.menu].items:
                if isinstance(inner, _PROPAGATED):
                    topic = inner.topic if isinstance(inner, InfoItem) else None
                    guess = replace(plain, inner=inner, topic=topic)
                    out.setdefault(destination(guess), guess)
    return out


def _learned_reader(u: Understanding, examples: ExamplesFile) -> LearnedReader | None:
    """The crisis screen's second reader, trained on examples.yaml (None without examples)."""
    classifier = _classifier(examples.crisis, u.learned.strength)
    return LearnedReader(classifier, u.learned) if classifier is not None else None


def destination(guess: MenuGuess | None) -> str:
    """Where a guess sends the caller, in words: 'report:pothole', 'info:hours', 'agent'."""
    if guess is None:
        return "none"
    item = guess.inner or guess.item
    if isinstance(item, ReportItem):
        return f"report:{guess.category}" if guess.category else "report"
    if isinstance(item, ReportStatusItem):
        return "report_status"
    if isinstance(item, InfoItem):
        return f"info:{item.topic}"
    if isinstance(item, TransferItem):
        return f"transfer:{item.line}"
    if isinstance(item, SubmenuItem):
        return f"menu:{item.menu}"
    if isinstance(item, AgentItem):
        return "agent"
    if isinstance(item, CallbackItem):
        return "callback"
    if isinstance(item, EmergencyItem):
        return "emergency"
    return "none"


def line_destination(line: str) -> str:
    """Where crisis screening sends a caller, in the words of `destination`: the 911 line is the
    menu's emergency item ('emergency'), another line a transfer ('transfer:crisis_988')."""
    return "emergency" if line == "emergency" else f"transfer:{line}"
