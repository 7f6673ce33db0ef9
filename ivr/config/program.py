"""Load config/program.yaml: jurisdictions, savings per avoided dispatch, answer targets, QA."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ivr.config.yaml_source import Location, SourceFile, read_yaml
from ivr.phones import PhoneNumberError, parse_e164

PROGRAM_FILE = "program.yaml"
"""Reporting settings of the program (jurisdictions, savings, targets, QA sample)."""

AGENCY_ID_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}\.)*[A-Za-z0-9\-]{1,63}$"
"""A domain-name-like agency or element identifier (NENA-STA-010)."""

DEFAULT_COST_PER_AVOIDED_DISPATCH = 250.0
"""The article's figure: $125,000 a year per 1% fewer dispatches at 50,000 calls."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Jurisdiction(_Frozen):
    """An agency or community the figures can be filtered by."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_\-]+$")
    name: str = Field(min_length=1, max_length=120)
    kind: Literal["agency", "community"]
    # NENA names an agency by a domain name it controls (EIDO agency ids, agents user@agency).
    agency_id: str | None = Field(default=None, max_length=120, pattern=AGENCY_ID_PATTERN)
    # urn:emergency:service:responder values without the prefix (EIDO agencyType).
    agency_type: tuple[str, ...] = Field(default=("psap",), min_length=1)

    @property
    def eido_agency_id(self) -> str:
        """The agency id EIDOs use: `agency_id`, else the jurisdiction id."""
        return self.agency_id or self.id


class HelperAgency(_Frozen):
    """The agency a helper type's members work for, as EIDOs name it (defaults: derived)."""

    agency_id: str | None = Field(default=None, max_length=120, pattern=AGENCY_ID_PATTERN)
    name: str | None = Field(default=None, min_length=1, max_length=120)
    agency_type: tuple[str, ...] | None = None
    incident_type: str | None = None


class EidoSettings(_Frozen):
    """How handoffs are described in the EIDOs partners read (NENA-STA-021.1b)."""

    # NENA-STA-010 element identifier of this system (default: the call's agency id).
    issuing_element: str | None = Field(default=None, max_length=120, pattern=AGENCY_ID_PATTERN)
    helper_agencies: dict[str, HelperAgency] = {}


class Savings(_Frozen):
    """What one avoided dispatch is worth."""

    per_avoided_dispatch: float = Field(default=DEFAULT_COST_PER_AVOIDED_DISPATCH, ge=0)
    currency: str = Field(default="USD", min_length=3, max_length=3)


class AnswerTarget(_Frozen):
    """`share` of helper answers must come within `within_seconds`."""

    within_seconds: int = Field(gt=0, le=600)
    share: float = Field(gt=0, le=1)


class QASettings(_Frozen):
    """Quality-assurance queue settings."""

    random_sample_rate: float = Field(default=0.05, ge=0, le=1)
    review_all_helper_types: tuple[str, ...] = ("embedded_clinician", "crisis_988", "navigator")


NENA_TARGETS = (
    AnswerTarget(within_seconds=15, share=0.90),
    AnswerTarget(within_seconds=20, share=0.95),
)
"""NENA's call answering standard, the default target."""


class NumberJurisdiction(_Frozen):
    """Calls on this number belong to this jurisdiction."""

    number: str = Field(min_length=3, max_length=32)
    jurisdiction: str = Field(min_length=1, max_length=64)


class CallJurisdictions(_Frozen):
    """Which jurisdiction a live call is recorded under when it is created.

    A desk call: the PSAP line the call-taker calls the desk from (Twilio's From). An intake
    call: the intake number that was called (To). Anything else: `default`.
    """

    default: str | None = None
    desk_callers: tuple[NumberJurisdiction, ...] = ()
    intake_numbers: tuple[NumberJurisdiction, ...] = ()


class ProgramConfig(_Frozen):
    """Validated config/program.yaml."""

    name: str = Field(default="Alternative response program", min_length=1, max_length=120)
    timezone: str = "UTC"
    display_names: dict[str, str] = Field(default_factory=dict)
    jurisdictions: tuple[Jurisdiction, ...] = ()
    self_service_jurisdiction: str | None = None
    crisis_helper_types: tuple[str, ...] = ("embedded_clinician", "crisis_988")
    savings: Savings = Savings()
    answer_targets: tuple[AnswerTarget, ...] = NENA_TARGETS
    qa: QASettings = QASettings()
    call_jurisdictions: CallJurisdictions = CallJurisdictions()
    eido: EidoSettings = EidoSettings()

    @field_validator("display_names")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        for code, name in value.items():
            if not name.strip() or len(name) > 80:
                raise ValueError(f"the name of {code!r} must be 1 to 80 characters")
        return value

    @field_validator("answer_targets")
    @classmethod
    def _some_target(cls, value: tuple[AnswerTarget, ...]) -> tuple[AnswerTarget, ...]:
        if not value:
            raise ValueError("at least one answer target is needed (NENA: 90% in 15 s)")
        return tuple(sorted(value, key=lambda t: t.within_seconds))

    @property
    def zone(self) -> ZoneInfo:
        """The program's time zone."""
        return ZoneInfo(self.timezone)

    def jurisdiction(self, jurisdiction_id: str) -> Jurisdiction | None:
        """The jurisdiction with this id, if configured."""
        return next((j for j in self.jurisdictions if j.id == jurisdiction_id), None)

    def desk_jurisdiction(self, from_number: str) -> str | None:
        """The jurisdiction of a desk call made from `from_number` (else the default)."""
        return _by_number(self.call_jurisdictions.desk_callers, from_number, self)

    def is_desk_caller(self, from_number: str) -> bool:
        """Whether `from_number` is one of the PSAP lines listed in call_jurisdictions.desk_callers."""
        try:
            number = parse_e164(from_number) if from_number else ""
        except PhoneNumberError:
            return False
        return any(
            parse_e164(item.number) == number for item in self.call_jurisdictions.desk_callers
        )

    def intake_jurisdiction(self, to_number: str) -> str | None:
        """The jurisdiction of an intake call to `to_number` (else the default)."""
        return _by_number(self.call_jurisdictions.intake_numbers, to_number, self)


def _by_number(
    mapping: tuple[NumberJurisdiction, ...], raw: str, program: ProgramConfig
) -> str | None:
    try:
        number = parse_e164(raw) if raw else ""
    except PhoneNumberError:
        number = ""
    for item in mapping:
        if number and parse_e164(item.number) == number:
            return item.jurisdiction
    return program.call_jurisdictions.default


def load_program(folder: Path, default_timezone: str = "UTC") -> ProgramConfig:
    """Read and check `folder`/program.yaml; raise ConfigError naming file, line and field.

    Without the file every setting takes its default (the time zone of lines.yaml, when the
    caller passes it); a file that exists must be valid.
    """
    path = folder / PROGRAM_FILE
    if not path.exists():
        return ProgramConfig(timezone=default_timezone)
    source = read_yaml(path)
    data = source.data if source.data is not None else {}
    if isinstance(data, dict):
        data = {"timezone": default_timezone, **data}
    try:
        program = ProgramConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc: Location = tuple(first["loc"])
        raise source.error(loc, first["msg"]) from None
    try:
        ZoneInfo(program.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise source.error(("timezone",), f"unknown time zone {program.timezone!r}") from None
    seen: dict[str, int] = {}
    for index, item in enumerate(program.jurisdictions):
        if item.id in seen:
            raise source.error(
                ("jurisdictions", index, "id"),
                f"duplicate jurisdiction {item.id!r} (also jurisdiction {seen[item.id]})",
            )
        seen[item.id] = index
    own = program.self_service_jurisdiction
    if own is not None and own not in seen:
        raise source.error(
            ("self_service_jurisdiction",), f"unknown jurisdiction {own!r} (not in jurisdictions)"
        )
    _check_call_jurisdictions(program, source, set(seen))
    _check_eido(program, source)
    return program


def _check_eido(program: ProgramConfig, source: SourceFile) -> None:
    """Incident types come from NENA's registry."""
    from ivr.config.nena_registries import INCIDENT_TYPES

    for helper_type, agency in program.eido.helper_agencies.items():
        if agency.incident_type is not None and agency.incident_type not in INCIDENT_TYPES:
            raise source.error(
                ("eido", "helper_agencies", helper_type, "incident_type"),
                f"{agency.incident_type!r} is not in NENA's EIDO-IncidentType-Common registry "
                f"(for example: {', '.join(sorted(INCIDENT_TYPES))})",
            )


def _check_call_jurisdictions(program: ProgramConfig, source: SourceFile, known: set[str]) -> None:
    """Every mapped number parses, appears once per list, and names a configured jurisdiction."""
    calls = program.call_jurisdictions
    if calls.default is not None and calls.default not in known:
        raise source.error(
            ("call_jurisdictions", "default"),
            f"unknown jurisdiction {calls.default!r} (not in jurisdictions)",
        )
    for name in ("desk_callers", "intake_numbers"):
        numbers: dict[str, int] = {}
        for index, item in enumerate(getattr(calls, name)):
            loc: Location = ("call_jurisdictions", name, index)
            try:
                number = parse_e164(item.number)
            except PhoneNumberError:
                raise source.error((*loc, "number"), "not a valid phone number") from None
            if number in numbers:
                raise source.error(
                    (*loc, "number"), f"number listed twice (also {name}[{numbers[number]}])"
                )
            numbers[number] = index
            if item.jurisdiction not in known:
                raise source.error(
                    (*loc, "jurisdiction"),
                    f"unknown jurisdiction {item.jurisdiction!r} (not in jurisdictions)",
                )
