"""The second reader of crisis screening: what a classifier learned from example sentences adds
to what the phrases found.

Phrases stay the floor: a phrase's finding is never lost, only weighed. The learned reader
(`ivr.language.classifier`, trained on config/examples.yaml) can:

- connect the caller when no phrase did, or a phrase only offered the line (not after a
  negation: "I'm not going to kill myself" stays an offer), and a crisis line is likely
  (`transfer_at`): "I've been saving up my pills and I have a plan" has no phrase,
  but its words are crisis words;
- offer the line when one is fairly likely (`offer_at`);
- drop a phrase told as the past (`Finding.past`: "the fire at the mill last spring, did
  they clean up the lot") when everyday talk is at least `offer_at` likely;
- soften a phrase that is most likely everyday talk: a phrase's connect becomes an offer when
  everyday talk is at least `soften_at` likely (the line is still one key away: "is the gun
  show a city event"), and is dropped only when everyday talk is all but certain
  (`clear_at`: "what time does the overdose awareness event start"); the six words either side
  of the phrase, read alone, may step that back one level (a crisis told after an errand
  stays connected, a crisis-like phrase in talk that is otherwise everyday is offered); a
  phrase's offer is dropped at `drop_at` ("my son plays shooting games");
- send a phrase's connect to a more urgent line (an earlier rule: 911 before 988) when that
  line is likely (`transfer_at`) in the words said of now (`Finding.yielded`: "se tomó muchas
  pastillas hace dos años" is not read again in "... y ahora dice que se quiere morir"), and to
  a less urgent one only when the phrase named no more than a means (`Finding.means`: "a gun"
  beside "so he can be with his late wife").

Everything here is pure: a sentence and the phrases' finding in, a finding out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ivr.config.models import EVERYDAY, Learned
from ivr.decisions.crisis import Finding, Verdict, without
from ivr.decisions.understanding import language_of, meaningful_words
from ivr.language.classifier import TextClassifier
from ivr.language.text import Utterance

_TURNS = frozenset(
    {"but", "also", "meanwhile", "anyway", "anyways", "plus", "pero", "tambien", "ademas",
     "mientras"}
)  # fmt: skip
"""Words that turn a caller's story to something else ("... my water bill, but also my husband
is on the floor"): each clause is read on its own as well."""


def _likeliest_line(odds: dict[str, float], lines: Sequence[str]) -> tuple[str | None, float]:
    """The crisis line the odds favour, and how likely it is (None: no line in the odds)."""
    return max(
        ((label, p) for label, p in odds.items() if label != EVERYDAY and label in lines),
        key=lambda pair: pair[1],
        default=(None, 0.0),
    )


def clauses(utterance: Utterance) -> list[Utterance]:
    """The parts of a sentence between turning words; none when there is only one part."""
    parts: list[list[str]] = [[]]
    for word in utterance.words:
        if word in _TURNS:
            if parts[-1]:
                parts.append([])
        else:
            parts[-1].append(word)
    parts = [p for p in parts if p]
    return [Utterance.read(" ".join(p)) for p in parts] if len(parts) > 1 else []


_AROUND = 6
"""Words either side of a phrase read again before softening it (`LearnedReader._calm_around`)."""

LEARNED = "learned"
"""The `phrase` of a finding that came from the learned reader (with its probability)."""


@dataclass(frozen=True)
class LearnedReader:
    """A classifier over crisis lines and `everyday`, and when to believe it (menus.yaml
    `understanding.learned`)."""

    classifier: TextClassifier
    at: Learned

    def weigh(
        self,
        utterance: Utterance,
        found: Finding | None,
        lines: Sequence[str],
        prefer_lang: str,
    ) -> Finding | None:
        """The phrases' finding weighed by the classifier (see the module's docstring)."""
        if meaningful_words(utterance) < self.at.min_words:
            return found
        odds = self._odds(utterance)
        calm = odds.get(EVERYDAY, 0.0)
        line, chance = _likeliest_line(odds, lines)
        if found is not None and found.verdict is Verdict.TRANSFER:
            soften_at, clear_at = self._thresholds(found)
            if calm >= soften_at:
                # The words around the phrase may step the verdict back one level, never two:
                # a crisis told after an errand is not softened, everyday talk all but certain
                # with a crisis-like phrase inside is offered rather than dropped.
                near = self._calm_around(utterance, found.span)
                if calm >= clear_at:
                    calm = clear_at if near >= clear_at else soften_at
                elif near < soften_at:
                    calm = near
            if calm >= clear_at:
                return None
            if found.past and self._calm_overall(utterance) >= self.at.offer_at:
                # Told as the past and the call read as everyday talk more than as a crisis:
                # "the fire at the old mill last spring, did they clean up the lot" is no fire
                # now; "last year I wanted to die but I got help, I'm calling about my parking
                # permit" is read whole, the help that came after included.
                return None
            if calm >= soften_at:
                return replace(found, verdict=Verdict.OFFER, phrase=f"{found.phrase} (softened)")
            if found.yielded is not None and line is not None and lines.index(line) < found.rule:
                # Read again without what was told as the past: an overdose two years ago is no
                # reason to send "and now he says he wants to die" to 911.
                line, chance = _likeliest_line(self._odds(without(utterance, [found.yielded])), lines)
            if (
                line is not None
                and chance >= self.at.transfer_at
                and (lines.index(line) < found.rule or (found.means and line != found.line))
            ):
                # Towards the more urgent line (911 before 988): "my roommate cut her wrists and
                # there's blood everywhere" is happening now. Away from it only when the phrase
                # named no more than a means: "he bought a gun so he can be with his late wife".
                return replace(
                    found,
                    rule=lines.index(line),
                    line=line,
                    phrase=f"{LEARNED} {chance:.2f}",
                    means=False,
                )
            return found
        if found is not None:
            # A phrase's offer becomes a connect when a crisis line is likely, unless the caller
            # denied it ("I'm not going to kill myself, I just need to talk" stays an offer).
            if line is not None and chance >= self.at.transfer_at and not found.negated:
                return Finding(
                    lines.index(line), line, Verdict.TRANSFER, found.lang, f"{LEARNED} {chance:.2f}"
                )
            return None if calm >= self.at.drop_at else found
        if line is None or chance < self.at.offer_at:
            return None
        verdict = Verdict.TRANSFER if chance >= self.at.transfer_at else Verdict.OFFER
        lang = language_of(utterance, prefer_lang)
        return Finding(lines.index(line), line, verdict, lang, f"{LEARNED} {chance:.2f}")

    def _odds(self, utterance: Utterance) -> dict[str, float]:
        """The odds of the sentence, or of its most alarming clause: a crisis told after an
        errand ("I was calling about my water bill but my husband's on the floor and he's gray")
        is read on its own, not diluted by the errand."""
        odds = self.classifier.probabilities(utterance)
        for clause in clauses(utterance):
            if meaningful_words(clause) < self.at.min_words:
                continue
            said = self.classifier.probabilities(clause)
            if said.get(EVERYDAY, 0.0) < odds.get(EVERYDAY, 0.0):
                odds = said
        return odds

    def _calm_overall(self, utterance: Utterance) -> float:
        """How likely everyday talk the whole sentence is, no clause singled out."""
        return self.classifier.probabilities(utterance).get(EVERYDAY, 0.0)

    def _thresholds(self, found: Finding) -> tuple[float, float]:
        """When a phrase's connect is softened and when it is dropped: sooner for one word."""
        if found.span is not None and found.span[0] == found.span[1]:
            return (
                self.at.one_word_soften_at or self.at.soften_at,
                self.at.one_word_clear_at or self.at.clear_at,
            )
        return self.at.soften_at, self.at.clear_at

    def _calm_around(self, utterance: Utterance, span: tuple[int, int] | None) -> float:
        """How likely everyday talk the words around a phrase are: a crisis told after an
        errand ("forget the noise complaint, the real reason I called is I don't want to live
        anymore") is not softened because the errand took most of the sentence."""
        if span is None:
            return 1.0
        start, end = span
        near = Utterance.read(" ".join(utterance.words[max(0, start - _AROUND) : end + _AROUND + 1]))
        if len(near.words) == len(utterance.words) or meaningful_words(near) < self.at.min_words:
            return 1.0
        return self.classifier.probabilities(near).get(EVERYDAY, 0.0)
