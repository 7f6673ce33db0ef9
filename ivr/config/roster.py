"""Load config/roster.yaml: helper types, their members and shifts, ring timeouts, fallbacks.

Validated once at startup into frozen objects; an error names the file, the line and the field.
Every phone number goes through ivr.phones: in the US or Canada, valid, never premium-rate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ivr.config.yaml_source import Location, SourceFile, read_yaml
from ivr.phones import PhoneNumberError, callback_number


@dataclass(frozen=True)
class Member:
    """Someone (or a line) Bridgeline may dial: `address` is E.164, a SIP URI or client:identity."""

    member_id: str
    name: str
    helper_type: str
    address: str
    kind: str  # "number" | "sip" | "client"
    staff_id: str | None = None  # the member's console account, when they have one


ROSTER_FILE = "roster.yaml"
"""The roster file inside the config folder."""

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day names a shift may use, in Python's weekday() order."""

CALL_TAKER_TYPE = "call_taker"
"""Helper type given to intake call-takers (they are not a diversion)."""

MINUTES_PER_DAY = 24 * 60

_ID = r"^[a-z][a-z0-9_-]{0,63}$"
_SIP = re.compile(r"^sip:[A-Za-z0-9._~+-]+@[A-Za-z0-9.-]+(:\d{1,5})?(;[A-Za-z0-9=._-]+)*$")
_CLIENT = re.compile(r"^[A-Za-z0-9_.-]{1,121}$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")

Id = Annotated[str, Field(pattern=_ID)]
NonEmpty = Annotated[str, Field(min_length=1, max_length=120)]
RingTimeout = Annotated[int, Field(ge=5, le=60)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ShiftSpec(_Frozen):
    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = Field(min_length=1)
    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.match(value):
            raise ValueError(f"must be a time like 08:00 or 24:00, got {value!r}")
        return value


# "always" or a list of shifts; checked by _shifts so an error points into the list.
Shifts = str | list[Any]


class MemberSpec(_Frozen):
    id: Id
    name: NonEmpty
    number: str | None = None
    sip: str | None = None
    client: str | None = None
    staff_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")] | None = None
    shifts: Shifts


class HelperTypeSpec(_Frozen):
    label: NonEmpty
    ring_timeout_seconds: RingTimeout | None = None
    members: tuple[MemberSpec, ...] = ()
    fallback: tuple[str, ...] = ()


class LineSpec(_Frozen):
    label: NonEmpty
    number: NonEmpty
    shifts: Shifts = "always"


class CallTakersSpec(_Frozen):
    ring_timeout_seconds: RingTimeout | None = None
    members: tuple[MemberSpec, ...] = Field(min_length=1)
    fallback_number: NonEmpty


class RosterFile(_Frozen):
    timezone: NonEmpty
    region: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "US"
    ring_timeout_seconds: RingTimeout = 20
    helper_types: dict[Annotated[str, Field(pattern=_ID)], HelperTypeSpec] = Field(min_length=1)
    fallback_lines: dict[Annotated[str, Field(pattern=_ID)], LineSpec] = {}
    call_takers: CallTakersSpec | None = None


@dataclass(frozen=True)
class Shift:
    """A weekly shift: the days it starts on, start and end in minutes after local midnight."""

    days: frozenset[int]
    start: int
    end: int

    def covers(self, weekday: int, minute: int) -> bool:
        """True when local (weekday, minute) falls inside this shift."""
        if self.start < self.end:
            return weekday in self.days and self.start <= minute < self.end
        # Runs past midnight: the evening part on a listed day, the morning part the day after.
        return (weekday in self.days and minute >= self.start) or (
            (weekday - 1) % 7 in self.days and minute < self.end
        )


@dataclass(frozen=True)
class Rostered:
    """A member with the shifts they work (None: always on duty)."""

    member: Member
    shifts: tuple[Shift, ...] | None


@dataclass(frozen=True)
class HelperType:
    """One helper type (or a fallback line): who answers it and what to try after them."""

    type_id: str
    label: str
    ring_timeout_seconds: int
    members: tuple[Rostered, ...]
    fallback: tuple[str, ...]
    is_line: bool = False


@dataclass(frozen=True)
class Roster:
    """The validated roster. Times are read in `timezone`."""

    timezone: ZoneInfo
    helper_types: dict[str, HelperType]
    lines: dict[str, HelperType]
    call_takers: HelperType | None
    call_taker_fallback: str | None

    def group(self, type_id: str) -> HelperType | None:
        """A helper type or a fallback line by id."""
        return self.helper_types.get(type_id) or self.lines.get(type_id)

    def member(self, member_id: str) -> Member | None:
        """Any rostered member (helpers, lines, call-takers) by id."""
        groups = [*self.helper_types.values(), *self.lines.values()]
        if self.call_takers is not None:
            groups.append(self.call_takers)
        for group in groups:
            for rostered in group.members:
                if rostered.member.member_id == member_id:
                    return rostered.member
        return None

    def label(self, type_id: str) -> str:
        """The spoken name of a helper type or line (its id when unknown)."""
        group = self.group(type_id)
        return group.label if group else type_id.replace("_", " ")


def _validate(source: SourceFile) -> RosterFile:
    try:
        return RosterFile.model_validate(source.data if source.data is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc: Location = tuple(first["loc"])
        raise source.error(loc, first["msg"]) from None


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _shifts(src: SourceFile, loc: Location, spec: Shifts) -> tuple[Shift, ...] | None:
    if spec == "always":
        return None
    if not isinstance(spec, list) or not spec:
        raise src.error(loc, 'give a list of shifts ({days, start, end}), or "always"')
    out = []
    for index, raw in enumerate(spec):
        try:
            shift = ShiftSpec.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise src.error((*loc, index, *first["loc"]), first["msg"]) from None
        start, end = _minutes(shift.start), _minutes(shift.end)
        if start == end or (start == MINUTES_PER_DAY):
            raise src.error((*loc, index), "a shift must not start and end at the same time")
        days = frozenset(DAYS.index(day) for day in shift.days)
        out.append(Shift(days=days, start=start, end=end if end != 0 else MINUTES_PER_DAY))
    return tuple(out)


def _address(src: SourceFile, loc: Location, spec: MemberSpec, region: str) -> tuple[str, str]:
    given = [
        (k, v)
        for k, v in (("number", spec.number), ("sip", spec.sip), ("client", spec.client))
        if v
    ]
    if len(given) != 1:
        raise src.error(loc, "give exactly one of number, sip or client")
    kind, raw = given[0]
    if kind == "number":
        return "number", _number(src, (*loc, "number"), raw, region)
    if kind == "sip":
        if not _SIP.match(raw):
            raise src.error((*loc, "sip"), f"{raw!r} is not a SIP URI like sip:name@host")
        return "sip", raw
    if not _CLIENT.match(raw):
        raise src.error(
            (*loc, "client"), f"{raw!r} is not a client identity (letters, digits, _ . -)"
        )
    return "client", f"client:{raw}"


def _number(src: SourceFile, loc: Location, raw: str, region: str) -> str:
    try:
        return callback_number(raw, region)
    except PhoneNumberError as exc:
        raise src.error(
            loc,
            f"{raw!r} cannot be dialed ({exc.problem.value}): numbers must be valid, "
            "in the United States or Canada and not premium-rate",
        ) from None


def _members(
    src: SourceFile,
    loc: Location,
    specs: tuple[MemberSpec, ...],
    type_id: str,
    region: str,
    seen: dict[str, Location],
) -> tuple[Rostered, ...]:
    out = []
    for index, spec in enumerate(specs):
        where: Location = (*loc, index)
        if spec.id in seen:
            raise src.error((*where, "id"), f"member id {spec.id!r} is used twice")
        seen[spec.id] = where
        kind, address = _address(src, where, spec, region)
        member = Member(
            member_id=spec.id,
            name=spec.name,
            helper_type=type_id,
            address=address,
            kind=kind,
            staff_id=spec.staff_id,
        )
        out.append(Rostered(member, _shifts(src, (*where, "shifts"), spec.shifts)))
    return tuple(out)


def load_roster(folder: Path) -> Roster:
    """Read and check `folder`/roster.yaml; raise ConfigError naming file, line and field."""
    src = read_yaml(folder / ROSTER_FILE)
    spec = _validate(src)
    try:
        zone = ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise src.error(("timezone",), f"unknown time zone {spec.timezone!r}") from None
    seen: dict[str, Location] = {}
    lines: dict[str, HelperType] = {}
    for line_id, line in spec.fallback_lines.items():
        loc: Location = ("fallback_lines", line_id)
        if line_id in spec.helper_types:
            raise src.error(loc, f"{line_id!r} is already a helper type")
        member = Member(
            member_id=f"line-{line_id}",
            name=line.label,
            helper_type=line_id,
            address=_number(src, (*loc, "number"), line.number, spec.region),
            kind="number",
        )
        lines[line_id] = HelperType(
            type_id=line_id,
            label=line.label,
            ring_timeout_seconds=spec.ring_timeout_seconds,
            members=(Rostered(member, _shifts(src, (*loc, "shifts"), line.shifts)),),
            fallback=(),
            is_line=True,
        )
    helper_types: dict[str, HelperType] = {}
    for type_id, group in spec.helper_types.items():
        loc = ("helper_types", type_id)
        if not group.members and not group.fallback:
            raise src.error(loc, "a helper type needs members or a fallback")
        for index, target in enumerate(group.fallback):
            if target == type_id:
                raise src.error(
                    (*loc, "fallback", index), "a helper type cannot fall back to itself"
                )
            if target not in spec.helper_types and target not in lines:
                raise src.error(
                    (*loc, "fallback", index),
                    f"unknown helper type or fallback line {target!r}",
                )
        helper_types[type_id] = HelperType(
            type_id=type_id,
            label=group.label,
            ring_timeout_seconds=group.ring_timeout_seconds or spec.ring_timeout_seconds,
            members=_members(src, (*loc, "members"), group.members, type_id, spec.region, seen),
            fallback=group.fallback,
        )
    call_takers = None
    fallback_number = None
    if spec.call_takers is not None:
        loc = ("call_takers",)
        call_takers = HelperType(
            type_id=CALL_TAKER_TYPE,
            label="call-taker",
            ring_timeout_seconds=spec.call_takers.ring_timeout_seconds or spec.ring_timeout_seconds,
            members=_members(
                src, (*loc, "members"), spec.call_takers.members, CALL_TAKER_TYPE, spec.region, seen
            ),
            fallback=(),
        )
        fallback_number = _number(
            src, (*loc, "fallback_number"), spec.call_takers.fallback_number, spec.region
        )
    return Roster(
        timezone=zone,
        helper_types=helper_types,
        lines=lines,
        call_takers=call_takers,
        call_taker_fallback=fallback_number,
    )
