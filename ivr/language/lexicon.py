"""Phrases operators write in config, compiled once, found in what a caller said.

A phrase is words in order. Each word is matched by its stem in the phrase's language
("kill myself" also finds "killing myself"); a word written `=word` must be that exact word
("me =quiero matar" is not "me quiere matar"); `a|b` accepts either word at that place. Up to
`max_gap` other words may come between two words of a phrase ("want to just die"), and up to
WIDE_GAP before a word written after `...` ("swallowed ... pills"), and none before a word
written after `+` ("=es + =fuego" is "mi tía es fuego", not "es un fuego").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise, product
from typing import Generic, TypeVar

from ivr.language.text import Utterance, fold, stem, words

T = TypeVar("T")

DEFAULT_MAX_GAP = 2
"""Words allowed between two words of a phrase."""

WIDE_GAP = 5
"""Words allowed before a word written after `...` ("swallowed ... pills")."""


_MAX_FORMS = 32
"""Forms one phrase may be found as (each exact word with a joined pronoun adds some)."""


class PhraseError(ValueError):
    """A phrase in config cannot be read (the loader names the file, line and field)."""


@dataclass(frozen=True)
class Slot:
    """One place in a phrase: the stems or exact words accepted there."""

    stems: frozenset[str]
    exact: frozenset[str]
    wide: bool = False  # written after "...": up to WIDE_GAP words may come before it
    adjacent: bool = False  # right after the word before it (a pronoun split off a verb)

    def accepts(self, word: str, word_stem: str) -> bool:
        return word_stem in self.stems or word in self.exact


@dataclass(frozen=True)
class Phrase:
    """A compiled phrase of one language."""

    text: str
    lang: str
    slots: tuple[Slot, ...]
    # Every sequence of slots the phrase may be found as: `slots` first, then every other
    # combination of the places' choices, where an exact word carrying a Spanish pronoun
    # ("=matarme", read "matar me") is a verb slot and an adjacent pronoun slot.
    forms: tuple[tuple[Slot, ...], ...] = ()


Form = tuple[Slot, ...]


@lru_cache(maxsize=16384)
def compile_phrase(text: str, lang: str) -> Phrase:
    """Read a phrase as written in config; raise PhraseError when nothing is left of it.

    Remembered per (text, lang): a Phrase is immutable and depends on nothing else, so a
    second app in one process (tests, a reload) reuses the first one's work; errors are not
    remembered (lru_cache does not keep exceptions)."""
    _check_no_space_inside_a_list(text)
    places: list[list[tuple[Slot, ...]]] = []
    wide = False
    next_to = False  # "+": the next word right after the one before, nothing between
    for place in text.split():
        if place == "...":
            wide = True
            continue
        if place == "+":
            next_to = bool(places)
            continue
        alternatives = [a for a in place.split("|") if a]
        if len(alternatives) == 1 and not alternatives[0].startswith("="):
            # A plain word may become several ("matarme" -> matar me, "self-harm" -> self harm).
            for word in words(alternatives[0]):
                by_stem, exact_word = _stem_or_word(word, lang)
                places.append(
                    [(Slot(frozenset(by_stem), frozenset(exact_word), wide, adjacent=next_to),)]
                )
                wide = next_to = False
            continue
        stems: set[str] = set()
        exact: set[str] = set()
        split: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for alternative in alternatives:
            if alternative.startswith("="):
                folded = fold(alternative[1:])
                if " " in folded or not folded:
                    raise PhraseError(f"{alternative!r} in {text!r} must be one word")
                read = words(folded)
                if len(read) > 1:
                    # "=morirse" is read "morir se": the verb, then its pronoun right after.
                    split[tuple(read[1:])].add(read[0])
                else:
                    exact.add(folded)
            else:
                found = words(alternative)
                if not found or " " in fold(alternative):
                    raise PhraseError(f"{alternative!r} in {text!r} must be one word")
                # "suicidarme" in a list of words stands for its verb ("suicidar").
                by_stem, exact_word = _stem_or_word(found[0], lang)
                stems |= by_stem
                exact |= exact_word
        options: list[tuple[Slot, ...]] = []
        if stems or exact:
            options.append((Slot(frozenset(stems), frozenset(exact), wide, adjacent=next_to),))
        for pronouns, verbs in sorted(split.items()):
            options.append(
                (
                    Slot(frozenset(), frozenset(verbs), wide, adjacent=next_to),
                    *(Slot(frozenset(), frozenset({p}), adjacent=True) for p in pronouns),
                )
            )
        if options:
            places.append(options)
            wide = next_to = False
    if not places:
        raise PhraseError(f"{text!r} has no words")
    forms = tuple(
        tuple(slot for option in choice for slot in option) for choice in product(*places)
    )
    if len(forms) > _MAX_FORMS:
        raise PhraseError(f"{text!r} has too many joined pronouns: split some into two phrases")
    return Phrase(text=text, lang=lang, slots=forms[0], forms=forms)


def _check_no_space_inside_a_list(text: str) -> None:
    """Two neighbouring places that share a word ("=tirar|=aventar =basura|=la =basura",
    "a year|few years|couple years ago") were meant as alternatives with a space inside one:
    written so, they need "basura basura" and never match what callers say."""
    places = text.split()
    for listed, then in pairwise(places):
        choices = {fold(w.lstrip("=")) for w in listed.split("|")}
        following = {fold(w.lstrip("=")) for w in then.split("|")}
        shared = (choices & following) - {""}
        if shared and max(len(choices), len(following)) > 1:
            raise PhraseError(
                f"{text!r}: {then!r} follows {listed!r} and shares {sorted(shared)} with it; an "
                "alternative cannot hold a space: write two phrases"
            )


def _stem_or_word(word: str, lang: str) -> tuple[set[str], set[str]]:
    """Match by stem, unless the stem is so short it is a word of the other language too
    (Spanish "herido" -> "her"): then only the word itself matches."""
    stemmed = stem(word, lang)
    if len(stemmed) < 4 and stemmed != word:
        return set(), {word}
    return {stemmed}, set()


@dataclass(frozen=True)
class Hit(Generic[T]):
    """A phrase found in an utterance: what it stands for and the words it covers."""

    tag: T
    phrase: Phrase
    start: int
    end: int  # index of the last word covered (inclusive)
    positions: tuple[int, ...]

    @property
    def lang(self) -> str:
        return self.phrase.lang


class Lexicon(Generic[T]):
    """Many tagged phrases in both languages, indexed by their first word for speed."""

    def __init__(self, entries: Iterable[tuple[T, str, str]], max_gap: int = DEFAULT_MAX_GAP):
        """`entries` are (tag, phrase text, language)."""
        self.max_gap = max_gap
        self._by_stem: dict[str, dict[str, list[tuple[T, Phrase, Form]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self._by_word: dict[str, dict[str, list[tuple[T, Phrase, Form]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self.size = 0
        for tag, text, lang in entries:
            phrase = compile_phrase(text, lang)
            for form in phrase.forms:
                for s in form[0].stems:
                    self._by_stem[lang][s].append((tag, phrase, form))
                for w in form[0].exact:
                    self._by_word[lang][w].append((tag, phrase, form))
            self.size += 1

    def find(self, utterance: Utterance) -> list[Hit[T]]:
        """Every phrase found in `utterance` (each phrase once, at its first place)."""
        hits: list[Hit[T]] = []
        seen: set[int] = set()
        words = utterance.words
        for lang in sorted(set(self._by_stem) | set(self._by_word)):
            stems = utterance.stems[lang]
            by_stem = self._by_stem.get(lang, {})
            by_word = self._by_word.get(lang, {})
            for index, word in enumerate(words):
                for candidates in (by_stem.get(stems[index]), by_word.get(word)):
                    if not candidates:
                        continue
                    for tag, phrase, form in candidates:
                        if id(phrase) in seen:
                            continue
                        positions = _match_from(form, words, stems, index, self.max_gap)
                        if positions is not None:
                            seen.add(id(phrase))
                            hits.append(Hit(tag, phrase, positions[0], positions[-1], positions))
        return hits


def _match_from(
    form: Form, found: tuple[str, ...], stems: tuple[str, ...], start: int, max_gap: int
) -> tuple[int, ...] | None:
    """Positions of the words of a phrase's form when it starts at `start`, or None."""
    if len(form) == 1:
        return (start,)
    rest = _match_rest(form, 1, start, found, stems, max_gap)
    return None if rest is None else (start, *rest)


def _match_rest(
    slots: tuple[Slot, ...],
    slot: int,
    after: int,
    found: tuple[str, ...],
    stems: tuple[str, ...],
    max_gap: int,
) -> tuple[int, ...] | None:
    """Positions of slots `slot`... after word `after`: the earliest word each can take such
    that the rest still fits (plain recursion: cheaper than generators on every sentence)."""
    if slot == len(slots):
        return ()
    current = slots[slot]
    gap = 0 if current.adjacent else WIDE_GAP if current.wide else max_gap
    for index in range(after + 1, min(after + 2 + gap, len(found))):
        if current.accepts(found[index], stems[index]):
            rest = _match_rest(slots, slot + 1, index, found, stems, max_gap)
            if rest is not None:
                return (index, *rest)
    return None
