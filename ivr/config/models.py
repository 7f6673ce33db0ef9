"""The shape of config/*.yaml as frozen pydantic models (validation of each field)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

LANGUAGES = ("en", "es")
"""Languages every caller-facing text must be given in."""

DIGIT_KEYS = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
"""Keys a menu item may use; * and # are kept for repeat and back."""


def _as_text(value: object) -> object:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


Key = Annotated[str, BeforeValidator(_as_text)]
NonEmpty = Annotated[str, Field(min_length=1)]


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(Frozen):
    """A caller-facing text in every language."""

    en: NonEmpty
    es: NonEmpty

    def get(self, lang: str) -> str:
        """The text in `lang` (English when the language is unknown)."""
        return self.es if lang == "es" else self.en


class Words(Frozen):
    """Spoken words per language (keywords or crisis words)."""

    en: tuple[NonEmpty, ...] = ()
    es: tuple[NonEmpty, ...] = ()

    def all(self) -> tuple[str, ...]:
        return self.en + self.es


class ItemBase(Frozen):
    key: Key
    label: Text
    keywords: Words = Words()

    @field_validator("key")
    @classmethod
    def _one_digit(cls, value: str) -> str:
        if value not in DIGIT_KEYS:
            raise ValueError(f"must be one digit 0-9 (got {value!r}; * and # are reserved)")
        return value


class SubmenuItem(ItemBase):
    action: Literal["submenu"]
    menu: NonEmpty


class ReportItem(ItemBase):
    action: Literal["report"]


class ReportStatusItem(ItemBase):
    action: Literal["report_status"]


class InfoItem(ItemBase):
    action: Literal["info"]
    topic: NonEmpty


class TransferItem(ItemBase):
    action: Literal["transfer"]
    line: NonEmpty


class AgentItem(ItemBase):
    action: Literal["agent"]


class CallbackItem(ItemBase):
    action: Literal["callback"]


class EmergencyItem(ItemBase):
    action: Literal["emergency"]


MenuItem = Annotated[
    SubmenuItem
    | ReportItem
    | ReportStatusItem
    | InfoItem
    | TransferItem
    | AgentItem
    | CallbackItem
    | EmergencyItem,
    Field(discriminator="action"),
]


class Menu(Frozen):
    intro: Text
    items: tuple[MenuItem, ...] = Field(min_length=1)


class InfoTopic(Frozen):
    text: Text
    sms: Text
    keywords: Words = Words()


class ReportCategory(Frozen):
    key: Key
    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    label: Text
    # What partners see of this category (Open311 service_name, description, group,
    # keywords) and the department that takes its reports by default.
    name: Annotated[str, Field(min_length=1, max_length=120)] | None = None
    description: Annotated[str, Field(max_length=500)] | None = None
    group: Annotated[str, Field(max_length=120)] | None = None
    keywords: tuple[Annotated[str, Field(min_length=1, max_length=60)], ...] = ()
    department: Annotated[str, Field(min_length=1, max_length=120)] | None = None
    # What callers say for this category, per language ("pothole", "bache", "mucho ruido").
    spoken: Words = Words()
    # Words too general to pick the category inside a sentence at the main menu ("my street",
    # "a light") that do pick it as an answer to the category question when nothing in
    # `spoken` fits ("the road", "la calle", "a light").
    spoken_alone: Words = Words()

    @property
    def service_name(self) -> str:
        """The category's name for staff and partners ("Pothole or road damage")."""
        if self.name:
            return self.name
        words = self.label.en.split(" ", 1)
        text = (
            words[1]
            if len(words) == 2 and words[0].lower() in ("a", "an", "the")
            else self.label.en
        )
        return text[:1].upper() + text[1:]


class CrisisRule(Frozen):
    line: NonEmpty
    explanation: Text
    words: Words
    # Phrases that only offer the line ("It sounds like you may need ... Press 1").
    maybe: Words = Words()
    # Phrases that connect alone but name only a means ("has a gun", "going to overdose"): when
    # another rule's connecting phrase is heard too ("I have a gun and I want to end it"), that
    # rule's line is taken instead.
    means: Words = Words()
    # The QA tag (understanding.qa_tags) a call gets when this rule connects or offers, however
    # it was heard (a phrase, or the learned reader with no phrase at all).
    qa_tag: NonEmpty | None = None


class NearbyHarm(Frozen):
    """Harm words of the second crisis layer, the line they lead to, and what must stand near."""

    line: NonEmpty
    words: Words
    # Kinds of `nearby.anchors` that must all stand near a harm word to connect the caller...
    transfer_with: tuple[NonEmpty, ...] = Field(min_length=1)
    # ...and kinds of which one near is enough to offer the line (empty: never only an offer).
    offer_with: tuple[NonEmpty, ...] = ()
    # Words that only name a means (a gun, a knife): what they find yields like crisis[].means.
    means: bool = False


class Nearby(Frozen):
    """The recall layer of crisis screening: a harm word near a person or an intent."""

    # Words either side of a harm word where an anchor (a person, an intent) counts.
    window: Annotated[int, Field(ge=1, le=12)] = 5
    # Words either side where a thing ("phone", "tree", "llantas") claims the harm word.
    thing_window: Annotated[int, Field(ge=0, le=6)] = 3
    harms: tuple[NearbyHarm, ...] = ()
    # Kinds of words that make a harm word about someone: person, intent, ingest, ...
    anchors: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], Words] = {}
    # Things, not people: a harm word with one of these close by is calm ("my phone died").
    things: Words = Words()
    # Words that end a clause: a thing beyond one claims nothing ("crash the car and die").
    boundaries: Words = Words()
    # Phrases that make the harm word inside them calm ("shoot i forgot", "me muero de").
    calm: Words = Words()


class Learned(Frozen):
    """The second reader of crisis screening: a classifier learned from config/examples.yaml.

    Phrases are the floor; the learned reader hears wordings no phrase has ("I've been saving
    up my pills"). Probabilities are the classifier's, 0-1.
    """

    # Speech with fewer words that carry meaning ("yes", "option two", "I want to") is left to
    # the phrases.
    min_words: Annotated[int, Field(ge=1, le=10)] = 2
    # A crisis line this likely, when no phrase connected the caller: connect.
    transfer_at: Annotated[float, Field(gt=0.0, le=1.0)] = 0.75
    # A crisis line this likely: offer it ("Press 1 to be connected").
    offer_at: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    # Everyday talk this likely: a phrase's connect becomes an offer ("is the gun show a city
    # event"; the line stays one key away). Above 1: never.
    soften_at: Annotated[float, Field(gt=0.0, le=2.0)] = 0.9
    # Everyday talk all but certain: a phrase's connect is dropped ("what time does the
    # overdose awareness event start"). Above 1: never.
    clear_at: Annotated[float, Field(gt=0.0, le=2.0)] = 0.98
    # The same two for a connect heard from one word alone ("fire", "sobredosis"): weaker
    # evidence than words in order, so it may yield to everyday talk sooner ("cuánto cuesta la
    # inspección de seguridad contra incendios"). Unset: soften_at and clear_at.
    one_word_soften_at: Annotated[float, Field(gt=0.0, le=2.0)] | None = None
    one_word_clear_at: Annotated[float, Field(gt=0.0, le=2.0)] | None = None
    # Everyday talk this likely: a phrase's offer is dropped ("my son plays shooting games").
    drop_at: Annotated[float, Field(gt=0.0, le=2.0)] = 0.8
    # When no phrase picks a main-menu item (or a report category at its prompt), a learned
    # choice this likely is taken...
    choose_at: Annotated[float, Field(gt=0.0, le=1.0)] = 0.8
    # ...and one this likely is confirmed with the caller ("Did you say ...? Press 1").
    confirm_at: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    # How closely the classifier fits its examples (inverse regularisation).
    strength: Annotated[float, Field(gt=0.0, le=1000.0)] = 32.0


class Understanding(Frozen):
    """How speech is read: phrase gaps, confirmation, negations, idioms, QA tags."""

    max_gap: Annotated[int, Field(ge=0, le=4)] = 2
    # Menu choices heard with a lower speech Confidence (0-1, from Twilio) are confirmed.
    confirm_below_confidence: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    negations: Words = Words()
    idioms: Words = Words()
    # Words that put what is told in the past ("last year", "hace dos años"): a crisis phrase
    # heard with one names no more than a means (`crisis[].means`), so it yields to another
    # line's phrase ("he overdosed last year and now says he'll try it again" -> 988).
    long_ago: Words = Words()
    qa_tags: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], Words] = {}
    # When no crisis phrase matched: harm words near a person or an intent (offer or connect).
    nearby: Nearby = Nearby()
    # Street types ("road", "lane"; "calle" before the name): at the address prompt, the name
    # of a street that looks like an address is not screened ("Gun Club Road").
    street_types: Words = Words()
    learned: Learned = Learned()


class MenuSettings(Frozen):
    max_attempts: Annotated[int, Field(ge=1, le=5)] = 3
    gather_timeout_seconds: Annotated[int, Field(ge=2, le=15)] = 6
    agent_queue: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = "311-agents"
    queue_callback_offer_seconds: Annotated[int, Field(ge=0, le=3600)] = 120
    hold_music_url: NonEmpty = "http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3"
    recording_max_seconds: Annotated[int, Field(ge=10, le=600)] = 120
    reference_digits: Annotated[int, Field(ge=6, le=10)] = 8
    dial_timeout_seconds: Annotated[int, Field(ge=5, le=60)] = 25
    callback_deadline_hours: Annotated[int, Field(ge=1, le=168)] = 24


class MenusFile(Frozen):
    settings: MenuSettings = MenuSettings()
    greeting: Text
    crisis: tuple[CrisisRule, ...] = Field(min_length=1)
    understanding: Understanding = Understanding()
    report_categories: tuple[ReportCategory, ...] = Field(min_length=1, max_length=9)
    info_topics: dict[str, InfoTopic] = {}
    menus: dict[str, Menu]


class Line(Frozen):
    number: NonEmpty
    name: Text
    # Bridgeline dials only the United States and Canada; a line outside them must say so.
    international: bool = False


class LinesFile(Frozen):
    region: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "US"
    timezone: NonEmpty = "America/Phoenix"
    caller_id: NonEmpty
    sms_from: NonEmpty
    lines: dict[str, Line]
    # When a crisis line does not answer: the lines tried next, in order (never a queue).
    crisis_backup: dict[str, tuple[NonEmpty, ...]] = {}


EVERYDAY = "everyday"
"""The label of examples.yaml's everyday sentences (beside the crisis lines' ids)."""

NOWHERE = "none"
"""The label of examples.yaml's sentences that pick no menu item or category."""


class ExamplesFile(Frozen):
    """config/examples.yaml: sentences callers said, by what they meant.

    `crisis` maps a crisis line id, or `everyday`, to sentences per language; the learned
    reader of crisis screening is trained on them. `main_menu` maps where a sentence said at
    the main menu (or the greeting) leads ("report:pothole", "report_status", "info:hours",
    "transfer:nurse", "agent", "none", ...) to sentences; `categories` maps a report category
    code (or `none`) to answers to the category question. They teach the line what no phrase
    picks.
    """

    crisis: dict[NonEmpty, Words] = {}
    main_menu: dict[NonEmpty, Words] = {}
    categories: dict[NonEmpty, Words] = {}
