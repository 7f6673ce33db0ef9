"""Crisis screening: does what the caller said mean someone may be in danger, and which line?

Rules come from config in order (911 before 988, so an overdose is 911 even when the caller
also says they want to die), unless the two phrases share a word and the longer one turns it
back on the caller ("is threatening to kill himself" is 988, not a threat to others), or the
911 phrase names only a means (a rule's `means`: "I have a gun and I want to end it" is 988; "a
man with a gun outside" stays 911). Each rule has `words`, phrases that connect the caller at
once, and `maybe`, phrases that only offer the line. A phrase of `words` right after a negation
("I'm not going to kill myself") is treated as `maybe`: when unsure, offer the line rather
than miss it; a `maybe` phrase right after a negation ("I'm not in danger") counts for
nothing. A hit with a word inside an idiom ("this traffic light is killing me", "me muero de
hambre") does not count.

Phrases are what operators know callers say; callers say more. When no phrase connects the
caller, a second layer (`NearbyWords`, config `understanding.nearby`) reads the sentence for
co-occurrence: a harm word ("pills", "shot", "kill", "pastillas", "matar") with a person
("my son", "she", "yo") or an intent ("took", "wants to", "se tomó", "quiere") within a few
words. All the kinds its harm group
asks for near -> connect; one of its `offer_with` kinds near -> offer the line. A thing close
to the harm word ("my phone died", "cut the grass", "matando las llantas"), a calm phrase, an
idiom, or a negation (-> offer) keeps the everyday sentences everyday. Its words are config.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Protocol

from ivr.decisions.understanding import language_of
from ivr.language.lexicon import DEFAULT_MAX_GAP, Hit, Lexicon
from ivr.language.text import Utterance, words

NEGATION_WINDOW = {"en": 3, "es": 1}
"""How many words before a crisis phrase a negation may stand and still turn it into an offer.

English puts helpers between ("not going to kill myself"); Spanish puts "no" right before the
phrase ("no me quiero matar"), and a wider window would catch another verb's negation ("ya no
aguanto, me voy a matar", "no puedo más, me quiero matar").
"""


_NOT_NEGATING = frozenset(
    {"stop", "help", "quit", "see", "find", "dejar", "dejo", "puedo", "veo", "encuentro"}
)
"""Words after which a negation negates them, not the crisis phrase ("can't stop", "don't see the
point", "no dejo")."""


_SPANISH_VERB_HELPERS = frozenset(
    {"me", "te", "nos", "lo", "la", "le", "les", "a", "voy", "vas", "va", "vamos", "van", "iba",
     "quiero", "quiere", "quieres", "queremos", "quieren", "pienso", "piensa", "piensan"}
)  # fmt: skip
"""Words that belong to the verb a Spanish "no" negates, between the "no" and the crisis word:
clitics and helpers ("no me voy a matar", "no lo va a hacer", "no quiero matarme"). A window
over any words would catch another verb's negation ("ya no aguanto, me voy a matar"); "se",
"que" and "puedo" are left out, being "sé" in "no sé, me quiero matar" and another verb in "no
puedo, me voy a matar"."""


_SUBJECTS = frozenset({"i", "he", "she", "we", "they"})
"""Subjects that start a new clause between a negation and a crisis phrase."""


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
    means: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Connect alone, but yield to another rule's connecting phrase in the same sentence."""


@dataclass(frozen=True)
class HarmGroup:
    """Harm words of the recall layer: their line, and the anchor kinds that must stand near."""

    line: str
    words: Mapping[str, Sequence[str]]
    transfer_with: Sequence[str]
    offer_with: Sequence[str] = ()
    means: bool = False  # only names a means: its findings yield (`Finding.means`)


@dataclass(frozen=True)
class NearbyWords:
    """The recall layer's words, per language: harm groups, anchors by kind, things, calm."""

    harms: Sequence[HarmGroup] = ()
    anchors: Mapping[str, Mapping[str, Sequence[str]]] = field(default_factory=dict)
    things: Mapping[str, Sequence[str]] = field(default_factory=dict)
    boundaries: Mapping[str, Sequence[str]] = field(default_factory=dict)
    calm: Mapping[str, Sequence[str]] = field(default_factory=dict)
    window: int = 5
    thing_window: int = 3


_THING = "<thing>"
_BOUNDARY = "<boundary>"
_CALM = "<calm>"
"""Tags of the recall layer's own word lists (anchor kinds in config are plain names)."""


@dataclass(frozen=True)
class Finding:
    """A crisis phrase heard: the rule (index in config), its line, the verdict, the language."""

    rule: int
    line: str
    verdict: Verdict
    lang: str
    phrase: str
    negated: bool = False  # a connecting phrase said after a negation, so only an offer
    # Found by words that only name a means (a rule's `means`, a `means` harm group): another
    # rule's connecting phrase in the sentence, or a learned reader sure of another line, wins.
    means: bool = False
    # Told as the past, at least a month back (`understanding.long_ago`): "the fire at the old
    # mill last spring". The learned reader drops it when it reads everyday talk.
    past: bool = False
    # First and last word of the phrase in the sentence (None: not from a phrase).
    span: tuple[int, int] | None = field(default=None, compare=False)
    # First and last word of what another line's phrase told as the past, with its long-ago
    # words, that yielded to this one ("se tomó muchas pastillas hace dos años" in "... y ahora
    # dice que se quiere morir"): the second reader does not take those words for now.
    yielded: tuple[int, int] | None = field(default=None, compare=False)


class SecondReader(Protocol):
    """Weighs what the phrases found with another way of reading the sentence
    (`ivr.decisions.crisis_learned.LearnedReader`)."""

    def weigh(
        self, utterance: Utterance, found: Finding | None, lines: Sequence[str], prefer_lang: str
    ) -> Finding | None: ...


class CrisisScreen:
    """Screens speech and transcripts against the configured crisis lexicon."""

    def __init__(
        self,
        rules: Sequence[RuleWords],
        negations: Mapping[str, Sequence[str]],
        idioms: Mapping[str, Sequence[str]],
        max_gap: int = DEFAULT_MAX_GAP,
        nearby: NearbyWords | None = None,
        second: SecondReader | None = None,
        long_ago: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.lines = [rule.line for rule in rules]
        self._second = second
        self._phrases: Lexicon[tuple[int, Verdict, bool]] = Lexicon(
            [
                ((index, verdict, means), text, lang)
                for index, rule in enumerate(rules)
                for verdict, means, table in (
                    (Verdict.TRANSFER, False, rule.words),
                    (Verdict.OFFER, False, rule.maybe),
                    (Verdict.TRANSFER, True, rule.means),
                )
                for lang, texts in table.items()
                for text in texts
            ],
            max_gap=max_gap,
        )
        self._idioms: Lexicon[None] = Lexicon(
            [(None, text, lang) for lang, texts in idioms.items() for text in texts],
            max_gap=max_gap + 1,
        )
        self._long_ago: Lexicon[None] = Lexicon(
            [(None, text, lang) for lang, texts in (long_ago or {}).items() for text in texts],
            max_gap=max_gap,
        )
        self._negations = {
            lang: {w for text in texts for w in words(text)} for lang, texts in negations.items()
        }
        self._nearby = nearby or NearbyWords()
        index_of: dict[str, int] = {}
        for index, line in enumerate(self.lines):
            index_of.setdefault(line, index)
        unknown = [g.line for g in self._nearby.harms if g.line not in index_of]
        if unknown:
            raise ValueError(f"nearby harm lines without a crisis rule: {unknown}")
        self._harm_rule = [index_of[g.line] for g in self._nearby.harms]
        near = self._nearby
        self._harms: Lexicon[tuple[str, int]] = Lexicon(
            [
                (("harm", index), text, lang)
                for index, group in enumerate(near.harms)
                for lang, texts in group.words.items()
                for text in texts
            ],
            max_gap=max_gap,
        )
        # Anchors, things and calm phrases are only looked for around a harm word: most
        # sentences have none, and then this bigger lexicon is never read.
        self._context: Lexicon[tuple[str, int]] = Lexicon(
            [
                ((kind, -1), text, lang)
                for kind, table in (
                    *near.anchors.items(),
                    (_THING, near.things),
                    (_BOUNDARY, near.boundaries),
                    (_CALM, near.calm),
                )
                for lang, texts in table.items()
                for text in texts
            ],
            max_gap=max_gap,
        )

    def screen(self, speech: str | Utterance | None, prefer_lang: str = "en") -> Finding | None:
        """The most urgent finding in `speech` (a transfer before an offer, config order).

        Between equally urgent phrases of both languages, `prefer_lang`'s wins. The finding is
        explained in the language the sentence is clearly in, whatever the phrase's: "mi tía
        está teniendo un seizure" is answered in Spanish.
        """
        utterance = speech if isinstance(speech, Utterance) else Utterance.read(speech)
        if utterance.empty:
            return None
        found = self._weighed(utterance, prefer_lang)
        if found is not None:
            lang = language_of(utterance, found.lang)
            if lang != found.lang:
                found = replace(found, lang=lang)
        return found

    def _weighed(self, utterance: Utterance, prefer_lang: str) -> Finding | None:
        """The phrases' finding, weighed by the second reader when there is one."""
        found = self._by_phrases(utterance, prefer_lang)
        if self._second is None:
            return found
        weighed = self._second.weigh(utterance, found, self.lines, prefer_lang)
        if (
            weighed is not None
            and weighed.verdict is Verdict.TRANSFER
            and (found is None or found.verdict is not Verdict.TRANSFER)
        ):
            idioms = self._idioms_over_phrases(utterance)
            if idioms:
                # The words that sounded like a crisis were an idiom ("mi tía es fuego en la
                # cocina"): the second reader connects (or turns an offer into a connect) only
                # if the other words still say so.
                again = self._second.weigh(without(utterance, idioms), None, self.lines, prefer_lang)
                if again is None or again.verdict is not Verdict.TRANSFER or again.line != weighed.line:
                    return replace(weighed, verdict=Verdict.OFFER, phrase=f"{weighed.phrase} (idiom)")
        return weighed

    def _idioms_over_phrases(self, utterance: Utterance) -> list[tuple[int, int]]:
        """The idioms a crisis phrase was heard inside (none when no phrase was)."""
        spans = [(h.start, h.end) for h in self._idioms.find(utterance)]
        covering = {
            span
            for hit in self._phrases.find(utterance)
            for span in spans
            if _inside(hit.positions, [span])
        }
        return sorted(covering)

    def _by_phrases(self, utterance: Utterance, prefer_lang: str) -> Finding | None:
        """What the phrases and the recall layer find (the floor the second reader weighs)."""
        hits = self._phrases.find(utterance)
        harm_hits = self._harms.find(utterance) if self._nearby.harms else []
        if not hits and not harm_hits:
            return None
        idiom_spans = [(h.start, h.end) for h in self._idioms.find(utterance)]
        past = [(h.start, h.end) for h in self._long_ago.find(utterance)]
        heard: list[tuple[Finding, tuple[int, ...]]] = []
        for hit in hits:
            if _inside(hit.positions, idiom_spans):
                continue
            index, verdict, means = hit.tag
            negated = self._negated(utterance, hit)
            if negated:
                if verdict is Verdict.OFFER:
                    # A hint denied is no hint ("I'm not in danger, I'm falling apart").
                    continue
                verdict = Verdict.OFFER
            finding = Finding(
                index,
                self.lines[index],
                verdict,
                hit.lang,
                hit.phrase.text,
                negated=negated,
                means=means,
                span=(hit.start, hit.end),
            )
            heard.append((finding, hit.positions))
        heard = _told_as_the_past(utterance, heard, past, self._connecting_rules)
        connecting = {f.rule for f, _ in heard if f.verdict is Verdict.TRANSFER and not f.means}
        best: Finding | None = None
        yielded: list[int] = []
        for finding, positions in heard:
            if any(_refines(utterance, other, finding, positions) for other in heard):
                continue
            if finding.means and connecting - {finding.rule}:
                # "I have a gun and I want to die": the means yields to the 988 phrase
                if finding.past:
                    # With the long-ago words it was told with (the nearest).
                    start, end = min(past, key=lambda s: min(abs(s[0] - p) for p in positions))
                    yielded.extend((*positions, start, end))
                continue
            if best is None or _rank(finding, prefer_lang) < _rank(best, prefer_lang):
                best = finding
        if best is not None and yielded:
            best = replace(best, yielded=(min(yielded), max(yielded)))
        if not harm_hits or (best is not None and best.verdict is Verdict.TRANSFER):
            return best
        near_hits = harm_hits + self._context.find(utterance)
        for finding in self._nearby_findings(utterance, near_hits, idiom_spans):
            if best is None or _rank(finding, prefer_lang) < _rank(best, prefer_lang):
                best = finding
        return best

    def _connecting_rules(self, utterance: Utterance) -> set[int]:
        """The rules whose connecting phrases are heard in `utterance` (idioms aside)."""
        if utterance.empty:
            return set()
        idiom_spans = [(h.start, h.end) for h in self._idioms.find(utterance)]
        return {
            hit.tag[0]
            for hit in self._phrases.find(utterance)
            if hit.tag[1] is Verdict.TRANSFER
            and not _inside(hit.positions, idiom_spans)
        }

    def _nearby_findings(
        self,
        utterance: Utterance,
        near_hits: list[Hit[tuple[str, int]]],
        idiom_spans: list[tuple[int, int]],
    ) -> Iterator[Finding]:
        """The recall layer: each harm word with the anchors its group asks for near it."""
        near = self._nearby
        calm_spans = [*idiom_spans, *((h.start, h.end) for h in near_hits if h.tag[0] == _CALM)]
        for hit in near_hits:
            kind, group_index = hit.tag
            if kind != "harm":
                continue
            if _inside(hit.positions, calm_spans):
                continue
            # Anchors of the harm word's language, outside the harm words themselves.
            others = [
                h
                for h in near_hits
                if h.tag[0] != "harm"
                and h.lang == hit.lang
                and not set(h.positions) & set(hit.positions)
            ]
            if self._claimed_by_a_thing(hit, others):
                continue
            kinds = {
                h.tag[0]
                for h in others
                if h.tag[0] in near.anchors and _distance(hit, h) <= near.window
            }
            group = near.harms[group_index]
            negated = False
            if all(k in kinds for k in group.transfer_with):
                negated = self._negated(utterance, hit)
                verdict = Verdict.OFFER if negated else Verdict.TRANSFER
            elif any(k in kinds for k in group.offer_with):
                verdict = Verdict.OFFER
            else:
                continue
            rule = self._harm_rule[group_index]
            yield Finding(
                rule,
                self.lines[rule],
                verdict,
                hit.lang,
                f"nearby: {hit.phrase.text}",
                negated=negated,
                means=group.means,
                span=(hit.start, hit.end),
            )

    def _claimed_by_a_thing(
        self, hit: Hit[tuple[str, int]], others: list[Hit[tuple[str, int]]]
    ) -> bool:
        """A thing within `thing_window` words, in the same clause: "my phone died"."""
        boundaries = [h.start for h in others if h.tag[0] == _BOUNDARY]
        for other in others:
            if other.tag[0] != _THING or _distance(hit, other) > self._nearby.thing_window:
                continue
            low, high = sorted((other.start, hit.start))
            if not any(low < b < high for b in boundaries):
                return True
        return False

    def _negated(self, utterance: Utterance, hit: Hit[Any]) -> bool:
        negations = self._negations.get(hit.lang, set())
        start = hit.start - NEGATION_WINDOW.get(hit.lang, 2)
        if hit.lang == "es":
            helper = hit.start - 1
            while helper >= 0 and utterance.words[helper] in _SPANISH_VERB_HELPERS:
                helper -= 1
            start = min(start, helper)  # the word before the verb's helpers may be its "no"
        start = max(0, start)
        # "I can't, I just want it all to be over": a subject after the negation starts
        # another clause, so the negation is not this phrase's.
        for i in range(hit.start - 1, start - 1, -1):
            if utterance.words[i] in _SUBJECTS:
                start = i + 1
                break
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


_REFLEXIVE = frozenset(
    "myself himself herself themselves themself yourself ourselves se si mismo misma".split()
)
"""Words that turn an act back on the one who does it ("kill himself", "se corta")."""

_SPANISH_OWN = frozenset({"me"})
"""In a Spanish phrase, "me" before the verb is the caller's own act ("me rasguño las muñecas
hasta que sangran" is self-harm, not a wound for 911)."""


def _refines(
    utterance: Utterance,
    other: tuple[Finding, tuple[int, ...]],
    finding: Finding,
    positions: tuple[int, ...],
) -> bool:
    """True when another rule's connecting phrase reads the same words as self-harm.

    "threatening to kill himself": the 911 threat ("threatening ... kill") and the 988 phrase
    ("kill ... himself") share "kill"; the one that also covers "himself" says whose life.
    "se corta con navajas": "navajas" alone is a weapon, "se corta ... navajas" is self-harm.
    Pills taken "para matarme" stay 911: no reflexive word, the overdose comes first.
    A longer phrase refined away must have stepped over the reflexive word the other covers.
    """
    found, covered = other
    if found.rule == finding.rule or found.verdict is not Verdict.TRANSFER:
        return False
    if not set(covered) & set(positions):
        return False
    own = _REFLEXIVE | (_SPANISH_OWN if found.lang == "es" else frozenset())
    reflexive = [p for p in covered if p not in positions and utterance.words[p] in own]
    if len(covered) >= len(positions):
        return bool(reflexive)
    # A longer phrase that stepped over the reflexive word: "I kill myself, my family better
    # without me" is not "kill my family".
    return any(min(positions) < p < max(positions) for p in reflexive)


def without(utterance: Utterance, spans: Sequence[tuple[int, int]]) -> Utterance:
    """The utterance without the words of `spans` (first and last word of each, inclusive)."""
    return Utterance.read(
        " ".join(
            word
            for i, word in enumerate(utterance.words)
            if not any(start <= i <= end for start, end in spans)
        )
    )


def _inside(positions: Sequence[int], spans: Sequence[tuple[int, int]]) -> bool:
    """True when a word at one of `positions` lies in one of `spans` (an idiom, a calm phrase)."""
    return any(start <= p <= end for p in positions for start, end in spans)


def _distance(a: Hit[tuple[str, int]], b: Hit[tuple[str, int]]) -> int:
    """Words between two hits (0 when they touch or overlap)."""
    if b.start > a.end:
        return b.start - a.end - 1
    if a.start > b.end:
        return a.start - b.end - 1
    return 0


def _rank(finding: Finding, prefer_lang: str) -> tuple[int, int, int, int]:
    """Most urgent first, then the earlier rule, the caller's language, and the longer phrase
    ("suicide prevention hotline" over "suicide": the second reader weighs one word sooner)."""
    urgency = 0 if finding.verdict is Verdict.TRANSFER else 1
    length = 0 if finding.span is None else finding.span[1] - finding.span[0] + 1
    return (urgency, finding.rule, 0 if finding.lang == prefer_lang else 1, -length)


_PAST_AFTER = 3
"""Most words between a crisis phrase and the long-ago words told after it ("got shot two
years ago")."""

_PAST_BEFORE = 1
"""Most words between long-ago words and a crisis phrase told after them ("last year he
overdosed", "last year and wanted to die")."""

_PAST_OPENING = 10
"""Most words between long-ago words that open what is told and a crisis phrase in it ("el año
pasado estuve en un lugar muy oscuro y me quería morir")."""

_OPENERS = frozenset({"and", "so", "well", "like", "y", "pues", "bueno", "este"})
"""Words after which long-ago words still open what is told."""

_NOW = frozenset(
    {"now", "today", "tonight", "again", "still", "currently", "yesterday", "just", "but", "anyway",
     "anyways", "meanwhile", "ahora", "ahorita", "hoy", "otra", "nuevo", "todavia", "sigue",
     "siguen", "ayer", "pero", "anoche"}
)  # fmt: skip
"""Words that bring a story back to now: a crisis phrase after them is not told as the past."""


def _in_their_time(words: Sequence[str], past: tuple[int, int], phrase_start: int) -> bool:
    """Whether a phrase starting at `phrase_start` is told in the time of the long-ago words at
    `past`: just after them, or after them opening what is told ("last year I was in a dark
    place and wanted to die"), with no word bringing the story back to now between. Long-ago
    words closing another event ("my mom died last year, my brother just overdosed") tell only
    that event."""
    start, end = past
    between = words[end + 1 : phrase_start]
    if len(between) > _PAST_BEFORE:
        opening = start == 0 or words[start - 1] in _OPENERS or words[start - 1] in _NOW
        if not opening or len(between) > _PAST_OPENING:
            return False
    return phrase_start > end and not _NOW.intersection(between)


def _told_as_the_past(
    utterance: Utterance,
    heard: list[tuple[Finding, tuple[int, ...]]],
    past: list[tuple[int, int]],
    again: Callable[[Utterance], set[int]],
) -> list[tuple[Finding, tuple[int, ...]]]:
    """A connecting phrase the long-ago words are told with ("he got shot two years ago and now
    says he wants to die") names no more than a means: it yields to another line's phrase of
    now, and the learned reader may move it to the line it reads ("she overdosed on purpose
    last year and says she'll try it again": 988). Alone and unread otherwise, it still
    connects. Not when the same line's phrase is heard again after the long-ago words ("he got
    shot last month and now he's been shot again"), nor for a phrase further away ("my mom died
    last year, my brother just overdosed")."""
    if not past:
        return heard
    out = []
    for finding, positions in heard:
        told_then = finding.verdict is Verdict.TRANSFER and any(
            0 <= start - max(positions) - 1 <= _PAST_AFTER
            or _in_their_time(utterance.words, (start, end), min(positions))
            or start <= min(positions) <= end  # inside them: "el incendio del año pasado"
            for start, end in past
        )
        if told_then:
            # Heard again in what follows both the long-ago words and the phrase itself.
            after = max(*(end for _, end in past), *positions) + 1
            rest = Utterance.read(" ".join(utterance.words[after:]))
            told_then = finding.rule not in again(rest)
        out.append((replace(finding, means=True, past=True) if told_then else finding, positions))
    return out
