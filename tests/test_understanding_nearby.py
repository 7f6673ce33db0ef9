"""The recall layer of crisis screening: a harm word near a person or an intent.

Phrases catch what operators know callers say; these tests show the second layer catching
what nobody wrote down ("my buddy popped like thirty of his oxys"), and keeping everyday
sentences with the same words calm ("my phone died", "these potholes are killing my tires").
"""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path

import pytest

from ivr.config.errors import ConfigError
from ivr.config.loader import load_config
from ivr.decisions.crisis import CrisisScreen, HarmGroup, NearbyWords, RuleWords, Verdict
from ivr.decisions.speech import SpeechUnderstanding

ROOT = Path(__file__).resolve().parent.parent


@cache
def understanding() -> SpeechUnderstanding:
    config = load_config(ROOT / "config")
    return SpeechUnderstanding(config.menus, config.examples)


def small_screen() -> CrisisScreen:
    """One phrase rule per line, and a recall layer with a handful of words."""
    return CrisisScreen(
        [
            RuleWords("emergency", {"en": ["shots fired"]}, {}),
            RuleWords("crisis_988", {"en": ["kill myself"]}, {}),
        ],
        negations={"en": ["not"]},
        idioms={"en": ["=dying =to"]},
        nearby=NearbyWords(
            harms=[
                HarmGroup("emergency", {"en": ["pills"]}, transfer_with=["ingest"]),
                HarmGroup("emergency", {"en": ["gun"]}, transfer_with=["person"], means=True),
                HarmGroup(
                    "crisis_988",
                    {"en": ["=die"]},
                    transfer_with=["person", "intent"],
                    offer_with=["intent"],
                ),
            ],
            anchors={
                "person": {"en": ["=i", "=he", "son"]},
                "intent": {"en": ["want", "=going"]},
                "ingest": {"en": ["=took", "swallowed"]},
            },
            things={"en": ["phone", "tree"]},
            boundaries={"en": ["=and"]},
            calm={"en": ["=die =for"]},
            window=4,
            thing_window=3,
        ),
    )


def test_a_harm_word_with_a_person_and_an_intent_near_connects_the_caller() -> None:
    found = small_screen().screen("my son is going to die")
    assert found is not None
    assert (found.line, found.verdict) == ("crisis_988", Verdict.TRANSFER)
    assert found.phrase.startswith("nearby:")


def test_a_weapon_near_a_person_connects_to_911_marked_as_only_a_means() -> None:
    # The learned reader may still send it to 988 ("he bought a gun to be with his late wife").
    found = small_screen().screen("he has a gun")
    assert found is not None and (found.line, found.verdict) == ("emergency", Verdict.TRANSFER)
    assert found.means
    took = small_screen().screen("he took the pills")
    assert took is not None and took.line == "emergency" and not took.means


def test_a_harm_word_with_only_an_intent_near_offers_the_line() -> None:
    found = small_screen().screen("want to die")
    assert found is not None and found.verdict is Verdict.OFFER


def test_a_harm_word_alone_or_too_far_from_anyone_is_not_a_crisis() -> None:
    screen = small_screen()
    assert screen.screen("die") is None
    assert screen.screen("i want to read a long long story about how plants die") is None


def test_the_group_decides_what_must_be_near_and_which_line() -> None:
    found = small_screen().screen("he took all the pills")
    assert found is not None
    assert (found.line, found.verdict) == ("emergency", Verdict.TRANSFER)
    assert small_screen().screen("i want my pills refilled") is None


def test_a_thing_close_by_claims_the_harm_word_within_its_clause() -> None:
    screen = small_screen()
    assert screen.screen("i think my phone is going to die") is None
    # Three words from "phone" too, but past "and": the caller, not the phone.
    found = screen.screen("i lost my phone and want to die")
    assert found is not None and found.line == "crisis_988"


def test_a_negation_or_a_calm_phrase_or_an_idiom_keeps_it_from_connecting() -> None:
    screen = small_screen()
    negated = screen.screen("i am not going to die")
    assert negated is not None and negated.verdict is Verdict.OFFER
    assert screen.screen("i want a pie to die for") is None
    assert screen.screen("i am dying to go") is None


def test_a_phrase_that_connects_is_not_overruled_by_the_recall_layer() -> None:
    found = small_screen().screen("i want to die, i will kill myself")
    assert found is not None and found.phrase == "kill myself"


# ------------------------------------------------------------- the shipped words, both languages


@pytest.mark.parametrize(
    ("said", "lang", "line"),
    [
        ("my buddy popped like thirty of his oxys", "en", "emergency"),
        ("mi primo se metió un montón de cristal", "es", "emergency"),
        ("I'm going to unalive myself", "en", "crisis_988"),
        ("my daughter keeps saying she wants to just disappear and die", "en", "crisis_988"),
        ("mi hermano dice que se va a aventar", "es", "crisis_988"),
        ("somebody is bleeding on the stairs of my building", "en", "emergency"),
    ],
)
def test_sentences_nobody_wrote_down_still_reach_a_crisis_line(
    said: str, lang: str, line: str
) -> None:
    found = understanding().crisis.screen(said, prefer_lang=lang)
    assert found is not None, said
    assert (found.line, found.verdict, found.lang) == (line, Verdict.TRANSFER, lang)


@pytest.mark.parametrize(
    ("said", "lang"),
    [
        ("my phone died while I was on hold", "en"),
        ("these potholes are killing my tires", "en"),
        ("estos baches me están matando las llantas", "es"),
        ("shoot, I forgot my reference number", "en"),
        ("my car battery is dead and it's blocking the alley", "en"),
        ("I want to report a dead deer on my street", "en"),
        ("they cut off my water and I want to know why", "en"),
        ("se me murió el celular mientras esperaba", "es"),
        ("quiero cortar el árbol de mi patio, necesito permiso", "es"),
        ("where can I drop off old pills and medications", "en"),
        ("my boss fired me and I need help with rent", "en"),
        ("I need to hang a banner for our block party", "en"),
    ],
)
def test_everyday_sentences_with_the_same_words_stay_calm(said: str, lang: str) -> None:
    assert understanding().crisis.screen(said, prefer_lang=lang) is None


# --------------------------------------------------------------------- operators extend it


def test_operators_add_harm_words_and_anchors_in_config(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    shutil.copytree(ROOT / "config", folder)
    menus = folder / "menus.yaml"
    text = menus.read_text(encoding="utf-8")
    # A partner's street term for a fentanyl-laced pill.
    extended_text = text.replace(
        "          en: [pills, pill,", "          en: [blues, pills, pill,", 1
    )
    assert extended_text != text
    menus.write_text(extended_text, encoding="utf-8")
    extended = SpeechUnderstanding(load_config(folder).menus)
    found = extended.crisis.screen("my nephew swallowed three blues")
    assert found is not None and found.line == "emergency"
    assert understanding().crisis.screen("my nephew swallowed three blues") is None


def test_a_harm_group_asking_for_an_unknown_anchor_kind_stops_startup(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    shutil.copytree(ROOT / "config", folder)
    menus = folder / "menus.yaml"
    text = menus.read_text(encoding="utf-8")
    menus.write_text(
        text.replace("transfer_with: [ingest]", "transfer_with: [ingestion]", 1), encoding="utf-8"
    )
    with pytest.raises(ConfigError) as err:
        load_config(folder)
    assert err.value.field == "understanding.nearby.harms[2].transfer_with[0]"
    assert "ingestion" in str(err.value)
