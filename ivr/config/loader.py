"""Load config/menus.yaml, config/lines.yaml and config/examples.yaml, validate them together,
freeze the result."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ValidationError

from ivr.config.models import (
    EVERYDAY,
    NOWHERE,
    ExamplesFile,
    Line,
    LinesFile,
    Menu,
    MenusFile,
    Words,
)
from ivr.config.yaml_source import Location, SourceFile, read_yaml
from ivr.language.lexicon import PhraseError, compile_phrase
from ivr.phones import NumberProblem, PhoneNumberError, dialable_number, parse_e164

MENUS_FILE = "menus.yaml"
"""The self-service menu tree, prompts, crisis words, info topics."""

LINES_FILE = "lines.yaml"
"""Phone numbers Bridgeline dials or sends from."""

EXAMPLES_FILE = "examples.yaml"
"""Sentences callers said, by what they meant: what crisis screening learns from (optional)."""

REQUIRED_LINES = ("emergency", "operator")
"""Lines every deployment must configure: the 911 transfer number and a person to fall back to."""

MAIN_MENU = "main"
"""The menu a caller hears after choosing a language."""

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class BridgelineConfig:
    """Validated configuration. Line numbers are E.164."""

    menus: MenusFile
    lines: LinesFile
    numbers: dict[str, str]
    examples: ExamplesFile = dataclasses.field(default_factory=ExamplesFile)

    def menu(self, menu_id: str) -> Menu | None:
        return self.menus.menus.get(menu_id)

    def line(self, line_id: str) -> Line | None:
        return self.lines.lines.get(line_id)


def _validate(source: SourceFile, model: type[M]) -> M:
    try:
        return model.model_validate(source.data if source.data is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = _data_path(source.data, tuple(first["loc"]))
        if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = (*loc, "action")
        raise source.error(loc, first["msg"]) from None


def _data_path(data: object, loc: Location) -> Location:
    """Pydantic's error location without the union tags it inserts ('info', 'submenu', ...)."""
    path: list[str | int] = []
    current = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if not isinstance(current, dict | list):
            path.append(part)  # below the data that exists: keep the rest as pydantic named it
        elif isinstance(current, dict) and part in current:
            path.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and part < len(current):
            path.append(part)
            current = current[part]
        elif last or (
            isinstance(current, dict)
            and not any(isinstance(p, str) and p in current for p in loc[index + 1 :])
        ):
            path.append(part)
            if not last:
                current = None
    return tuple(path)


def load_config(folder: Path) -> BridgelineConfig:
    """Read and check every config file in `folder`; raise ConfigError on the first problem."""
    lines_src = read_yaml(folder / LINES_FILE)
    menus_src = read_yaml(folder / MENUS_FILE)
    lines = _validate(lines_src, LinesFile)
    menus = _validate(menus_src, MenusFile)
    numbers = _check_lines(lines_src, lines)
    _check_menus(menus_src, menus, lines)
    examples = ExamplesFile()
    if (folder / EXAMPLES_FILE).exists():
        examples_src = read_yaml(folder / EXAMPLES_FILE)
        examples = _validate(examples_src, ExamplesFile)
        _check_examples(examples_src, examples, menus)
    return BridgelineConfig(menus=menus, lines=lines, numbers=numbers, examples=examples)


def _check_examples(src: SourceFile, examples: ExamplesFile, menus: MenusFile) -> None:
    """Every example's label names something the line has (a crisis line, a category, a
    main-menu destination); crisis examples hold `everyday` sentences and a line's."""
    crisis_lines = {rule.line for rule in menus.crisis}
    for label in examples.crisis:
        if label != EVERYDAY and label not in crisis_lines:
            raise src.error(
                ("crisis", label),
                f"unknown label {label!r}: a crisis rule's line "
                f"({', '.join(sorted(crisis_lines))}) or {EVERYDAY!r}",
            )
    if examples.crisis and (EVERYDAY not in examples.crisis or len(examples.crisis) < 2):
        raise src.error(
            ("crisis",), f"crisis examples need {EVERYDAY!r} sentences and a crisis line's"
        )
    codes = {c.code for c in menus.report_categories}
    for label in examples.categories:
        if label != NOWHERE and label not in codes:
            raise src.error(
                ("categories", label),
                f"unknown report category {label!r} ({', '.join(sorted(codes))} or {NOWHERE!r})",
            )
    for label in examples.main_menu:
        problem = _destination_problem(label, menus)
        if problem:
            raise src.error(("main_menu", label), problem)


def _destination_problem(label: str, menus: MenusFile) -> str | None:
    """Why `label` is not somewhere a main-menu sentence can lead, or None."""
    kind, _, name = label.partition(":")
    plain = {"report", "report_status", "agent", "callback", "emergency", NOWHERE}
    known = {
        "report": {c.code for c in menus.report_categories},
        "info": set(menus.info_topics),
        "menu": set(menus.menus),
        "transfer": {
            str(getattr(item, "line", ""))
            for menu in menus.menus.values()
            for item in menu.items
            if item.action == "transfer"
        },
    }
    if not name and kind in plain:
        return None
    if name and name in known.get(kind, set()):
        return None
    return (
        f"unknown destination {label!r}: one of {', '.join(sorted(plain))}, "
        "report:<category>, info:<topic>, menu:<menu> or transfer:<line>"
    )


def _check_lines(src: SourceFile, lines: LinesFile) -> dict[str, str]:
    try:
        ZoneInfo(lines.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise src.error(("timezone",), f"unknown time zone {lines.timezone!r}") from None
    for required in REQUIRED_LINES:
        if required not in lines.lines:
            raise src.error(("lines",), f"the line {required!r} must be configured")
    for line_id, chain in lines.crisis_backup.items():
        if line_id not in lines.lines:
            raise src.error(("crisis_backup", line_id), f"unknown line {line_id!r} (not in lines)")
        for index, backup in enumerate(chain):
            if backup not in lines.lines or backup == line_id:
                raise src.error(
                    ("crisis_backup", line_id, index),
                    f"{backup!r} must be another line configured under lines",
                )
    numbers: dict[str, str] = {}
    for field in ("caller_id", "sms_from"):
        numbers[field] = _number(src, (field,), getattr(lines, field), lines.region)
    for line_id, line in lines.lines.items():
        numbers[line_id] = _line_number(src, ("lines", line_id, "number"), line, lines.region)
    return numbers


REFUSED_LINE = {
    NumberProblem.INVALID: "is not a valid phone number",
    NumberProblem.PREMIUM_RATE: "is a premium-rate number, which Bridgeline never dials",
    NumberProblem.OUTSIDE_US_CANADA: (
        "is outside the United States and Canada; Bridgeline dials it only if the line is "
        "marked `international: true`"
    ),
}
"""Why a line's number was refused, as the startup error says it."""


def _line_number(src: SourceFile, loc: Location, line: Line, region: str) -> str:
    """A line is dialed: valid, never premium-rate, and in the US or Canada unless marked."""
    try:
        return dialable_number(line.number, region, international=line.international)
    except PhoneNumberError as exc:
        raise src.error(loc, f"{line.number!r} {REFUSED_LINE[exc.problem]}") from None


def _number(src: SourceFile, loc: Location, raw: str, region: str) -> str:
    try:
        return parse_e164(raw, region)
    except PhoneNumberError:
        raise src.error(loc, f"{raw!r} is not a valid phone number") from None


def _check_menus(src: SourceFile, menus: MenusFile, lines: LinesFile) -> None:
    if MAIN_MENU not in menus.menus:
        raise src.error(("menus",), f"a menu named {MAIN_MENU!r} is required")
    category_keys: dict[str, int] = {}
    for index, category in enumerate(menus.report_categories):
        if category.key in category_keys:
            raise src.error(
                ("report_categories", index, "key"),
                f"duplicate key {category.key!r} (also category {category_keys[category.key]})",
            )
        category_keys[category.key] = index
    for where, problem in phrase_problems(menus):
        raise src.error(where, problem)
    for index, rule in enumerate(menus.crisis):
        if rule.line not in lines.lines:
            raise src.error(
                ("crisis", index, "line"), f"unknown line {rule.line!r} (not in {LINES_FILE})"
            )
        if not rule.words.en or not rule.words.es:
            raise src.error(("crisis", index, "words"), "crisis words are needed in both en and es")
        if rule.qa_tag is not None and rule.qa_tag not in menus.understanding.qa_tags:
            raise src.error(
                ("crisis", index, "qa_tag"),
                f"unknown QA tag {rule.qa_tag!r} (not in understanding.qa_tags)",
            )
    crisis_lines = {rule.line for rule in menus.crisis}
    near = menus.understanding.nearby
    for index, harm in enumerate(near.harms):
        harm_at: Location = ("understanding", "nearby", "harms", index)
        if harm.line not in crisis_lines:
            raise src.error(
                (*harm_at, "line"), f"unknown crisis line {harm.line!r} (no crisis rule has it)"
            )
        for field in ("transfer_with", "offer_with"):
            for k, kind in enumerate(getattr(harm, field)):
                if kind not in near.anchors:
                    raise src.error(
                        (*harm_at, field, k),
                        f"unknown anchor kind {kind!r} (not in nearby.anchors)",
                    )
    for menu_id, menu in menus.menus.items():
        keys: dict[str, int] = {}
        has_emergency = False
        for index, item in enumerate(menu.items):
            loc: Location = ("menus", menu_id, "items", index)
            if item.key in keys:
                raise src.error(
                    (*loc, "key"), f"duplicate key {item.key!r} (also item {keys[item.key]})"
                )
            keys[item.key] = index
            has_emergency = has_emergency or item.action == "emergency"
            target = getattr(item, "menu", None)
            if target is not None and target not in menus.menus:
                raise src.error((*loc, "menu"), f"unknown menu {target!r}")
            topic = getattr(item, "topic", None)
            if topic is not None and topic not in menus.info_topics:
                raise src.error((*loc, "topic"), f"unknown info topic {topic!r}")
            line = getattr(item, "line", None)
            if line is not None and line not in lines.lines:
                raise src.error((*loc, "line"), f"unknown line {line!r} (not in {LINES_FILE})")
        if not has_emergency:
            raise src.error(
                ("menus", menu_id, "items"),
                "every menu must offer the emergency option (an item with action: emergency)",
            )


def phrase_problems(menus: MenusFile) -> Iterable[tuple[Location, str]]:
    """Every phrase in menus.yaml that cannot be read: (where in the file, why)."""

    def check(loc: Location, words: Words) -> Iterable[tuple[Location, str]]:
        for lang in ("en", "es"):
            for index, text in enumerate(getattr(words, lang)):
                try:
                    compile_phrase(text, lang)
                except PhraseError as exc:
                    yield (*loc, lang, index), str(exc)

    for index, rule in enumerate(menus.crisis):
        yield from check(("crisis", index, "words"), rule.words)
        yield from check(("crisis", index, "maybe"), rule.maybe)
        yield from check(("crisis", index, "means"), rule.means)
    u = menus.understanding
    yield from check(("understanding", "negations"), u.negations)
    yield from check(("understanding", "idioms"), u.idioms)
    yield from check(("understanding", "long_ago"), u.long_ago)
    for tag, words in u.qa_tags.items():
        yield from check(("understanding", "qa_tags", tag), words)
    near = u.nearby
    for index, harm in enumerate(near.harms):
        yield from check(("understanding", "nearby", "harms", index, "words"), harm.words)
    for kind, words in near.anchors.items():
        yield from check(("understanding", "nearby", "anchors", kind), words)
    for name in ("things", "boundaries", "calm"):
        yield from check(("understanding", "nearby", name), getattr(near, name))
    yield from check(("understanding", "street_types"), u.street_types)
    for index, category in enumerate(menus.report_categories):
        yield from check(("report_categories", index, "spoken"), category.spoken)
        yield from check(("report_categories", index, "spoken_alone"), category.spoken_alone)
    for topic_id, topic in menus.info_topics.items():
        yield from check(("info_topics", topic_id, "keywords"), topic.keywords)
    for menu_id, menu in menus.menus.items():
        for index, item in enumerate(menu.items):
            yield from check(("menus", menu_id, "items", index, "keywords"), item.keywords)
