"""What a caller's sentence asks for: a menu item, a report category, an information topic.

Keywords and synonyms come from config (operators add their own). A number word counts only
when the whole utterance is a choice ("two", "option three", "el dos", "número uno"), never
inside a sentence ("I'd like to speak to someone" is not the key 2). The item whose phrases
cover the most words of the sentence wins; a tie, or low speech-recognition confidence, is
confirmed with the caller rather than guessed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ivr.language.lexicon import DEFAULT_MAX_GAP, Lexicon
from ivr.language.text import Utterance

T = TypeVar("T")

NUMBER_WORDS: Mapping[str, str] = {
    "zero": "0", "oh": "0", "one": "1", "won": "1", "two": "2", "to": "2", "too": "2",
    "three": "3", "tree": "3", "four": "4", "for": "4", "fore": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "ate": "8", "nine": "9",
    "first": "1", "second": "2", "third": "3", "fourth": "4", "fifth": "5",
    "cero": "0", "uno": "1", "una": "1", "dos": "2", "tres": "3", "cuatro": "4",
    "cinco": "5", "seis": "6", "siete": "7", "ocho": "8", "nueve": "9",
    "primero": "1", "primera": "1", "segundo": "2", "segunda": "2", "tercero": "3",
    "tercera": "3", "cuarto": "4", "cuarta": "4", "quinto": "5", "quinta": "5",
}  # fmt: skip
"""Words that name a key, when they are the whole answer (homophones included)."""

CHOICE_FILLERS = frozenset(
    """
    option options number num press pressing push key the a please ok okay uh um umm er
    i would like want choose pick take select go with let me give do will say said just
    yes yeah the one
    opcion numero el la lo oprimo oprimir marco marcar quiero quisiera elijo por favor eh
    este pues la tecla dame escojo si
    """.split()
)
"""Words around a number that still leave the utterance a choice ("option three please")."""

YES_WORDS = frozenset(
    "yes yeah yep yup correct right sure agree ok okay affirmative si claro correcto acepto "
    "afirmativo bueno dale exacto".split()
)
NO_WORDS = frozenset("no nope nah not never wrong incorrect negative nunca tampoco".split())

LANGUAGE_NAMES: Mapping[str, str] = {
    "english": "en", "ingles": "en", "spanish": "es", "espanol": "es", "espanola": "es",
    "castellano": "es", "espaniol": "es", "inglish": "en", "englis": "en",
}  # fmt: skip

FUNCTION_WORDS = frozenset(
    """
    to a an the my i me of for in on at about is it this that and or with your our please would
    like want need can do did you some
    el la los las un una unos unas de del en con por para mi mis su sus y o que me se lo le al
    es favor quiero necesito
    """.split()
)
"""Words that do not count towards how well a phrase fits ("talk to someone" counts 2)."""

_LANGUAGE_HINTS: Mapping[str, frozenset[str]] = {
    "en": frozenset(
        "the i my to is and of in want need please it this you have there what how can "
        "would like am was are he she his her with for someone about hello hi hey speak "
        "talk yes yeah okay ok good morning afternoon evening thanks thank calling sorry "
        "who".split()
    ),
    "es": frozenset(
        "el la los las un una de que y en mi quiero es por para con se me hay tengo como "
        "esta estoy favor hablar necesito donde cuando su lo le del al muy ya alo hola bueno "
        "oiga buenas buenos dias tardes noches hablo habla si digame diga mande oigo quien "
        "gracias senor senora senorita usted perdon disculpe llamo buen dia".split()
    ),
}


def spoken_choice(utterance: Utterance) -> str | None:
    """The key named when the whole utterance is a choice ("option three"), else None."""
    if not utterance.words or len(utterance.words) > 6:
        return None
    keys = []
    for word in utterance.words:
        if word.isdigit() and len(word) == 1:
            keys.append(word)
        elif word in NUMBER_WORDS and not (word == "one" and keys):
            keys.append(NUMBER_WORDS[word])
        elif word not in CHOICE_FILLERS:
            return None
    if len(keys) == 1 and not _only_filler_homophone(utterance):
        return keys[0]
    return None


def _only_filler_homophone(utterance: Utterance) -> bool:
    """'I want to' or 'for the' alone name no key: a homophone needs to stand out."""
    homophones = {"to", "too", "for", "fore", "won", "tree", "ate", "oh", "una"}
    content = [w for w in utterance.words if w not in CHOICE_FILLERS]
    return bool(content) and content[0] in homophones and len(utterance.words) > 2


def yes_or_no(utterance: Utterance) -> bool | None:
    """'yes' / 'sí' / 'one' -> True; 'no' / 'two' / 'I don't agree' -> False; else None."""
    found = set(utterance.words)
    if found & NO_WORDS or spoken_choice(utterance) == "2":
        return False
    if found & YES_WORDS or spoken_choice(utterance) == "1":
        return True
    return None


_NEGATIONS = frozenset({"no", "not", "never", "nunca"})


def named_language(utterance: Utterance) -> str | None:
    """'English' / 'español' / 'Spanish please' -> the language named, else None.

    A language named after a negation is the one the caller does not speak: "no hablo
    inglés" -> Spanish, "I don't speak Spanish" -> English.
    """
    for index, word in enumerate(utterance.words):
        if word in LANGUAGE_NAMES:
            lang = LANGUAGE_NAMES[word]
            if _NEGATIONS & set(utterance.words[max(0, index - 3) : index]):
                return "es" if lang == "en" else "en"
            return lang
    return None


def meaningful_words(utterance: Utterance) -> int:
    """How many words of a sentence carry meaning ("I want to" has none)."""
    return sum(w not in FUNCTION_WORDS for w in utterance.words)


def language_of(utterance: Utterance, default: str) -> str:
    """The language a sentence is in when its common words say so clearly (two more of one
    language's than the other's), else `default`, the language the call is in: "he estado
    buscando pastillas" has the English-looking "he" and stays Spanish on a Spanish call."""
    counts = {
        lang: sum(w in hints for w in utterance.words) for lang, hints in _LANGUAGE_HINTS.items()
    }
    other = "es" if default == "en" else "en"
    return other if counts.get(other, 0) >= counts.get(default, 0) + 2 else default


def guess_language(utterance: Utterance) -> str | None:
    """The language a sentence seems to be in, from its common words; None when unclear."""
    counts = {
        lang: sum(w in hints for w in utterance.words) for lang, hints in _LANGUAGE_HINTS.items()
    }
    if counts["es"] > counts["en"]:
        return "es"
    if counts["en"] > counts["es"]:
        return "en"
    return None


@dataclass(frozen=True)
class Guess(Generic[T]):
    """The best-matching target of a sentence and how sure the match is."""

    target: T
    score: int
    tied_with: T | None = None
    runner_up: T | None = None  # the next target any phrase fits (tied or not)
    runner_up_score: int = 0

    @property
    def ambiguous(self) -> bool:
        return self.tied_with is not None


class IntentMatcher(Generic[T]):
    """Targets (menu items, categories, topics) and the phrases that ask for each."""

    def __init__(
        self,
        phrases: Iterable[tuple[T, str, str]],
        max_gap: int = DEFAULT_MAX_GAP,
        generic: Iterable[T] = (),
    ) -> None:
        """`phrases` are (target, phrase text, language), targets in menu order. A `generic`
        target ("talk to a person") yields to any other that fits as well."""
        entries = list(phrases)
        self._order = list(dict.fromkeys(target for target, _, _ in entries))
        self._generic = set(generic)
        self._lexicon: Lexicon[T] = Lexicon(entries, max_gap=max_gap)

    def best(self, utterance: Utterance) -> Guess[T] | None:
        """The target whose phrases cover most words of `utterance` (None when nothing fits),
        counting only phrases of the sentence's language when it has some, and the next best."""
        if utterance.empty:
            return None
        covered: dict[T, set[int]] = defaultdict(set)
        spanned: dict[T, set[int]] = defaultdict(set)
        hits = self._lexicon.find(utterance)
        lang = guess_language(utterance)
        if lang is not None and any(hit.lang == lang for hit in hits):
            # A phrase of the language the sentence is in outweighs a look-alike of the other
            # one: Spanish "postes" (stem "post") is not in "the post office".
            hits = [hit for hit in hits if hit.lang == lang]
        # A word belongs to the longest phrases that cover it: in "I reported a pothole" the
        # status phrase "I reported" claims "reported" from the bare word "report".
        longest: dict[int, int] = defaultdict(int)
        for hit in hits:
            for p in hit.positions:
                longest[p] = max(longest[p], len(hit.positions))
        for hit in hits:
            claimed = [p for p in hit.positions if len(hit.positions) == longest[p]]
            if not claimed:
                continue
            spanned[hit.tag].update(hit.positions)
            covered[hit.tag].update(p for p in claimed if utterance.words[p] not in FUNCTION_WORDS)
        if not covered:
            return None
        score = {t: max(len(positions), 1) for t, positions in covered.items()}
        # Equal content words: the phrase that fits more of the sentence is the more specific
        # one ("my complaint" asks about a complaint already made, "complaint" may be new).
        fit = {t: (score[t], len(spanned[t])) for t in covered}
        ranked = sorted(fit, key=lambda t: (-fit[t][0], t in self._generic, -fit[t][1],
                                           self._order.index(t)))  # fmt: skip
        top = ranked[0]
        runner_up = ranked[1] if len(ranked) > 1 else None
        tie = (
            runner_up
            if runner_up is not None
            and fit[runner_up] == fit[top]
            and (top in self._generic) == (runner_up in self._generic)
            else None
        )
        return Guess(top, score[top], tie, runner_up, score[runner_up] if runner_up is not None else 0)


class Tagger:
    """Every QA tag whose phrases appear in a sentence."""

    def __init__(
        self, tag_phrases: Mapping[str, Mapping[str, Sequence[str]]], max_gap: int = DEFAULT_MAX_GAP
    ) -> None:
        self._lexicon: Lexicon[str] = Lexicon(
            [
                (tag, text, lang)
                for tag, table in tag_phrases.items()
                for lang, texts in table.items()
                for text in texts
            ],
            max_gap=max_gap,
        )

    def tags(self, speech: str | Utterance | None) -> list[str]:
        """The tags heard in `speech`, sorted, each once."""
        utterance = speech if isinstance(speech, Utterance) else Utterance.read(speech)
        if utterance.empty:
            return []
        return sorted({hit.tag for hit in self._lexicon.find(utterance)})
