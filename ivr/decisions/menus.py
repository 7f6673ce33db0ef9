"""What a caller's keys or words mean at a prompt. Pure functions, tested without Flask."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ivr.config.models import CrisisRule, Menu, MenuItem
from ivr.decisions.understanding import spoken_choice, yes_or_no
from ivr.language.text import Utterance

SPOKEN_DIGITS = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "to": "2",
    "too": "2",
    "three": "3",
    "four": "4",
    "for": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "cero": "0",
    "uno": "1",
    "una": "1",
    "dos": "2",
    "tres": "3",
    "cuatro": "4",
    "cinco": "5",
    "seis": "6",
    "siete": "7",
    "ocho": "8",
    "nueve": "9",
}
"""Number words a caller may say instead of pressing a key."""

MAX_INPUT_CHARS = 400
"""Longer Digits or SpeechResult values are cut before matching (fuzzing, not callers)."""


def normalise(text: str) -> str:
    """Lower case, no accents, no punctuation, single spaces: 'Kill MYSELF!' -> 'kill myself'."""
    text = unicodedata.normalize("NFKD", text[:MAX_INPUT_CHARS])
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"[^a-z0-9]+", " ", text)
    return text.strip()


def _phrase_pattern(words: tuple[str, ...]) -> re.Pattern[str] | None:
    cleaned = sorted({normalise(w) for w in words if normalise(w)}, key=len, reverse=True)
    if not cleaned:
        return None
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in cleaned) + r")\b")


class CrisisMatcher:
    """Finds crisis words in speech, in any language, and says which rule they belong to."""

    def __init__(self, rules: tuple[CrisisRule, ...]) -> None:
        self._rules = [(rule, _phrase_pattern(rule.words.all())) for rule in rules]

    def match(self, speech: str | None) -> CrisisRule | None:
        """The first rule (in config order) whose words appear in `speech`."""
        if not speech:
            return None
        text = normalise(speech)
        for rule, pattern in self._rules:
            if pattern is not None and pattern.search(text):
                return rule
        return None


@dataclass(frozen=True)
class Chosen:
    item: MenuItem


@dataclass(frozen=True)
class Invalid:
    """The caller pressed or said something that is not a choice here."""

    key: str | None


@dataclass(frozen=True)
class NoInput:
    """Silence (Twilio's Gather timed out)."""


@dataclass(frozen=True)
class Repeat:
    """The caller asked to hear the choices again (star)."""


Choice = Chosen | Invalid | NoInput | Repeat


def first_key(digits: str | None) -> str | None:
    """The first key pressed, or None when nothing usable was pressed."""
    if not digits:
        return None
    return digits.strip()[:1] or None


def choose(menu: Menu, digits: str | None, speech: str | None) -> Choice:
    """Map keys (first key wins) or spoken words onto an item of `menu`."""
    key = first_key(digits)
    if key is not None:
        if key == "*":
            return Repeat()
        for item in menu.items:
            if item.key == key:
                return Chosen(item)
        return Invalid(key if key.isdigit() or key in "*#" else None)
    if speech and speech.strip():
        return _choose_by_speech(menu, speech)
    return NoInput()


def _choose_by_speech(menu: Menu, speech: str) -> Choice:
    text = normalise(speech)
    for item in menu.items:
        pattern = _phrase_pattern(item.keywords.all())
        if pattern is not None and pattern.search(text):
            return Chosen(item)
    # A number word counts only when the whole utterance is a choice ("two please"), never
    # inside a sentence ("I'd like to speak to someone" is not the key 2).
    key = spoken_choice(Utterance.read(speech))
    for item in menu.items:
        if item.key == key:
            return Chosen(item)
    return Invalid(None)


def digits_from(digits: str | None, speech: str | None, limit: int = 15) -> str:
    """Keyed digits, or digits spoken ('five two oh...', '520-555-0123'); at most `limit`."""
    if digits:
        return "".join(ch for ch in digits[:MAX_INPUT_CHARS] if ch.isdigit())[: limit + 1]
    if not speech:
        return ""
    out = []
    for word in normalise(speech).split():
        if word.isdigit():
            out.append(word)
        elif word in SPOKEN_DIGITS:
            out.append(SPOKEN_DIGITS[word])
    return "".join(out)[: limit + 1]


def yes_no(digits: str | None, speech: str | None) -> bool | None:
    """1 / 'yes' / 'sí' -> True, 2 / 'no' -> False, anything else -> None."""
    key = first_key(digits)
    if key == "1":
        return True
    if key == "2":
        return False
    return yes_or_no(Utterance.read(speech))
