"""Understanding callers the way they talk, tested without Flask on a corpus of sentences.

The corpus (tests/corpus/understanding.yaml) holds how distressed and everyday callers really
phrase things in English and Spanish; every line of it is a promise checked here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from ivr.config.errors import ConfigError
from ivr.config.loader import load_config
from ivr.decisions.crisis import CrisisScreen, RuleWords, Verdict
from ivr.decisions.speech import SpeechUnderstanding, destination, line_destination
from ivr.decisions.understanding import spoken_choice, yes_or_no
from ivr.language.lexicon import Lexicon, PhraseError, compile_phrase
from ivr.language.text import Utterance, fold, words

ROOT = Path(__file__).resolve().parent.parent
CORPUS = yaml.safe_load((ROOT / "tests/corpus/understanding.yaml").read_text(encoding="utf-8"))


@cache
def understanding() -> SpeechUnderstanding:
    config = load_config(ROOT / "config")
    return SpeechUnderstanding(config.menus, config.examples)


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [f"{c.get('lang', '?')}:{c['text'][:40]}" for c in cases]


def test_the_corpus_is_big_enough_and_in_both_languages() -> None:
    sentences = [c for family in CORPUS.values() for c in family]
    assert len(sentences) >= 150
    for family in ("crisis", "offer", "calm", "main", "category"):
        langs = {c["lang"] for c in CORPUS[family]}
        assert langs == {"en", "es"}, family
    assert {c["lang"] for c in CORPUS["greeting"]} == {"en", "es"}


@pytest.mark.parametrize("case", CORPUS["crisis"], ids=_ids(CORPUS["crisis"]))
def test_every_crisis_sentence_connects_to_its_line_in_the_callers_language(
    case: dict[str, str],
) -> None:
    found = understanding().crisis.screen(case["text"], prefer_lang=case["lang"])
    assert found is not None, case["text"]
    assert found.verdict is Verdict.TRANSFER
    assert found.line == case["line"]
    assert found.lang == case["lang"]


@pytest.mark.parametrize("case", CORPUS["offer"], ids=_ids(CORPUS["offer"]))
def test_hedged_or_negated_distress_is_offered_the_line(case: dict[str, str]) -> None:
    found = understanding().crisis.screen(case["text"], prefer_lang=case["lang"])
    assert found is not None and found.line == case["line"], case["text"]


EVERYDAY = [
    *CORPUS["calm"],
    *CORPUS["main"],
    *CORPUS["category"],
    *CORPUS["greeting"],
]


@pytest.mark.parametrize("case", EVERYDAY, ids=_ids(EVERYDAY))
def test_idioms_and_everyday_talk_do_not_trigger_a_crisis_line(case: dict[str, str]) -> None:
    found = understanding().crisis.screen(case["text"], prefer_lang=case["lang"])
    # Unless the caller asked for that very line ("get the cops here now" at the menu).
    assert found is None or line_destination(found.line) == case.get("expect"), found


@pytest.mark.parametrize("case", CORPUS["main"], ids=_ids(CORPUS["main"]))
def test_main_menu_sentences_go_where_the_caller_asked(case: dict[str, str]) -> None:
    # As the menu webhook does: crisis screening first, then the menu.
    found = understanding().crisis.screen(case["text"], prefer_lang=case["lang"])
    if found is not None:
        assert found.verdict is Verdict.TRANSFER and line_destination(found.line) == case["expect"]
    else:
        assert destination(understanding().choose("main", case["text"])) == case["expect"]


@pytest.mark.parametrize("case", CORPUS["greeting"], ids=_ids(CORPUS["greeting"]))
def test_the_greeting_picks_the_language_and_what_was_asked(case: dict[str, str]) -> None:
    # As the greeting webhook does: crisis screening first, answered in the words' language.
    found = understanding().crisis.screen(case["text"], prefer_lang="en")
    if found is not None:
        assert (found.lang, line_destination(found.line)) == (case["lang"], case.get("expect"))
        return
    lang, guess = understanding().at_greeting(None, case["text"])
    assert lang == case["lang"]
    assert destination(guess) == case.get("expect", "none")


@pytest.mark.parametrize("case", CORPUS["category"], ids=_ids(CORPUS["category"]))
def test_the_report_category_is_understood_from_words_or_a_number(case: dict[str, str]) -> None:
    u = understanding()
    heard = Utterance.read(case["text"])
    key = spoken_choice(heard)
    got = u.category_by_key(key) if key else u.category(heard)
    assert (got or "none") == case["expect"]


# ------------------------------------------------------------------ number words and yes/no


@pytest.mark.parametrize(
    ("said", "key"),
    [
        ("one", "1"),
        ("two please", "2"),
        ("option three", "3"),
        ("number four", "4"),
        ("press 5", "5"),
        ("el dos", "2"),
        ("número uno", "1"),
        ("opción tres por favor", "3"),
        ("to", "2"),
        ("for", "4"),
        ("I'd like to speak to someone", None),
        ("I'm calling for my mother", None),
        ("tengo una pregunta", None),
        ("I want to", None),
        ("one two", None),
        ("", None),
    ],
)
def test_number_words_count_only_when_the_utterance_is_a_choice(said: str, key: str | None) -> None:
    assert spoken_choice(Utterance.read(said)) == key


@pytest.mark.parametrize(
    ("said", "answer"),
    [
        ("yes", True),
        ("sí", True),
        ("yes I agree", True),
        ("one", True),
        ("no", False),
        ("I don't agree", False),
        ("no estoy de acuerdo", False),
        ("two", False),
        ("maybe later", None),
    ],
)
def test_yes_and_no_in_both_languages_and_negation_wins(said: str, answer: bool | None) -> None:
    assert yes_or_no(Utterance.read(said)) is answer


# ------------------------------------------------------------------ how phrases are read


def test_words_are_folded_split_and_stemmed_like_speech_comes_in() -> None:
    assert fold("¡Me QUIERO matar!") == "me quiero matar"
    assert fold("I can't, I won't, I don't") == "i can not i will not i do not"
    assert fold("i want to kill my self") == "i want to kill myself"
    assert words("quiero matarme") == ["quiero", "matar", "me"]
    assert words("cortándome") == ["cortando", "me"]
    assert words("voy a tomármelas todas") == ["voy", "a", "tomar", "me", "las", "todas"]
    assert words("parte") == ["parte"]  # too short to be a verb with a pronoun


def _tags(lexicon: Lexicon[str], text: str) -> set[str]:
    """The tags of the phrases `lexicon` finds in `text`."""
    return {hit.tag for hit in lexicon.find(Utterance.read(text))}


def test_a_phrase_matches_inflections_exact_words_alternatives_and_small_gaps() -> None:
    lexicon = Lexicon(
        [
            ("self", "kill myself", "en"),
            ("me", "me =quiero matar", "es"),
            ("pills", "=took all|whole ... pills", "en"),
        ]
    )

    def tags(text: str) -> set[str]:
        return _tags(lexicon, text)

    assert tags("I keep killing myself slowly") == {"self"}
    assert tags("me quiero matar") == {"me"}
    assert tags("me quiere matar") == set()  # 'quiere' is not the exact word 'quiero'
    assert tags("she took all of her mother's pills") == {"pills"}
    assert tags("she takes all her pills") == set()
    assert tags("kill the lights, I am going home myself") == set()


def test_a_word_written_after_a_plus_must_come_right_after_the_word_before() -> None:
    lexicon = Lexicon([("slang", "=es|=son + =fuego", "es"), ("up", "kill + the + lights", "en")])
    assert _tags(lexicon, "mi tía es fuego en la cocina") == {"slang"}
    assert _tags(lexicon, "es un fuego en la cocina") == set()
    assert _tags(lexicon, "kill the lights when you leave") == {"up"}
    assert _tags(lexicon, "kill himself tonight anyway the lights are out") == set()


def test_an_idiom_that_explains_the_alarming_words_leaves_the_learned_reader_only_an_offer() -> None:
    screen = understanding().crisis
    # "es fuego" is slang for great: read without it, the sentence is no fire. A gun painted
    # on a wall is graffiti: the learned reader may offer 911, not connect it.
    for said in [
        "mi tía es fuego en la cocina",
        "alguien pintó una calavera y una pistola en la cortina de la tienda",
        "kids tagged a skull and a gun on the park restroom",
    ]:
        found = screen.screen(said)
        assert found is None or found.verdict is Verdict.OFFER, said
    # Read without the idiom, the other words still tell a crisis: still connected.
    found = screen.screen(
        "having the worst panic attack ever and I keep wanting to smash my head into the wall "
        "until everything stops for good"
    )
    assert found is not None and (found.line, found.verdict) == ("crisis_988", Verdict.TRANSFER)
    # The idiom is the exact words only: a fire told with "es un fuego" connects.
    found = screen.screen("es un fuego en la cocina")
    assert found is not None and (found.line, found.verdict) == ("emergency", Verdict.TRANSFER)


def test_a_general_word_picks_a_category_only_as_the_answer_to_the_category_question() -> None:
    u = understanding()
    # Asked "what kind of problem": "the road" is road damage, "a light" a streetlight.
    assert u.category("the road") == "pothole"
    assert u.category("una luz") == "streetlight"
    # At the main menu the same words inside a sentence name no category.
    assert destination(u.choose("main", "I want to report something on my street")) == "report"
    assert destination(u.choose("main", "quiero reportar algo de mi calle")) == "report"
    # A word of a category's own phrases still wins over a general word of another.
    assert u.category("a dead dog in the road") == "other"


def test_hesitations_are_not_words_and_do_not_break_a_phrase() -> None:
    assert words("um the light is uh out") == ["the", "light", "is", "out"]
    assert words("o sea la luz") == ["la", "luz"]
    assert destination(understanding().choose("main", "the light is um uh out")) == (
        "report:streetlight"
    )


def test_a_phrase_that_fits_more_of_the_sentence_wins_a_tie() -> None:
    u = understanding()
    # "complaint" alone would be a new report; "my complaint" asks about one already made.
    assert destination(u.choose("main", "what is going on with my complaint")) == "report_status"
    # The longer phrase claims its words: "I reported" is about a report already made.
    assert destination(u.choose("main", "I reported a pothole")) == "report_status"
    assert destination(u.choose("main", "I want to report a pothole")) == "report:pothole"
    # "talk to someone" is generic: a named kind of help still wins.
    assert destination(u.choose("main", "I need to talk to someone about my mental health")) == (
        "transfer:crisis_988"
    )


def test_a_phrase_of_the_sentences_language_outweighs_a_look_alike_of_the_other() -> None:
    u = understanding()
    # Spanish "postes" (a light pole) stems to "post": not in "the post office".
    said = "the sidewalk in front of the post office is all broken up"
    assert destination(u.choose("main", said)) == "report:other"
    # "que hable español" is not "que hablé" (I already called).
    assert destination(u.choose("main", "páseme con un operador que hable español")) == "agent"
    # Mixed speech still finds the words of either language.
    assert destination(u.choose("main", "quiero reportar un pothole")) == "report:pothole"


def test_a_phrase_that_cannot_be_read_is_refused() -> None:
    with pytest.raises(PhraseError):
        compile_phrase("kill =self-harm|x", "en")
    with pytest.raises(PhraseError):
        compile_phrase("!!! ???", "en")
    # A space inside an alternative makes two places: "=la =basura" as one choice cannot be
    # written in a list, and the phrase would need "basura basura" to match.
    with pytest.raises(PhraseError, match="write two phrases"):
        compile_phrase("=tirar|=aventar =basura|=la =basura", "es")
    assert compile_phrase("=tirar|=aventar =la =basura", "es")


def test_an_exact_word_with_a_joined_pronoun_is_found_the_way_speech_is_read() -> None:
    # Speech is read with Spanish pronouns split off ("morirse" -> "morir se"): an exact word
    # written joined in config is found that way, the pronoun right after its verb.
    lexicon = Lexicon([("idiom", "=para|=pa =morirse|=morirte", "es")])
    assert lexicon.find(Utterance.read("el tráfico está para morirse"))
    assert lexicon.find(Utterance.read("hace un calor pa morirte"))
    assert not lexicon.find(Utterance.read("tomé pastillas para morir"))
    # The shipped idiom now masks the figure of speech and nothing else.
    screen = understanding().crisis
    assert screen.screen("el tráfico en la 95 está para morirse") is None
    found = screen.screen("tomé pastillas para morir")
    assert found is not None and found.verdict is Verdict.TRANSFER


def test_negation_before_a_crisis_phrase_offers_the_line_instead_of_connecting() -> None:
    screen = CrisisScreen(
        [RuleWords("crisis_988", {"en": ["kill myself"], "es": ["me quiero matar"]}, {})],
        negations={"en": ["not", "never"], "es": ["no"]},
        idioms={},
    )
    assert screen.screen("I want to kill myself").verdict is Verdict.TRANSFER  # type: ignore[union-attr]
    assert screen.screen("I'm not going to kill myself").verdict is Verdict.OFFER  # type: ignore[union-attr]
    assert screen.screen("no me quiero matar").verdict is Verdict.OFFER  # type: ignore[union-attr]
    assert screen.screen("no puedo más, me quiero matar").verdict is Verdict.TRANSFER  # type: ignore[union-attr]
    # The negation belongs to another clause when a subject starts a new one in between.
    assert screen.screen("I just can't. I'll kill myself").verdict is Verdict.TRANSFER  # type: ignore[union-attr]


def test_an_idiom_masks_only_the_words_it_covers() -> None:
    screen = CrisisScreen(
        [RuleWords("emergency", {"en": ["=killing me", "kill myself"], "es": []}, {})],
        negations={},
        idioms={"en": ["traffic|light =is =killing =me"]},
    )
    assert screen.screen("this traffic light is killing me") is None
    assert screen.screen("he is killing me") is not None
    found = screen.screen("this traffic light is killing me and I want to kill myself")
    assert found is not None and found.phrase == "kill myself"


def test_an_overdose_is_911_even_when_the_caller_also_wants_to_die() -> None:
    found = understanding().crisis.screen("I want to die, I took all my pills")
    assert found is not None and found.line == "emergency"


def _911_then_988(
    emergency: list[str],
    crisis: list[str],
    means: list[str] | None = None,
    negations: dict[str, list[str]] | None = None,
    long_ago: dict[str, list[str]] | None = None,
) -> CrisisScreen:
    """A screen of two English rules, 911 before 988, and nothing else unless given."""
    return CrisisScreen(
        [
            RuleWords("emergency", {"en": emergency}, {}, means={"en": means or []}),
            RuleWords("crisis_988", {"en": crisis}, {}),
        ],
        negations=negations or {},
        idioms={},
        long_ago=long_ago,
    )


def _each_connects_to_its_line(
    cases: list[tuple[str, str]], screen: CrisisScreen | None = None
) -> None:
    screen = screen or understanding().crisis
    for said, line in cases:
        found = screen.screen(said)
        assert found is not None and found.verdict is Verdict.TRANSFER, said
        assert found.line == line, said


def test_a_threat_turned_on_oneself_is_the_crisis_line_and_a_threat_to_others_is_911() -> None:
    _each_connects_to_its_line(
        [
            ("my boyfriend keeps threatening to kill himself if i leave", "crisis_988"),
            ("my boyfriend keeps threatening to kill me if i leave", "emergency"),
            ("mi hermana se corta con navajas", "crisis_988"),
            ("mi vecino anda con una navaja", "emergency"),
            ("me tomé un montón de pastillas para matarme", "emergency"),
        ]
    )


def test_a_longer_threat_that_steps_over_myself_is_read_as_self_harm() -> None:
    screen = _911_then_988(["=kill =my =family|=kids"], ["kill myself"])
    found = screen.screen("better I kill myself, my family better without me")
    assert found is not None and found.line == "crisis_988"
    found = screen.screen("he says he will kill my family")
    assert found is not None and found.line == "emergency"


def test_a_weapon_or_drug_only_named_yields_to_the_crisis_line_when_the_caller_wants_to_die() -> None:
    screen = _911_then_988(
        ["shots fired"], ["want =to die"], means=["gun|guns"], negations={"en": ["not"]}
    )
    for said, line, verdict in [
        ("there's a man with a gun outside", "emergency", Verdict.TRANSFER),
        ("I have my dad's gun and I want to die", "crisis_988", Verdict.TRANSFER),
        # Something was done with it: 911 stays first.
        ("shots fired, he has a gun and says he wants to die", "emergency", Verdict.TRANSFER),
        # A denial is no reason to drop the 911 a weapon alone calls for.
        ("I have a gun but I don't want to die", "emergency", Verdict.TRANSFER),
    ]:
        found = screen.screen(said)
        assert found is not None, said
        assert (found.line, found.verdict) == (line, verdict), said


def test_the_shipped_lexicon_sends_ideation_with_a_weapon_to_988_and_a_weapon_alone_to_911() -> None:
    _each_connects_to_its_line(
        [
            ("I keep the gun in my nightstand and I think about killing myself every night", "crisis_988"),
            ("tengo la pistola de mi esposo y me quiero matar", "crisis_988"),
            ("my brother says he's going to overdose this weekend", "crisis_988"),
            ("some guy pulled a knife on the bus driver", "emergency"),
            ("hay un señor con una pistola en la tienda", "emergency"),
            ("I think my cousin overdosed, she's not waking up", "emergency"),
        ]
    )


def test_what_happened_long_ago_yields_to_the_crisis_line_of_now() -> None:
    screen = _911_then_988(
        ["got shot", "overdosed"], ["want =to die"], long_ago={"en": ["last year", "years ago"]}
    )
    _each_connects_to_its_line(
        [
            ("my son got shot two years ago and now he keeps saying he wants to die", "crisis_988"),
            # Alone, the past still connects to 911: the screen never drops a finding for it.
            ("my son got shot last year", "emergency"),
            # Now, not long ago: 911 first.
            ("my son got shot and he says he wants to die", "emergency"),
        ],
        screen,
    )


def test_the_past_that_yielded_is_named_for_the_second_reader() -> None:
    screen = _911_then_988(
        ["got shot", "overdosed"], ["want =to die"], long_ago={"en": ["last year", "years ago"]}
    )
    said = "my son overdosed two years ago and now he keeps saying he wants to die"
    found = screen.screen(said)
    assert found is not None and found.line == "crisis_988"
    assert found.yielded is not None
    start, end = found.yielded
    # "overdosed two years ago": the learned reader reads the rest for what is happening now.
    assert Utterance.read(said).words[start : end + 1] == ("overdosed", "two", "years", "ago")
    assert screen.screen("my son wants to die").yielded is None


def test_long_ago_words_opening_the_story_tell_the_crisis_phrase_in_it_as_the_past() -> None:
    screen = _911_then_988(
        ["got shot", "overdosed"], ["want =to die"], long_ago={"en": ["last year", "years ago"]}
    )
    heard = screen.screen("last year I was in a really dark place and wanted to die")
    assert heard is not None and heard.past
    # Long-ago words closing another event tell only that event.
    heard = screen.screen("my mom passed last year and my son is saying he wants to die")
    assert heard is not None and not heard.past
    # A word bringing the story back to now ends their time.
    heard = screen.screen("last year I lost my job and now I want to die")
    assert heard is not None and not heard.past
    # The same harm heard again after the phrase itself is now.
    heard = screen.screen("last year he overdosed and he overdosed again tonight")
    assert heard is not None and not heard.past


def test_a_crisis_that_is_over_with_help_found_is_no_crisis_now_in_either_language() -> None:
    for said in [
        "i was in a really dark place last year and wanted to die but i got help, i'm just "
        "calling about my parking permit now",
        "el año pasado estuve en un lugar muy oscuro y me quería morir pero busqué ayuda, "
        "ahorita nomás llamo por mi permiso de estacionamiento",
    ]:
        assert understanding().crisis.screen(said) is None, said
    # Told with now, the same words still connect.
    found = understanding().crisis.screen("last year I got help but now I want to die again")
    assert found is not None and found.verdict is Verdict.TRANSFER


def test_only_the_phrase_told_with_the_long_ago_words_is_the_past() -> None:
    _each_connects_to_its_line(
        [
            # The long-ago words belong to another event: the overdose is now.
            ("my mom died last year, my brother just overdosed and he wants to die", "emergency"),
            ("we moved here last year and my son just overdosed, he says he wants to die", "emergency"),
            ("mi esposo se murió el año pasado, mi hijo tomó muchas pastillas y quiere morir", "emergency"),
            # The same harm heard again after the long-ago words is now.
            ("my son got shot last month and now he's been shot again and wants to die", "emergency"),
        ]
    )


def test_the_shipped_lexicon_hears_a_past_overdose_told_with_a_threat_to_try_again() -> None:
    _each_connects_to_its_line(
        [
            ("my brother overdosed on purpose a couple years ago and says he'll do it again, he wants to die", "crisis_988"),
            ("mi hermano se tomó muchas pastillas hace dos años y ahora dice que se quiere morir", "crisis_988"),
            ("he overdosed last year and now he's not breathing again", "emergency"),
        ]
    )


def test_figures_of_speech_with_a_shot_blood_or_drowning_are_not_crises() -> None:
    screen = understanding().crisis
    for said in [
        "our council member keeps shooting himself in the foot",
        "the lady at the permits desk is a straight shooter",
        "we've been bleeding money on this roof for a year",
        "my ears are bleeding from the neighbor's karaoke",
        "mi suegra se ahoga en un vaso de agua por todo",
    ]:
        assert screen.screen(said) is None, said
    # The same words told literally still connect.
    _each_connects_to_its_line(
        [
            ("he fell off the ladder and his ears are bleeding", "emergency"),
            ("my neighbor shot himself, there's blood everywhere", "emergency"),
        ]
    )


def test_a_figure_of_speech_for_dying_masks_only_itself() -> None:
    # "para morirse" is also "in order to die"; "matándome trabajando" is not "quiero matarme,
    # estoy trabajando". The phrases alone (no learned reader) must still connect these.
    screen = SpeechUnderstanding(load_config(ROOT / "config").menus).crisis
    for said in [
        "mi abuelo va a dejar su insulina a propósito para morirse",
        "quiero matarme, estoy trabajando demasiado y ya no aguanto",
    ]:
        found = screen.screen(said)
        assert found is not None and found.verdict is Verdict.TRANSFER, said
        assert found.line == "crisis_988", said
    assert screen.screen("me estoy matando trabajando en dos turnos") is None
    assert screen.screen("el calor está para morirse") is None


def test_everyday_phone_talk_with_alarming_words_is_not_a_crisis() -> None:
    screen = understanding().crisis
    for said in [
        "staying sober is hard but I'm hanging in there",
        "¿me escucha? se está cortando la llamada",
        "mi tía es fuego en la cocina",
        "mi hermano se pasa el día disparando en los videojuegos",
        "hoy voy a hacer overdose de cafecito",
        "the cyclists keep swerving into traffic to avoid the pothole",
    ]:
        found = screen.screen(said)
        assert found is None or found.verdict is Verdict.OFFER, said
    _each_connects_to_its_line(
        [
            ("me estoy cortando otra vez", "crisis_988"),
            ("I'm thinking about walking into the lake and not coming back", "crisis_988"),
            ("I keep thinking about driving my car off the bridge", "crisis_988"),
        ]
    )


# ------------------------------------------------------------------ operators extend the lexicon


def test_operators_add_their_own_crisis_phrases_and_keywords(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    shutil.copytree(ROOT / "config", folder)
    menus = folder / "menus.yaml"
    text = menus.read_text(encoding="utf-8")
    # A partner's outreach team calls a relapse into suicidal crisis "code purple".
    text = text.replace(
        "        - suicide|suicidal\n",
        "        - suicide|suicidal\n        - =code =purple\n",
        1,
    )
    text = text.replace("      es: [otra cosa,", "      es: [chatarra, otra cosa,", 1)
    menus.write_text(text, encoding="utf-8")
    extended = SpeechUnderstanding(load_config(folder).menus)
    found = extended.crisis.screen("my cousin is code purple again")
    assert found is not None and found.line == "crisis_988"
    assert extended.category("hay chatarra en el callejón") == "other"
    assert understanding().crisis.screen("my cousin is code purple again") is None


def test_a_bad_phrase_stops_startup_naming_file_line_and_field(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    shutil.copytree(ROOT / "config", folder)
    menus = folder / "menus.yaml"
    text = menus.read_text(encoding="utf-8")
    menus.write_text(
        text.replace("        - suicide|suicidal\n", "        - suicide|=self-harm\n", 1),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_config(folder)
    assert err.value.field == "crisis[1].words.en[0]"
    assert "menus.yaml" in str(err.value) and "line" in str(err.value)


def test_a_bad_long_ago_phrase_stops_startup_naming_its_field(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    shutil.copytree(ROOT / "config", folder)
    menus = folder / "menus.yaml"
    text = menus.read_text(encoding="utf-8")
    menus.write_text(text.replace("    en: [last month|", "    en: [=last-month|", 1), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(folder)
    assert err.value.field == "understanding.long_ago.en[0]"


def test_a_crisis_backup_to_an_unknown_line_stops_startup(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    shutil.copytree(ROOT / "config", folder)
    lines = folder / "lines.yaml"
    text = lines.read_text(encoding="utf-8")
    lines.write_text(
        text.replace("[crisis_988_backup, emergency]", "[crisis_988_bakup, emergency]"),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_config(folder)
    assert err.value.field == "crisis_backup.crisis_988[0]"


def test_qa_tags_are_heard_in_both_languages() -> None:
    tagger = understanding().tagger
    assert "suicide_self_harm" in tagger.tags("my son says he wants to kill himself")
    assert "substance_use" in tagger.tags("mi hijo tiene una sobredosis de fentanilo")
    assert "housing_food" in tagger.tags("we got evicted and have no place to stay")
    assert "welfare_check" in tagger.tags("my mother lives alone and is not answering")
    assert tagger.tags("there's a pothole on my street") == []


def test_the_matcher_imports_no_web_database_queue_or_twilio_code() -> None:
    # ivr/__init__.py itself imports the web app, so the package is stood in for by an empty
    # one: what is left is the import graph of ivr.decisions and what it imports.
    code = (
        "import sys, types\n"
        "pkg = types.ModuleType('ivr'); pkg.__path__ = ['ivr']; sys.modules['ivr'] = pkg\n"
        "import ivr.decisions.speech, ivr.decisions.crisis, ivr.decisions.understanding\n"
        "banned = ('flask', 'sqlalchemy', 'redis', 'rq', 'twilio', 'werkzeug')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(banned)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]"
