"""Every phone number Bridgeline reads goes through here: parsed, checked and kept in E.164."""

from __future__ import annotations

import hashlib
from enum import Enum

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

DEFAULT_REGION = "US"
"""Region assumed for numbers written without a country code."""

NORTH_AMERICAN_COUNTRY_CODE = 1
"""Callbacks go only to North American Numbering Plan numbers (toll-fraud guard)."""


class NumberProblem(str, Enum):
    """Why a number given for a callback or a transfer was refused."""

    INVALID = "invalid"
    PREMIUM_RATE = "premium_rate"
    NOT_NORTH_AMERICAN = "not_north_american"


class PhoneNumberError(ValueError):
    """A number that cannot be used, with the reason as a NumberProblem."""

    def __init__(self, problem: NumberProblem) -> None:
        self.problem = problem
        super().__init__(problem.value)


def parse_e164(raw: str, region: str = DEFAULT_REGION) -> str:
    """Parse any usual spelling of a valid number and return it as E.164; raise otherwise."""
    try:
        number = phonenumbers.parse(raw, region)
    except NumberParseException:
        raise PhoneNumberError(NumberProblem.INVALID) from None
    if not phonenumbers.is_valid_number(number):
        raise PhoneNumberError(NumberProblem.INVALID)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def callback_number(raw: str, region: str = DEFAULT_REGION) -> str:
    """A number Bridgeline may call back: valid, North American and not premium-rate."""
    try:
        number = phonenumbers.parse(raw, region)
    except NumberParseException:
        raise PhoneNumberError(NumberProblem.INVALID) from None
    if not phonenumbers.is_valid_number(number):
        raise PhoneNumberError(NumberProblem.INVALID)
    if number.country_code != NORTH_AMERICAN_COUNTRY_CODE:
        raise PhoneNumberError(NumberProblem.NOT_NORTH_AMERICAN)
    if phonenumbers.number_type(number) in (
        PhoneNumberType.PREMIUM_RATE,
        PhoneNumberType.SHARED_COST,
    ):
        raise PhoneNumberError(NumberProblem.PREMIUM_RATE)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def national_digits(e164: str) -> str:
    """The ten digits a North American caller would key in, for reading a number back."""
    return e164[2:] if e164.startswith("+1") else e164.lstrip("+")


def fingerprint(value: str) -> str:
    """A short one-way tag for a number, so logs can correlate without showing it."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:10]
