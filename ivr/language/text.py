"""How a caller's words are read: folded, split into words, stemmed per language.

Pure and cheap: stems are cached per word, so a long lexicon costs a dictionary look-up per
word of speech. The Snowball stemmers (the `snowballstemmer` package) do the stemming.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

MAX_INPUT_CHARS = 400
"""Longer speech is cut before it is read (fuzzing, not callers)."""

LANGUAGES = ("en", "es")
"""Languages the line understands."""

_STEMMER_NAMES = {"en": "english", "es": "spanish"}

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'"})

_CONTRACTIONS = (
    (re.compile(r"\bcan'?t\b"), "can not"),
    (re.compile(r"\bwon'?t\b"), "will not"),
    (re.compile(r"\bain'?t\b"), "is not"),
    (
        re.compile(r"\b(do|does|did|is|are|was|were|could|should|would|have|has|had|must)n'?t\b"),
        r"\1 not",
    ),
    (re.compile(r"\bi'?m\b"), "i am"),
    (re.compile(r"\bgonna\b"), "going to"),
    (re.compile(r"\bwanna\b"), "want to"),
    (re.compile(r"\bgotta\b"), "got to"),
    (re.compile(r"'(re)\b"), " are"),
    (re.compile(r"'(ve)\b"), " have"),
    (re.compile(r"'(ll)\b"), " will"),
    (re.compile(r"'(d)\b"), " would"),
    (re.compile(r"'s\b"), ""),
    (re.compile(r"\b(she|he|it|that|there|what|who|where|here)s\b"), r"\1"),
    (re.compile(r"\bive\b"), "i have"),
    (re.compile(r"\b(you|they)re\b"), r"\1 are"),
    # Speech recognition splits some words: "my self", "over dosed".
    (re.compile(r"\b(my|him|her|your|it|one) self\b"), r"\1self"),
    (re.compile(r"\b(them|our|your) selves\b"), r"\1selves"),
    (re.compile(r"\bover dos(e|ed|es|ing)\b"), r"overdos\1"),
)
"""English contractions, with or without the apostrophe speech recognition often drops."""

_CLITIC = re.compile(
    r"^(\w{3,}(?:ar|er|ir|ando|iendo))(?:(me|te|se|nos)(lo|la|le|los|las|les)"
    r"|(me|te|se|nos|lo|la|le|los|las|les))$"
)
"""Spanish pronouns joined to an infinitive or gerund: matarme -> matar me, and two of them:
tomármelas -> tomar me las."""


def fold(text: str) -> str:
    """Lower case, no accents, contractions expanded, only letters and digits between spaces."""
    text = unicodedata.normalize("NFKD", text[:MAX_INPUT_CHARS].translate(_APOSTROPHES))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    return re.sub(r"[^a-z0-9]+", " ", text).strip()


_FILLERS = frozenset("um umm uhm uh uhh hmm hm mm mmm mhm er erm ah ahh eh ehh em".split())
"""Hesitation sounds speech recognition writes down; they carry no meaning and are dropped so
they do not stretch the gap between a phrase's words ("light is um out")."""

_O_SEA = re.compile(r"\bo sea\b")
"""Spanish 'o sea' ("I mean"), a filler as well."""


def words(text: str) -> list[str]:
    """The folded words of `text`, without fillers, with Spanish enclitic pronouns split off."""
    out: list[str] = []
    for word in _O_SEA.sub(" ", fold(text)).split():
        if word in _FILLERS:
            continue
        joined = _CLITIC.match(word) if len(word) > 6 else None
        if joined:
            out += [part for part in joined.groups() if part]
        else:
            out.append(word)
    return out


@lru_cache(maxsize=8)
def _stemmer(lang: str) -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer(_STEMMER_NAMES[lang])


@lru_cache(maxsize=20000)
def stem(word: str, lang: str) -> str:
    """The Snowball stem of one folded word in `lang`."""
    return str(_stemmer(lang).stemWord(word))


@dataclass(frozen=True)
class Utterance:
    """One thing a caller said, read once: its words and their stems in each language."""

    raw: str
    words: tuple[str, ...]
    stems: dict[str, tuple[str, ...]]

    @classmethod
    def read(cls, text: str | None) -> Utterance:
        """Read speech (None or blank gives an empty utterance); the same words said at one
        step are read once (screening, then the menu choice)."""
        return _read((text or "")[:MAX_INPUT_CHARS])

    @property
    def empty(self) -> bool:
        return not self.words


@lru_cache(maxsize=256)
def _read(text: str) -> Utterance:
    found = tuple(words(text))
    return Utterance(
        raw=text,
        words=found,
        stems={lang: tuple(stem(w, lang) for w in found) for lang in LANGUAGES},
    )
