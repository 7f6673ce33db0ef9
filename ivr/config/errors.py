"""Errors raised while loading config files; each names the file, the line and the field."""

from __future__ import annotations

from pathlib import Path


class ConfigError(ValueError):
    """A config file is missing, unreadable or invalid. The message is for an operator."""

    def __init__(self, file: Path | str, line: int | None, field: str, reason: str) -> None:
        self.file = str(file)
        self.line = line
        self.field = field
        self.reason = reason
        where = f"{self.file}, line {line}" if line else self.file
        super().__init__(f"{where}, {field or '(top level)'}: {reason}")
