"""Read a YAML file into plain data plus the line of every key, so errors can name a line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ivr.config.errors import ConfigError

LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""PyYAML's safe loader in C (libyaml) when the wheel has it: the same data and line marks,
about 8 times faster than the pure-Python one (every create_app reads the config)."""

Location = tuple[str | int, ...]


class SourceFile:
    """A parsed YAML file: its data and the 1-based line where each path starts."""

    def __init__(self, path: Path, data: Any, lines: dict[Location, int]) -> None:
        self.path = path
        self.data = data
        self.lines = lines

    def line_of(self, loc: Location) -> int | None:
        """Line of the deepest part of `loc` that exists in the file."""
        found: Location = ()
        for part in loc:
            candidate = (*found, part)
            if candidate in self.lines:
                found = candidate
        return self.lines.get(found)

    def error(self, loc: Location, reason: str) -> ConfigError:
        """A ConfigError pointing at `loc` in this file."""
        return ConfigError(self.path, self.line_of(loc), format_location(loc), reason)


def format_location(loc: Location) -> str:
    """('menus', 'main', 'items', 2, 'key') -> 'menus.main.items[2].key'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def read_yaml(path: Path) -> SourceFile:
    """Parse `path`; a missing file, a syntax error or a repeated key raises ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, None, "", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, "", f"cannot be read: {exc}") from None
    try:
        node = yaml.compose(text, Loader=LOADER)
        data = yaml.load(text, Loader=LOADER)  # noqa: S506 -- a safe loader, C or Python
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(path, line, "", f"is not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, None, "", f"is not valid YAML: {exc}") from None
    lines: dict[Location, int] = {}
    if node is not None:
        _walk(path, node, (), lines)
    return SourceFile(path, data, lines)


def _walk(path: Path, node: yaml.Node, loc: Location, lines: dict[Location, int]) -> None:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    path,
                    line,
                    format_location((*loc, key)),
                    f"is given twice (first on line {seen[key]})",
                )
            seen[key] = line
            lines[(*loc, key)] = line
            _walk(path, value_node, (*loc, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, child in enumerate(node.value):
            lines[(*loc, index)] = child.start_mark.line + 1
            _walk(path, child, (*loc, index), lines)
