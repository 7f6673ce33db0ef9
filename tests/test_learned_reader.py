"""Crisis screening's second reader: a classifier learned from config/examples.yaml hears a
crisis in words no phrase has, and tells everyday talk with a scary word from a crisis. Pure:
no Flask, no database. The webhook stories are in tests/test_self_service_understanding.py.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest

from ivr.config.errors import ConfigError
from ivr.config.loader import load_config
from ivr.config.models import Learned, Words
from ivr.decisions.crisis import Finding, Verdict
from ivr.decisions.crisis_learned import LearnedReader, clauses
from ivr.decisions.speech import SpeechUnderstanding, destination
from ivr.language.classifier import TextClassifier, features, train
from ivr.language.text import Utterance

ROOT = Path(__file__).resolve().parent.parent
LINES = ["emergency", "crisis_988"]


@cache
def product() -> SpeechUnderstanding:
    """The line as shipped: menus.yaml's phrases and examples.yaml's learned reader."""
    config = load_config(ROOT / "config")
    return SpeechUnderstanding(config.menus, config.examples)


@cache
def phrases_only() -> SpeechUnderstanding:
    return SpeechUnderstanding(load_config(ROOT / "config").menus)


# ------------------------------------------------------------------ what callers say

# Written for this test, not in examples.yaml: wordings no crisis phrase in menus.yaml has.
UNSEEN_CRISIS = [
    ("en", "crisis_988", "I've been putting aside my pills for weeks and tonight I'm taking them all"),
    ("en", "crisis_988", "he wrote letters to all of us and says we won't have to worry about him anymore"),
    ("es", "crisis_988", "he dejado cartas para mis hijos, ya no van a tener que preocuparse por mí"),
]  # fmt: skip


@pytest.mark.parametrize(("lang", "line", "said"), UNSEEN_CRISIS)
def test_a_crisis_said_in_words_no_phrase_has_reaches_the_line_in_the_callers_language(
    lang: str, line: str, said: str
) -> None:
    assert phrases_only().crisis.screen(said, prefer_lang="en") is None  # the gap it fills
    found = product().crisis.screen(said, prefer_lang="en")
    assert found is not None
    assert (found.line, found.verdict, found.lang) == (line, Verdict.TRANSFER, lang)
    assert found.phrase.startswith("learned ")


def test_a_fairly_likely_crisis_with_no_phrase_is_offered_the_line() -> None:
    said = (
        "my grandson gave away his guitar and his dog and told me he loves me like it was the "
        "last time"
    )
    assert phrases_only().crisis.screen(said) is None
    found = product().crisis.screen(said)
    assert found is not None and found.line == "crisis_988"
    assert found.verdict in (Verdict.OFFER, Verdict.TRANSFER)


def test_everyday_talk_about_a_gun_show_is_not_put_through_to_911() -> None:
    said = "la feria de pistolas antiguas es en el centro de convenciones"
    by_phrase = phrases_only().crisis.screen(said, prefer_lang="es")
    assert by_phrase is not None and by_phrase.verdict is Verdict.TRANSFER  # "pistolas"
    found = product().crisis.screen(said, prefer_lang="es")
    assert found is None or found.verdict is Verdict.OFFER


def test_a_caller_who_denies_a_crisis_phrase_is_offered_the_line_not_put_through() -> None:
    found = product().crisis.screen("I'm not going to kill myself, I just need to talk")
    assert found is not None
    assert (found.line, found.verdict, found.negated) == ("crisis_988", Verdict.OFFER, True)


@pytest.mark.parametrize("said", ["I want to", "yes", "option two", "quiero", "help me"])
def test_speech_too_short_to_read_is_left_to_the_phrases(said: str) -> None:
    assert product().crisis.screen(said) == phrases_only().crisis.screen(said)


def test_hostile_bytes_are_read_without_error() -> None:
    for said in ["\x00\ufffd" * 300, "💀" * 50, "ñ" * 1000, "<Say>kill</Say>" * 40]:
        product().crisis.screen(said)


# ------------------------------------------------------------------ when the reader is believed


def _reader(odds: dict[str, float]) -> LearnedReader:
    """A reader whose classifier gives `odds` for any sentence: no feature weights, only the
    intercepts (the log of each odd), so the softmax gives exactly those odds."""
    import math

    labels = tuple(odds)
    intercepts = tuple(math.log(max(p, 1e-12)) for p in odds.values())
    return LearnedReader(
        classifier=TextClassifier(labels=labels, weights={}, intercepts=intercepts),
        at=Learned(
            min_words=2,
            transfer_at=0.75,
            offer_at=0.5,
            soften_at=0.9,
            clear_at=0.98,
            drop_at=0.8,
        ),
    )


def _weigh(
    odds: dict[str, float], found: Finding | None, **at: float
) -> Finding | None:
    reader = _reader(odds)
    if at:
        reader = LearnedReader(reader.classifier, reader.at.model_copy(update=at))
    return reader.weigh(Utterance.read("the words said here"), found, LINES, "en")


PHRASE_911 = Finding(0, "emergency", Verdict.TRANSFER, "en", "gun")
OFFER_988 = Finding(1, "crisis_988", Verdict.OFFER, "en", "having a breakdown")
DENIED_988 = Finding(1, "crisis_988", Verdict.OFFER, "en", "kill myself", negated=True)


def test_nothing_found_and_a_crisis_line_likely_connects_or_offers() -> None:
    sure = _weigh({"crisis_988": 0.8, "emergency": 0.1, "everyday": 0.1}, None)
    assert sure is not None and (sure.line, sure.verdict) == ("crisis_988", Verdict.TRANSFER)
    fair = _weigh({"crisis_988": 0.1, "emergency": 0.6, "everyday": 0.3}, None)
    assert fair is not None and (fair.line, fair.verdict) == ("emergency", Verdict.OFFER)
    assert _weigh({"crisis_988": 0.3, "emergency": 0.1, "everyday": 0.6}, None) is None


def test_a_phrases_connect_is_softened_to_an_offer_and_cleared_only_when_all_but_certain() -> None:
    assert _weigh({"crisis_988": 0.1, "emergency": 0.2, "everyday": 0.7}, PHRASE_911) == PHRASE_911
    softened = _weigh({"crisis_988": 0.02, "emergency": 0.05, "everyday": 0.93}, PHRASE_911)
    assert softened is not None and softened.verdict is Verdict.OFFER
    assert softened.line == "emergency"
    assert _weigh({"crisis_988": 0.005, "emergency": 0.005, "everyday": 0.99}, PHRASE_911) is None


PHRASE_988 = Finding(1, "crisis_988", Verdict.TRANSFER, "en", "cut wrists")
FIRE_LAST_SPRING = Finding(0, "emergency", Verdict.TRANSFER, "en", "fire", means=True, past=True)


def test_a_phrase_told_as_the_past_is_dropped_when_the_talk_reads_everyday() -> None:
    # "the fire at the old mill last spring, did they ever clean up the lot"
    assert _weigh({"crisis_988": 0.05, "emergency": 0.3, "everyday": 0.65}, FIRE_LAST_SPRING) is None
    assert _weigh({"crisis_988": 0.02, "emergency": 0.06, "everyday": 0.92}, FIRE_LAST_SPRING) is None
    # Read as a crisis, the past still connects: "he overdosed last year and he's not breathing".
    kept = _weigh({"crisis_988": 0.1, "emergency": 0.6, "everyday": 0.3}, FIRE_LAST_SPRING)
    assert kept is not None and kept.verdict is Verdict.TRANSFER
    # The same odds without the past: a phrase is softened only when everyday is all but sure.
    now = _weigh({"crisis_988": 0.05, "emergency": 0.3, "everyday": 0.65}, PHRASE_911)
    assert now == PHRASE_911


def test_the_shipped_screen_hears_a_fire_told_as_last_year_as_no_fire_now() -> None:
    for said in [
        "the house fire on Pine last summer, is that lot ever going to be cleaned up",
        "el incendio del mes pasado en la bodega, ya van a limpiar el terreno",
    ]:
        assert product().crisis.screen(said) is None, said


def test_a_connect_heard_from_one_word_yields_to_everyday_talk_sooner() -> None:
    # "cuánto cuesta la inspección de seguridad contra incendios para mi restaurante"
    one_word = Finding(0, "emergency", Verdict.TRANSFER, "es", "incendio", span=(7, 7))
    in_order = Finding(0, "emergency", Verdict.TRANSFER, "es", "se prendió la casa", span=(3, 5))
    sooner = {"one_word_soften_at": 0.7, "one_word_clear_at": 0.9}
    odds = {"crisis_988": 0.05, "emergency": 0.2, "everyday": 0.75}
    softened = _weigh(odds, one_word, **sooner)
    assert softened is not None and softened.verdict is Verdict.OFFER
    assert _weigh(odds, in_order, **sooner) == in_order
    assert _weigh({"crisis_988": 0.02, "emergency": 0.06, "everyday": 0.92}, one_word, **sooner) is None
    # Unset, one word weighs as a phrase does.
    assert _weigh(odds, one_word) == one_word


def test_a_sentence_is_cut_into_clauses_at_the_words_that_turn_the_story() -> None:
    said = Utterance.read("I was calling about my water bill, but also my husband is on the floor")
    assert [" ".join(c.words) for c in clauses(said)] == [
        "i was calling about my water bill",
        "my husband is on the floor",
    ]
    assert clauses(Utterance.read("I can't talk right now, call me after five")) == []
    assert len(clauses(Utterance.read("llamaba por la basura pero mi papá no respira"))) == 2


def test_a_crisis_told_after_an_errand_is_heard_in_its_own_clause() -> None:
    # Read whole, the errand makes the sentence look like everyday talk; read as a clause, the
    # second half is a crisis.
    said = (
        "so I was trying to renew my parking permit online and the site kept crashing, "
        "but also my roommate has been in the garage with the car running and the door shut"
    )
    found = product().crisis.screen(said)
    assert found is not None and found.line == "emergency", found


def test_a_crisis_told_after_an_errand_is_not_softened_for_the_errand() -> None:
    said = (
        "okay so forget about the noise complaint and the parking thing and the garbage pickup "
        "schedule, the real reason I called is I don't want to live anymore"
    )
    found = product().crisis.screen(said)
    assert found is not None and found.line == "crisis_988"
    assert found.verdict is Verdict.TRANSFER
    # A scary word in a sentence that is everyday talk all round is still softened.
    found = product().crisis.screen("is the gun show at the fairgrounds a city event")
    assert found is None or found.verdict is Verdict.OFFER


def test_the_words_around_a_phrase_step_the_verdict_back_one_level_never_two() -> None:
    # Everyday talk all but certain, with a crisis-like phrase inside: offered, never put
    # through because the words around the phrase alone read like a crisis.
    for said in [
        "el evento de prevención del suicidio es en el parque, cómo saco un permiso",
        "my daughter got shot with a nerf gun at the rec center, who do I complain to about the staff",
    ]:
        found = product().crisis.screen(said)
        assert found is None or found.verdict is Verdict.OFFER, said


def test_a_phrases_connect_moves_to_a_less_urgent_line_only_when_it_named_a_means() -> None:
    # "my roommate cut her wrists and there's blood everywhere": done, so 911, not 988.
    moved = _weigh({"crisis_988": 0.15, "emergency": 0.8, "everyday": 0.05}, PHRASE_988)
    assert moved is not None and (moved.line, moved.verdict) == ("emergency", Verdict.TRANSFER)
    # A 911 phrase for something done never moves to 988, however sure the classifier is.
    kept = _weigh({"crisis_988": 0.95, "emergency": 0.04, "everyday": 0.01}, PHRASE_911)
    assert kept == PHRASE_911
    # "he bought a gun so he can go be with his late wife": a gun named, nothing done with it.
    only_a_gun = replace(PHRASE_911, means=True)
    to_988 = _weigh({"crisis_988": 0.9, "emergency": 0.08, "everyday": 0.02}, only_a_gun)
    assert to_988 is not None and (to_988.line, to_988.verdict) == ("crisis_988", Verdict.TRANSFER)
    unsure = _weigh({"crisis_988": 0.6, "emergency": 0.3, "everyday": 0.1}, only_a_gun)
    assert unsure == only_a_gun


def test_a_phrases_offer_is_upgraded_unless_the_caller_denied_it() -> None:
    likely = {"crisis_988": 0.8, "emergency": 0.05, "everyday": 0.15}
    upgraded = _weigh(likely, OFFER_988)
    assert upgraded is not None and upgraded.verdict is Verdict.TRANSFER
    assert _weigh(likely, DENIED_988) == DENIED_988
    assert _weigh({"crisis_988": 0.1, "emergency": 0.05, "everyday": 0.85}, OFFER_988) is None


# ------------------------------------------------------------------ the classifier itself


def test_the_classifier_learns_labels_from_sentences_and_is_deterministic() -> None:
    examples = [
        ("the streetlight is out", "everyday"),
        ("there is a pothole on my street", "everyday"),
        ("loud music next door", "everyday"),
        ("I want to end my life", "crisis"),
        ("I am going to kill myself", "crisis"),
        ("I don't want to live", "crisis"),
    ]
    first, again = train(examples, strength=10.0), train(list(examples), strength=10.0)
    assert first.weights == again.weights
    odds = first.probabilities(Utterance.read("I want to kill myself tonight"))
    assert odds["crisis"] > odds["everyday"]
    assert abs(sum(odds.values()) - 1) < 1e-9
    calm = first.probabilities(Utterance.read("a pothole and a streetlight"))
    assert calm["everyday"] > calm["crisis"]


def test_features_share_pieces_of_words_across_inflections() -> None:
    a = set(features(Utterance.read("overdosed")))
    b = set(features(Utterance.read("overdosing")))
    assert {"c:<ove", "c:over", "c:rdos", "s:en:overdos"} <= a & b


# ------------------------------------------------------------------ config


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "config"
    shutil.copytree(ROOT / "config", folder)
    return folder


def test_an_unknown_label_in_examples_stops_startup_naming_file_line_and_field(
    tmp_path: Path,
) -> None:
    folder = _copy(tmp_path)
    examples = folder / "examples.yaml"
    text = examples.read_text(encoding="utf-8")
    examples.write_text(text.replace("  crisis_988:\n", "  crisis_998:\n", 1), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(folder)
    assert err.value.file.endswith("examples.yaml")
    assert err.value.field == "crisis.crisis_998" and err.value.line is not None
    assert "crisis_988" in err.value.reason


def test_examples_without_everyday_sentences_stop_startup(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "examples.yaml").write_text(
        'crisis:\n  crisis_988:\n    en: ["I want to die"]\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError) as err:
        load_config(folder)
    assert "everyday" in err.value.reason


def test_without_examples_the_line_screens_by_phrases_alone(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "examples.yaml").unlink()
    config = load_config(folder)
    alone = SpeechUnderstanding(config.menus, config.examples)
    said = UNSEEN_CRISIS[0][2]
    assert alone.crisis.screen(said) is None
    found = alone.crisis.screen("I want to kill myself")
    assert found is not None and found.verdict is Verdict.TRANSFER


# ------------------------------------------------------------------ menus and categories


def test_a_report_no_keyword_names_goes_to_its_category() -> None:
    for said in (
        "a javelina died in the wash behind my house",
        "se murió un zorrillo en el arroyo detrás de mi casa",
    ):
        assert phrases_only().choose("main", said) is None
        guess = product().choose("main", said)
        assert guess is not None and guess.learned, said
        assert destination(guess) == "report:other"
        assert product().crisis.screen(said) is None  # an animal's death is no crisis


def test_a_regional_word_answers_the_category_question() -> None:
    # "guateque" is Cuban and Mexican Spanish for a loud party; no keyword has it.
    assert phrases_only().category("un guateque toda la noche") is None
    assert product().category("un guateque toda la noche") == "noise"


def test_two_categories_named_as_well_are_settled_by_what_examples_taught() -> None:
    said = "la luz del semáforo cayó en el bache"  # a traffic light, and a pothole
    assert phrases_only().named_category(said) is None
    assert product().named_category(said) == "streetlight"
    assert product().category(said) == "streetlight"


def test_unrelated_speech_picks_nothing() -> None:
    for said in ("mi gato se llama Pancho y es muy bonito", "what's the weather like"):
        guess = product().choose("main", said)
        assert guess is None or guess.ambiguous, said


def test_an_unknown_destination_in_examples_stops_startup(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    examples = folder / "examples.yaml"
    text = examples.read_text(encoding="utf-8")
    examples.write_text(
        text.replace('  "report:pothole":\n', '  "report:potholes":\n', 1), encoding="utf-8"
    )
    with pytest.raises(ConfigError) as err:
        load_config(folder)
    assert err.value.field == "main_menu.report:potholes" and err.value.line is not None
    assert "report:<category>" in err.value.reason


def test_two_items_fitting_as_well_are_settled_by_what_examples_taught() -> None:
    said = "reporté un bache hace tiempo y quiero ver si ya lo taparon"
    tied = phrases_only().choose("main", said)
    assert tied is not None and tied.ambiguous  # "bache" (report) and "reporté" (status)
    guess = product().choose("main", said)
    assert guess is not None and not guess.ambiguous
    assert destination(guess) == "report_status"


def test_a_status_question_that_names_the_problem_is_settled_by_what_examples_taught() -> None:
    said = "did anybody ever do anything about the abandoned truck I called in"
    keywords = phrases_only().choose("main", said)
    # "abandoned truck" (two words) outweighs "I called" (one): the keywords alone say report.
    assert keywords is not None and destination(keywords) == "report:abandoned_vehicle"
    assert destination(product().choose("main", said)) == "report_status"
    # A new report keeps its category.
    said = "I want to report an abandoned truck on my street"
    assert destination(product().choose("main", said)) == "report:abandoned_vehicle"


@pytest.mark.parametrize(
    "said",
    ["I need help right now, call me back", "I need help right now, I want to talk to a person"],
)
def test_an_emergency_the_keywords_chose_is_never_overridden_by_the_learned_reader(
    said: str,
) -> None:
    assert destination(product().choose("main", said)) == "emergency"


@pytest.mark.parametrize(
    ("said", "lang", "where"),
    [
        ("hi yes I'd like to report something", "en", "report"),
        ("quisiera reportar algo por favor", "es", "report"),
    ],
)
def test_one_clear_keyword_at_the_greeting_is_taken_when_examples_agree(
    said: str, lang: str, where: str
) -> None:
    assert phrases_only().at_greeting(None, said) == (lang, None)  # one keyword: "report"
    chosen_lang, guess = product().at_greeting(None, said)
    assert chosen_lang == lang and destination(guess) == where


def test_a_crisis_rule_with_an_unknown_qa_tag_stops_startup(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    menus = folder / "menus.yaml"
    text = menus.read_text(encoding="utf-8")
    menus.write_text(
        text.replace("    qa_tag: behavioral_health\n", "    qa_tag: behavioural_health\n", 1),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_config(folder)
    assert err.value.field == "crisis[1].qa_tag" and err.value.line is not None


def test_a_learned_crisis_is_explained_in_the_language_of_the_call_unless_clearly_other() -> None:
    # "he" looks English, yet this caller is on a Spanish call and speaks Spanish.
    said = "he estado buscando cuántas pastillas necesitaría pa no despertar"
    found = product().crisis.screen(said, prefer_lang="es")
    assert found is not None and found.lang == "es"
    # At the bilingual greeting the call is English until the caller shows otherwise.
    greeting = product().crisis.screen(UNSEEN_CRISIS[-1][2], prefer_lang="en")
    assert greeting is not None and greeting.lang == "es"


def test_no_idiom_hides_a_crisis_sentence_callers_said_from_the_phrases() -> None:
    """Every crisis sentence in examples.yaml that the phrases connect with idioms left out is
    still connected with them: an idiom written too loosely ("kill the lights" heard in "he's
    gonna kill himself tonight, anyway the light's out") must not hide a crisis. (The learned
    reader would often still catch it; the phrases are the floor and must hold on their own.)"""
    config = load_config(ROOT / "config")
    menus = config.menus
    understanding = menus.understanding
    no_idioms = SpeechUnderstanding(
        menus.model_copy(
            update={"understanding": understanding.model_copy(update={"idioms": Words()})}
        )
    ).crisis
    hidden = []
    for line in ("crisis_988", "emergency"):
        for lang in ("en", "es"):
            for said in getattr(config.examples.crisis[line], lang):
                heard = no_idioms.screen(said, prefer_lang=lang)
                if heard is None or heard.verdict is not Verdict.TRANSFER:
                    continue
                found = phrases_only().crisis.screen(said, prefer_lang=lang)
                if found is None or found.verdict is not Verdict.TRANSFER:
                    hidden.append(said)
    assert hidden == []
