"""Crisis screening: does what the caller said mean someone may be in danger, and which line?

Rules come from config in order (911 before 988, so an overdose is 911 even when the caller
also says they want to die). Each rule has `words`, phrases that connect the caller at once,
and `maybe`, phrases that only offer the line. A phrase of `words` right after a negation
("I'm not going to kill myself") is treated as `maybe`: when unsure, offer the line rather
than miss it. A hit with a word inside an idiom ("this traffic light is killing me",
"me muero de hambre") does not count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from ivr.language.lexicon import DEFAULT_MAX_GAP, Hit, Lexicon
from ivr.language.text import Utterance, words

NEGATION_WINDOW = {"en": 3, "es": 1}
"""How many words before a crisis phrase a negation may stand and still turn it into an offer.

English puts helpers between ("not going to kill myself"); Spanish puts "no" right before the
phrase ("no me quiero matar"), and a wider window would catch another verb's negation ("ya no
aguanto, me voy a matar", "no puedo más, me quiero matar").
"""


_NOT_NEGATING = frozenset({"stop", "help", "quit", "dejar", "dejo", "puedo"})
"""Words after which a negation negates them, not the crisis phrase ("can't stop", "no dejo")."""


class Verdict(str, Enum):
    """What the line does with a crisis finding."""

    TRANSFER = "transfer"
    OFFER = "offer"


@dataclass(frozen=True)
class RuleWords:
    """The phrases of one crisis rule, per language."""

    line: str
    words: Mapping[str, Sequence[str]]
    maybe: Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class Finding:
    """A crisis phrase heard: the rule (index in config), its line, the verdict, the language."""

    rule: int
    line: str
    verdict: Verdict
    lang: str
    phrase: str


class CrisisScreen:
    """Screens speech and transcripts against the configured crisis lexicon."""

    def __init__(
        self,
        rules: Sequence[RuleWords],
        negations: Mapping[str, Sequence[str]],
        idioms: Mapping[str, Sequence[str]],
        max_gap: int = DEFAULT_MAX_GAP,
    ) -> None:
        self.lines = [rule.line for rule in rules]
        self._phrases: Lexicon[tuple[int, Verdict]] = Lexicon(
            [
                ((index, verdict), text, lang)
                for index, rule in enumerate(rules)
                for verdict, table in ((Verdict.TRANSFER, rule.words), (Verdict.OFFER, rule.maybe))
                for lang, texts in table.items()
                for text in texts
            ],
            max_gap=max_gap,
        )
        self._idioms: Lexicon[None] = Lexicon(
            [(None, text, lang) for lang, texts in idioms.items() for text in texts],
            max_gap=max_gap + 1,
        )
        self._negations = {
            lang: {w for text in texts for w in words(text)} for lang, texts in negations.items()
        }

    def screen(self, speech: str | Utterance | None, prefer_lang: str = "en") -> Finding | None:
        """The most urgent finding in `speech` (a transfer before an offer, config order).

        Between equally urgent phrases of both languages, `prefer_lang`'s wins.
        """
        utterance = speech if isinstance(speech, Utterance) else Utterance.read(speech)
        if utterance.empty:
            return None
        hits = self._phrases.find(utterance)
        if not hits:
            return None
        idiom_spans = [(h.start, h.end) for h in self._idioms.find(utterance)]
        best: Finding | None = None
        for hit in hits:
            if any(start <= p <= end for p in hit.positions for start, end in idiom_spans):
                continue
            index, verdict = hit.tag
            if verdict is Verdict.TRANSFER and self._negated(utterance, hit):
                verdict = Verdict.OFFER
            finding = Finding(index, self.lines[index], verdict, hit.lang, hit.phrase.text)
            if best is None or _rank(finding, prefer_lang) < _rank(best, prefer_lang):
                best = finding
        return best

    def _negated(self, utterance: Utterance, hit: Hit[tuple[int, Verdict]]) -> bool:
        negations = self._negations.get(hit.lang, set())
        window = NEGATION_WINDOW.get(hit.lang, 2)
        start = max(0, hit.start - window)
        # "can't stop thinking about dying" is no negation of it: skip "not" before stop/help.
        before = [
            word
            for i, word in enumerate(utterance.words[start : hit.start], start)
            if not (i + 1 < len(utterance.words) and utterance.words[i + 1] in _NOT_NEGATING)
        ]
        between = [
            utterance.words[i] for i in range(hit.start, hit.end + 1) if i not in hit.positions
        ]
        return any(w in negations for w in (*before, *between))


def _rank(finding: Finding, prefer_lang: str) -> tuple[int, int, int]:
    urgency = 0 if finding.verdict is Verdict.TRANSFER else 1
    return (urgency, finding.rule, 0 if finding.lang == prefer_lang else 1)
