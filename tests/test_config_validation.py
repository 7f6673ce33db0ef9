"""An operator's typo in config/ stops startup with the file, the line and the field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ivr.config import ConfigError, load_config

REPO_CONFIG = Path(__file__).resolve().parent.parent / "config"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(REPO_CONFIG, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    seen = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(needle)


def test_shipped_config_is_valid() -> None:
    config = load_config(REPO_CONFIG)
    assert config.numbers["emergency"] == "+15205550911"


def test_duplicate_key_in_a_menu_names_file_line_and_field(config_dir: Path) -> None:
    menus = config_dir / "menus.yaml"
    _edit(
        menus,
        "      - key: 2\n        action: report_status",
        "      - key: 1\n        action: report_status",
    )
    with pytest.raises(ConfigError) as err:
        load_config(config_dir)
    assert err.value.file.endswith("menus.yaml")
    assert err.value.field == "menus.main.items[1].key"
    assert err.value.line == _line_of(menus, "action: report_status") - 1
    assert "duplicate key '1'" in str(err.value)


def test_unknown_action_is_refused(config_dir: Path) -> None:
    menus = config_dir / "menus.yaml"
    _edit(menus, "action: report_status", "action: teleport")
    with pytest.raises(ConfigError) as err:
        load_config(config_dir)
    assert err.value.field.startswith("menus.main.items[1]")
    assert err.value.line == _line_of(menus, "action: teleport")
    assert "teleport" in err.value.reason


def test_a_menu_without_the_emergency_option_is_refused(config_dir: Path) -> None:
    menus = config_dir / "menus.yaml"
    text = menus.read_text(encoding="utf-8")
    block = (
        "      - key: 9\n        action: emergency\n"
        '        label: {en: "For an emergency", es: "Para una emergencia"}\n'
        '        keywords: {en: [emergency, "911", nine one one], es: [emergencia, "911", nueve uno uno]}\n'
    )
    last = text.rindex(block)
    menus.write_text(text[:last] + text[last + len(block) :], encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(config_dir)
    assert err.value.field == "menus.health.items"
    assert "emergency" in err.value.reason


def test_a_missing_translation_is_refused(config_dir: Path) -> None:
    menus = config_dir / "menus.yaml"
    _edit(
        menus,
        'label: {en: "For office hours", es: "Para los horarios"}',
        'label: {en: "For office hours"}',
    )
    with pytest.raises(ConfigError) as err:
        load_config(config_dir)
    assert err.value.field == "menus.information.items[0].label.es"
    assert err.value.line == _line_of(menus, '{en: "For office hours"}')


def test_an_invalid_phone_number_is_refused(config_dir: Path) -> None:
    lines = config_dir / "lines.yaml"
    _edit(lines, '"+1 520 555 0140"', '"+1 520 123 4567"')
    with pytest.raises(ConfigError) as err:
        load_config(config_dir)
    assert err.value.field == "lines.nurse.number"
    assert err.value.line == _line_of(lines, "+1 520 123 4567")
    assert "not a valid phone number" in err.value.reason


@pytest.mark.parametrize(
    ("line_id", "old", "new", "why"),
    [
        ("nurse", '"+1 520 555 0140"', '"+1 900 555 0140"', "premium-rate"),
        ("crisis_988", '"+1 520 555 0988"', '"+44 20 7946 0988"', "outside the United States"),
        ("crisis_988", '"+1 520 555 0988"', '"+1 876 555 0988"', "outside the United States"),
        ("operator", '"+1 520 555 0311"', '"+1 809 555 0311"', "outside the United States"),
    ],
)
def test_a_premium_rate_or_international_line_stops_startup(
    config_dir: Path, line_id: str, old: str, new: str, why: str
) -> None:
    lines = config_dir / "lines.yaml"
    _edit(lines, old, new)
    with pytest.raises(ConfigError) as err:
        load_config(config_dir)
    assert err.value.file.endswith("lines.yaml")
    assert err.value.field == f"lines.{line_id}.number"
    assert err.value.line == _line_of(lines, new)
    assert why in err.value.reason


def test_a_line_marked_international_may_be_abroad_but_never_premium(config_dir: Path) -> None:
    lines = config_dir / "lines.yaml"
    _edit(lines, '"+1 520 555 0988"', '"+44 20 7946 0988"\n    international: true')
    assert load_config(config_dir).numbers["crisis_988"] == "+442079460988"
    _edit(lines, '"+44 20 7946 0988"', '"+44 909 879 0000"')  # a UK premium-rate number
    with pytest.raises(ConfigError) as err:
        load_config(config_dir)
    assert err.value.field == "lines.crisis_988.number" and "premium-rate" in err.value.reason


def test_a_transfer_to_an_unknown_line_is_refused(config_dir: Path) -> None:
    _edit(config_dir / "menus.yaml", "line: nurse", "line: pharmacy")
    with pytest.raises(ConfigError) as err:
        load_config(config_dir)
    assert err.value.field == "menus.health.items[0].line"


def test_broken_yaml_names_the_line(config_dir: Path) -> None:
    menus = config_dir / "menus.yaml"
    _edit(menus, "  max_attempts: 3", "  max_attempts: [3")
    with pytest.raises(ConfigError) as err:
        load_config(config_dir)
    assert err.value.file.endswith("menus.yaml") and err.value.line is not None
    assert "not valid YAML" in err.value.reason


def test_a_key_given_twice_in_yaml_is_refused(config_dir: Path) -> None:
    _edit(
        config_dir / "lines.yaml",
        "timezone: America/Phoenix",
        "timezone: America/Phoenix\ntimezone: UTC",
    )
    with pytest.raises(ConfigError) as err:
        load_config(config_dir)
    assert err.value.field == "timezone" and "given twice" in err.value.reason


def test_a_missing_config_file_is_named(config_dir: Path) -> None:
    (config_dir / "lines.yaml").unlink()
    with pytest.raises(ConfigError) as err:
        load_config(config_dir)
    assert err.value.file.endswith("lines.yaml") and "file not found" in str(err.value)
